"""The audit trail: every enrolment, removal and decision appended as a row that carries the SHA-256 of the row
before it, so that a changed or deleted row breaks the chain (`edgefx audit verify`). Never images or embeddings."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

GENESIS = "0" * 64
HEAD_KEY = "audit_head"  # the last row's hash, kept in `meta` so that deleting the newest row is also seen
SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, time TEXT NOT NULL, operation TEXT NOT NULL, subject_id TEXT, score REAL,
    decision TEXT, threshold REAL, model TEXT NOT NULL, prev_hash TEXT NOT NULL)
"""
COLUMNS = ("seq", "time", "operation", "subject_id", "score", "decision", "threshold", "model", "prev_hash")


@dataclass(frozen=True)
class AuditEvent:
    """One operation as the trail records it."""

    operation: str  # enroll | remove | identify | verify_id
    model: str  # recognizer/precision/detector
    subject_id: str | None = None
    score: float | None = None
    decision: str | None = None
    threshold: float | None = None


def row_hash(row: tuple[Any, ...]) -> str:
    """SHA-256 of a row's columns (in COLUMNS order) as canonical JSON: floats keep all their digits."""
    return hashlib.sha256(json.dumps(list(row), separators=(",", ":")).encode("utf-8")).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def append(conn: sqlite3.Connection, event: AuditEvent) -> None:
    """Append one row; the caller holds a write transaction (BEGIN IMMEDIATE), so the chain cannot fork."""
    last = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, row_hash(tuple(last)))
    score = None if event.score is None else round(float(event.score), 6)
    threshold = None if event.threshold is None else round(float(event.threshold), 6)
    row = (seq, now(), event.operation, event.subject_id, score, event.decision, threshold, event.model, prev)
    conn.execute(f"INSERT INTO audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", row)
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (HEAD_KEY, row_hash(row)))


def verify(conn: sqlite3.Connection) -> dict[str, Any]:
    """{ok, rows, problem, seq}: walks the chain from the first row; the first broken link is reported."""
    prev, expected_seq, count = GENESIS, 1, 0
    for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY seq"):
        count += 1
        if int(row[0]) != expected_seq:
            return _broken(count - 1, row[0], f"row {expected_seq} is missing (next row is {row[0]})")
        if row[-1] != prev:
            return _broken(count - 1, row[0], f"row {row[0]} does not follow from row {row[0] - 1}: "
                                              "one of them was changed or a row was deleted")
        prev, expected_seq = row_hash(tuple(row)), expected_seq + 1
    head = conn.execute("SELECT value FROM meta WHERE key = ?", (HEAD_KEY,)).fetchone()
    if (head[0] if head else GENESIS) != prev:
        return _broken(count, expected_seq - 1, "the newest row was changed or deleted (the recorded head hash "
                                                "does not match)")
    return {"ok": True, "rows": count, "head": prev}


def _broken(rows_ok: int, seq: Any, problem: str) -> dict[str, Any]:
    return {"ok": False, "rows": rows_ok, "seq": seq, "problem": problem}
