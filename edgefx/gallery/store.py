"""The gallery database: SQLite (standard library) in WAL mode, one connection per thread, subjects, encrypted
templates, the key check and the audit trail; a removal erases, vacuums and checkpoints so no copy stays behind."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefx.gallery import audit
from edgefx.gallery.audit import AuditEvent
from edgefx.gallery.protection import TemplateCipher, create_key, default_key_path, read_key
from edgefx.runtime.config import default_data_dir
from edgefx.runtime.errors import GalleryUnavailable, InvalidRequest, TemplateKeyError, UnknownSubject

SUBJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_NAME = 100
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (id TEXT PRIMARY KEY, name TEXT, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS templates (
    id TEXT PRIMARY KEY, subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    recognizer TEXT NOT NULL, model_version TEXT NOT NULL, model_sha256 TEXT NOT NULL, precision TEXT NOT NULL,
    detector TEXT NOT NULL, dim INTEGER NOT NULL, embedding BLOB NOT NULL, crop BLOB, created TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS templates_subject ON templates(subject_id);
""" + audit.SCHEMA
TEMPLATE_COLUMNS = ("id", "subject_id", "recognizer", "model_version", "model_sha256", "precision", "detector", "dim",
                    "embedding", "crop", "created")


def default_db_path() -> Path:
    return default_data_dir() / "gallery.db"


def check_subject_id(subject_id: str) -> str:
    """A subject id is 1-64 characters of letters, digits and `._@-`, starting with a letter or digit."""
    if not isinstance(subject_id, str) or not SUBJECT_ID.fullmatch(subject_id):
        raise InvalidRequest(f"subject id {str(subject_id)[:80]!r} is not valid: use 1-64 letters, digits or ._@- "
                             "(starting with a letter or digit)")
    return subject_id


def check_name(name: str | None) -> str | None:
    if name is not None and (len(name) > MAX_NAME or any(ord(c) < 32 for c in name)):
        raise InvalidRequest(f"a display name has at most {MAX_NAME} printable characters")
    return name or None


@dataclass(frozen=True)
class SubjectRow:
    id: str
    name: str | None
    created: str
    templates: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created": self.created, "templates": self.templates}


