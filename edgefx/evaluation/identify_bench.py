"""`edgefx bench identify`: 1:N search time against the gallery size (synthetic unit templates; the shipped path
beside the float32 path alone and the bare numpy product), the decrypt-and-load time after a change, and the whole
enrol and identify paths on LFW photos beside verify."""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgefx.evaluation.bench import sample_pairs, summarize, time_calls
from edgefx.gallery.access import Gallery
from edgefx.gallery.protection import TemplateCipher, associated_data
from edgefx.gallery.search import TemplateMatrix
from edgefx.runtime.config import Settings

def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def search_rows(sizes: tuple[int, ...], dim: int, repeats: int, top: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    cipher = TemplateCipher(secrets.token_bytes(32))
    rows = []
    for n in sizes:
        emb = unit_rows(rng, n, dim)
        ids = [f"s{i:07d}" for i in range(n)]
        matrix = TemplateMatrix.build(list(zip(ids, ids, emb)), dim)
        probe = unit_rows(rng, 1, dim)[0]
        blobs = [cipher.encrypt(e.tobytes(), associated_data(i, i, "sface", "embedding")) for i, e in zip(ids, emb)]
        t0 = time.perf_counter()
        loaded = [np.frombuffer(cipher.decrypt(b, associated_data(i, i, "sface", "embedding")), "<f4")
                  for i, b in zip(ids, blobs)]
        TemplateMatrix.build(list(zip(ids, ids, loaded)), dim)
        load_ms = (time.perf_counter() - t0) * 1e3
        rows.append({"templates": n, "dim": dim, "top": top,
                     "path": "int8 scan + float32 re-rank" if matrix.coarse is not None else "float32 product",
                     "search": summarize(time_calls(lambda: matrix.search(probe, top), repeats)),
                     "search_float32_only": summarize(time_calls(lambda: matrix.search(probe, top, exact=True),
                                                                 repeats)),
                     "matrix_product_only": summarize(time_calls(lambda: matrix.embeddings @ probe, repeats)),
                     "decrypt_and_load_ms": round(load_ms, 1)})
    return rows


def fill_synthetic(gallery: Gallery, n: int, dim: int) -> None:
    """n synthetic subjects, one encrypted template each, written as enrolment writes them (one transaction)."""
    cipher = gallery.store.cipher(create=True)
    assert cipher is not None
    ident, rec = gallery.identity, gallery.identity.recognizer
    emb = unit_rows(np.random.default_rng(1), n, dim)
    subjects, templates = [], []
    for i, e in enumerate(emb):
        sid, tid = f"synthetic{i:07d}", secrets.token_hex(8)
        subjects.append((sid, None, "2026-01-01T00:00:00Z"))
        templates.append((tid, sid, rec, ident.model_version, ident.model_sha256, ident.precision, ident.detector, dim,
                          cipher.encrypt(e.tobytes(), associated_data(sid, tid, rec, "embedding")), None, "synthetic"))
    with gallery.store.write() as conn:
        conn.executemany("INSERT INTO subjects (id, name, created) VALUES (?, ?, ?)", subjects)
        conn.executemany("INSERT INTO templates (id, subject_id, recognizer, model_version, model_sha256, precision, "
                         "detector, dim, embedding, crop, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", templates)
        gallery.store.bump_generation(conn)


def end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    """Enrol and identify through the Engine on LFW photos, with `--e2e-size` synthetic subjects enrolled, beside
    a pair verification on the same Engine (the identify target is verify + 5 ms)."""
    from edgefx.engine import Engine

    pairs = sample_pairs(Path(args.lfw), max(args.pairs, 2))
    with tempfile.TemporaryDirectory(prefix="edgefx-bench-") as folder:
        settings = Settings.from_env(db=Path(folder) / "gallery.db", key_file=Path(folder) / "gallery.key",
                                     threads=args.threads, models_dir=args.models_dir, precision=args.precision)
        engine = Engine(settings, load_qa=False)
        enrol = [time_calls(lambda: engine.enroll(f"lfw{i}", [a]), 1, warmup=0)[0] for i, (a, _) in enumerate(pairs)]
        fill_synthetic(engine.gallery, args.e2e_size, engine.recognizer.dim)
        first = time_calls(lambda: engine.identify(pairs[0][1]), 1, warmup=0)[0]  # decrypts the gallery once
        probes = [b for _, b in pairs]
        identify = [t for b in probes for t in time_calls(lambda: engine.identify(b), args.repeats, warmup=1)]
        verify = [t for a, b in pairs for t in time_calls(lambda: engine.verify(a, b), args.repeats, warmup=1)]
        found = engine.identify(pairs[0][1]).to_dict()
        return {"gallery_subjects": found["gallery"]["subjects"], "model": engine.model_info(),
                "enrol_one_photo": summarize(enrol), "identify": summarize(identify),
                "identify_first_after_change_ms": round(first, 1), "verify_pair": summarize(verify),
                "identify_minus_verify_ms": round(float(np.median(identify) - np.median(verify)), 2),
                "identify_timings_ms": found["timings_ms"]}


def bench_identify(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"benchmark": "identify",
                              "results": search_rows(args.sizes, args.dim, args.repeats * 10, args.top)}
    if not args.no_e2e:
        report["end_to_end"] = end_to_end(args)
    return report