class GalleryStore:
    """The database of one gallery. Thread-safe: each thread has its own connection; writers take the WAL's one write
    lock with BEGIN IMMEDIATE (and wait up to `timeout_s`), so concurrent processes neither lose nor duplicate rows."""

    def __init__(self, path: Path | None = None, key_path: Path | None = None, timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.key_path = Path(key_path) if key_path is not None else default_key_path(self.path)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._cipher: TemplateCipher | None = None
        self._cipher_lock = threading.Lock()
        try:
            self.connection().executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise GalleryUnavailable(f"cannot open the gallery {self.path}: {exc}") from None

    # -- connections ---------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not self.path.exists():  # owner-only from the start (SQLite gives -wal and -shm the same mode)
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
                conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None,
                                       check_same_thread=False)
                self._enter_wal(conn)
                # A killed process loses nothing committed in WAL mode with NORMAL; a power cut may lose the last
                # commits but never corrupts the file. Decisions append an audit row each: no fsync per decision.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed, in the file and in the WAL
            except (sqlite3.Error, OSError) as exc:
                raise GalleryUnavailable(f"cannot open the gallery {self.path}: {exc}") from None
            self._local.conn = conn
        return conn

    def _enter_wal(self, conn: sqlite3.Connection) -> None:
        """PRAGMA journal_mode=WAL, retried: two processes switching a new file at once each hold a read lock and
        want the exclusive one, and SQLite fails one at once (no busy wait, it would deadlock) instead of waiting."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT; rolled back on any error)."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise GalleryUnavailable(f"cannot write the gallery {self.path}: {exc}") from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise GalleryUnavailable(f"cannot read the gallery {self.path}: {exc}") from None

    # -- the key -------------------------------------------------------------------------------
    def cipher(self, create: bool = False) -> TemplateCipher | None:
        """The cipher, once its key passed the stored key check (TemplateKeyMismatch otherwise). With `create`, a
        gallery without a key yet gets one (the key file is read, or made 0600 with a warning); else None."""
        with self._cipher_lock:
            if self._cipher is not None:
                return self._cipher
            check = self.read("SELECT value FROM meta WHERE key = 'key_check'")
            if not check and not create:
                return None
            key = read_key(self.key_path)
            if key is None and check:
                raise TemplateKeyError(f"the template key {self.key_path} is missing; the gallery {self.path} was "
                                       "encrypted with a key: set EDGEFX_KEY_FILE to it")
            cipher = TemplateCipher(key if key is not None else create_key(self.key_path))
            if check:
                cipher.verify_key_check(bytes(check[0][0]), self.path)
            else:
                with self.write() as conn:
                    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?)",
                                 (cipher.key_check(),))
                stored = self.read("SELECT value FROM meta WHERE key = 'key_check'")
                cipher.verify_key_check(bytes(stored[0][0]), self.path)  # another process may have set it first
            self._cipher = cipher
            return cipher

    # -- subjects and templates -----------------------------------------------------------------
    def generation(self) -> int:
        """Bumped by every enrolment and removal (in any process): the in-memory search matrix reloads on change."""
        row = self.read("SELECT value FROM meta WHERE key = 'generation'")
        return int(row[0][0]) if row else 0

    def bump_generation(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('generation', 1) "
                     "ON CONFLICT(key) DO UPDATE SET value = value + 1")

    def subjects(self) -> list[SubjectRow]:
        rows = self.read("SELECT s.id, s.name, s.created, COUNT(t.id) FROM subjects s "
                         "LEFT JOIN templates t ON t.subject_id = s.id GROUP BY s.id ORDER BY s.id")
        return [SubjectRow(str(r[0]), r[1], str(r[2]), int(r[3])) for r in rows]

    def subject(self, subject_id: str) -> SubjectRow:
        """The subject, or UnknownSubject (404)."""
        check_subject_id(subject_id)
        found = [s for s in self.subjects_by_id([subject_id]).values()]
        if not found:
            raise UnknownSubject(f"no subject {subject_id!r} is enrolled")
        return found[0]

    def subjects_by_id(self, ids: list[str]) -> dict[str, SubjectRow]:
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = self.read(f"SELECT s.id, s.name, s.created, COUNT(t.id) FROM subjects s LEFT JOIN templates t "
                         f"ON t.subject_id = s.id WHERE s.id IN ({marks}) GROUP BY s.id", tuple(ids))
        return {str(r[0]): SubjectRow(str(r[0]), r[1], str(r[2]), int(r[3])) for r in rows}

    def insert_templates(self, subject_id: str, name: str | None, rows: list[dict[str, Any]],
                         event: AuditEvent) -> None:
        """The subject (created, or its name updated), its new template rows and the audit row: one transaction,
        so a process killed in the middle leaves the gallery as it was."""
        with self.write() as conn:
            conn.execute("INSERT INTO subjects (id, name, created) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                         "name = COALESCE(excluded.name, subjects.name)", (subject_id, name, audit.now()))
            conn.executemany(f"INSERT INTO templates ({', '.join(TEMPLATE_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(TEMPLATE_COLUMNS))})",
                             [tuple(r[c] for c in TEMPLATE_COLUMNS) for r in rows])
            audit.append(conn, event)
            self.bump_generation(conn)

    def templates(self, subject_id: str | None = None) -> list[dict[str, Any]]:
        """Template rows (every column but the crop, plus `has_crop`), grouped by subject."""
        columns = ", ".join(c for c in TEMPLATE_COLUMNS if c != "crop")
        where, params = ("WHERE subject_id = ?", (subject_id,)) if subject_id is not None else ("", ())
        rows = self.read(f"SELECT {columns}, crop IS NOT NULL FROM templates {where} ORDER BY subject_id, id", params)
        names = [c for c in TEMPLATE_COLUMNS if c != "crop"] + ["has_crop"]
        return [dict(zip(names, r)) for r in rows]

    def crop_blob(self, template_id: str) -> bytes | None:
        rows = self.read("SELECT crop FROM templates WHERE id = ?", (template_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def remove_subject(self, subject_id: str, event: AuditEvent) -> int:
        """Erase the subject and its templates, then vacuum and checkpoint so that no page of the file and no frame
        of the WAL keeps their bytes; the number of templates erased."""
        self.subject(subject_id)
        with self.write() as conn:
            erased = conn.execute("DELETE FROM templates WHERE subject_id = ?", (subject_id,)).rowcount
            conn.execute("DELETE FROM subjects WHERE id = ?", (subject_id,))
            audit.append(conn, event)
            self.bump_generation(conn)
        self.compact()
        return int(erased)

    def compact(self) -> None:
        """VACUUM (rewrites the file without free pages) then a TRUNCATE checkpoint (empties the -wal file)."""
        conn = self.connection()
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise GalleryUnavailable(f"cannot compact the gallery {self.path}: {exc}") from None

    # -- audit ---------------------------------------------------------------------------------
    def record(self, event: AuditEvent) -> None:
        with self.write() as conn:
            audit.append(conn, event)

    def audit_verify(self) -> dict[str, Any]:
        conn = self.connection()
        conn.execute("BEGIN")  # one snapshot: rows appended meanwhile by others do not look like tampering
        try:
            return audit.verify(conn)
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
