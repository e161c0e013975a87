"""Access-control decisions over the gallery: enrol faces, 1:1 against a claimed subject (the verify threshold),
1:N open-set identification (the FPIR threshold); the recognizer check, the decrypted search matrix, the audit rows."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefx import __version__
from edgefx.faces.align import TEMPLATE_SIZE
from edgefx.faces.decision import Calibration
from edgefx.faces.detection import Face
from edgefx.faces.loading import recognizer_models
from edgefx.faces.result import PreparedFace, VerifyResult
from edgefx.gallery.audit import AuditEvent
from edgefx.gallery.openset import OpenSetCalibration, load_open_set
from edgefx.gallery.protection import associated_data
from edgefx.gallery.results import Candidate, Enrolment, Identification
from edgefx.gallery.search import TemplateMatrix
from edgefx.gallery.store import GalleryStore, check_name, check_subject_id
from edgefx.runtime.config import Settings
from edgefx.runtime.errors import InvalidRequest, TemplateMismatch
from edgefx.runtime.manifest import Manifest

MAX_ENROL_IMAGES = 10
LANDMARK_BYTES = 5 * 2 * 4  # the crop's five landmarks as float32, stored (encrypted) after its pixels


@dataclass(frozen=True)
class TemplateIdentity:
    """What made a template; templates are compared only with the same recognizer, precision, detector and model."""

    recognizer: str
    precision: str
    detector: str
    model_sha256: str
    model_version: str

    @property
    def label(self) -> str:
        return f"{self.recognizer}/{self.precision}/{self.detector}"

    def made(self, row: dict[str, Any]) -> bool:
        return (row["recognizer"], row["precision"], row["detector"], row["model_sha256"]) == (
            self.recognizer, self.precision, self.detector, self.model_sha256)


def template_identity(manifest: Manifest, recognizer: str, precision: str, detector: str) -> TemplateIdentity:
    """The running models' identity: the recognizer's ONNX sha256 (both, joined, for a fusion)."""
    shas = [str(manifest.entry(m, precision)["files"]["onnx"].get("sha256", "?")) for m in recognizer_models(recognizer)]
    return TemplateIdentity(recognizer, precision, detector, "+".join(shas), f"edgefx {__version__}")


def enrolled_face(crop: np.ndarray, landmarks: np.ndarray) -> PreparedFace:
    """A kept 112x112 crop as a prepared face (image a, the reference, as the questions name it): the crop is its own
    photo."""
    box = np.array([0, 0, TEMPLATE_SIZE, TEMPLATE_SIZE], np.float32)
    identity = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    return PreparedFace("a", crop, Face(box, 1.0, landmarks), [], crop, identity)


class Gallery:
    """The gallery of one running recognizer: decisions, their audit rows, and a cached decrypted search matrix."""

    def __init__(self, store: GalleryStore, identity: TemplateIdentity, verify_calibration: Calibration,
                 open_set: OpenSetCalibration | None, fpir: float) -> None:
        self.store = store
        self.identity = identity
        self.verify_calibration = verify_calibration
        self.open_set = open_set
        self.fpir = fpir
        self._matrix: tuple[int, TemplateMatrix] | None = None
        self._lock = threading.Lock()

    # -- enrolment ---------------------------------------------------------------------------------
    @staticmethod
    def check_enrolment(subject_id: str, name: str | None, image_count: int) -> None:
        """Refuse a bad id, name or image count before any photo is decoded."""
        check_subject_id(subject_id)
        check_name(name)
        if not 1 <= image_count <= MAX_ENROL_IMAGES:
            raise InvalidRequest(f"enrol with 1 to {MAX_ENROL_IMAGES} photos (got {image_count})")

    def enroll(self, subject_id: str, name: str | None, faces: list[PreparedFace], embeddings: np.ndarray,
               keep_crop: bool, timings: dict[str, float], model: dict[str, str]) -> Enrolment:
        self.check_enrolment(subject_id, name, len(faces))
        cipher = self.store.cipher(create=True)
        assert cipher is not None
        rows, created = [], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for face, embedding in zip(faces, embeddings):
            tid = secrets.token_hex(8)
            rec = self.identity.recognizer
            vector = np.asarray(embedding, "<f4").tobytes()
            crop = None
            if keep_crop:
                marks = np.asarray(face.face.landmarks, np.float64) @ face.matrix[:, :2].T + face.matrix[:, 2]
                crop = cipher.encrypt(np.ascontiguousarray(face.crop, np.uint8).tobytes()
                                      + marks.astype("<f4").tobytes(), associated_data(subject_id, tid, rec, "crop"))
            rows.append({"id": tid, "subject_id": subject_id, "recognizer": rec,
                         "model_version": self.identity.model_version, "model_sha256": self.identity.model_sha256,
                         "precision": self.identity.precision, "detector": self.identity.detector,
                         "dim": int(len(embedding)), "crop": crop, "created": created,
                         "embedding": cipher.encrypt(vector, associated_data(subject_id, tid, rec, "embedding"))})
        event = AuditEvent("enroll", self.identity.label, subject_id, decision=f"{len(rows)} template(s)")
        self.store.insert_templates(subject_id, check_name(name), rows, event)
        return Enrolment(subject_id, name, [r["id"] for r in rows], [f.report() for f in faces], keep_crop,
                         timings, model)

    def remove_subject(self, subject_id: str) -> int:
        return self.store.remove_subject(subject_id, AuditEvent("remove", self.identity.label, subject_id))

    # -- templates -----------------------------------------------------------------------------
    def decrypted(self, rows: list[dict[str, Any]]) -> list[tuple[str, str, np.ndarray]]:
        """(subject id, template id, embedding) of each row; TemplateMismatch if any was made by other models."""
        stale = sorted({r["subject_id"] for r in rows if not self.identity.made(r)})
        if stale:
            other = next(r for r in rows if not self.identity.made(r))
            shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
            raise TemplateMismatch(
                f"subject(s) {shown} were enrolled with {other['recognizer']}/{other['precision']}/{other['detector']} "
                f"(model {str(other['model_sha256'])[:12]}), but {self.identity.label} (model "
                f"{self.identity.model_sha256[:12]}) is running: their templates are not comparable. Re-enrol them "
                f"with the running models (`edgefx subjects remove ID`, then `edgefx enroll --id ID PHOTO...`), or "
                f"run the models they were enrolled with")
        cipher = self.store.cipher() if rows else None
        out = []
        for r in rows:
            assert cipher is not None
            plain = cipher.decrypt(bytes(r["embedding"]),
                                   associated_data(r["subject_id"], r["id"], r["recognizer"], "embedding"))
            out.append((str(r["subject_id"]), str(r["id"]), np.frombuffer(plain, "<f4").astype(np.float32)))
        return out

    def matrix(self) -> TemplateMatrix:
        """Every template, decrypted once per change of the gallery (by this or another process)."""
        generation = self.store.generation()
        with self._lock:
            if self._matrix is None or self._matrix[0] != generation:
                rows = self.decrypted(self.store.templates())
                dim = rows[0][2].shape[0] if rows else 0
                self._matrix = (generation, TemplateMatrix.build(rows, dim))
            return self._matrix[1]

    def crop_face(self, subject_id: str, template_id: str) -> PreparedFace | None:
        """The kept crop of a template as image b, or None when it was enrolled without `keep_crop`."""
        blob = self.store.crop_blob(template_id)
        cipher = self.store.cipher()
        if blob is None or cipher is None:
            return None
        plain = cipher.decrypt(blob, associated_data(subject_id, template_id, self.identity.recognizer, "crop"))
        pixels = np.frombuffer(plain[:-LANDMARK_BYTES], np.uint8).reshape(TEMPLATE_SIZE, TEMPLATE_SIZE, 3).copy()
        return enrolled_face(pixels, np.frombuffer(plain[-LANDMARK_BYTES:], "<f4").reshape(5, 2).copy())

    # -- decisions -----------------------------------------------------------------------------
    def open_threshold(self, subjects: int) -> tuple[float, str]:
        if self.open_set is None:
            return self.verify_calibration.threshold, (
                f"the verify threshold: no open-set calibration for {self.identity.label} (build it with "
                "`edgefx eval lfw-identify --write-calibration`)")
        gallery_size = max(subjects, 1)
        open_set = self.open_set.threshold(self.fpir, gallery_size)
        source = (f"FPIR {self.fpir:g} at {gallery_size} enrolled subject(s) (open-set calibration on "
                  f"{self.open_set.meta.get('protocol', 'LFW')})")
        # A small gallery's FPIR threshold can fall below the 1:1 one (one subject at FPIR 1 % is FMR 1 %): an
        # identification is never let in more easily than a verification against the same template would be.
        if open_set < self.verify_calibration.threshold:
            return self.verify_calibration.threshold, source + f"; raised to the verify threshold, stricter than " \
                f"{open_set:.4f} at this gallery size"
        return open_set, source

    def identify(self, probe: PreparedFace, embedding: np.ndarray, top: int, want_crop: bool,
                 timings: dict[str, float], model: dict[str, str]) -> Identification:
        t0 = time.perf_counter()
        if top < 1:
            raise InvalidRequest("top must be at least 1")
        matrix = self.matrix()
        hits = matrix.search(embedding, top)
        timings["search"] = (time.perf_counter() - t0) * 1e3
        names = self.store.subjects_by_id([matrix.subject_ids[h.subject] for h in hits])
        candidates = [Candidate(matrix.subject_ids[h.subject], names[matrix.subject_ids[h.subject]].name
                                if matrix.subject_ids[h.subject] in names else None, h.score,
                                matrix.template_ids[h.row]) for h in hits]
        threshold, source = self.open_threshold(matrix.size)
        match, confidence, pic = False, 1.0, None
        if candidates:
            best = candidates[0].score
            if self.open_set is not None:
                match, confidence, pic = self.open_set.decide(best, threshold)
            else:
                match, confidence = self.verify_calibration.decide(best)
                pic = self.verify_calibration.confidence(best)
        faces, unavailable = self.pair_faces(probe, candidates[0] if candidates else None, want_crop)
        pair = VerifyResult(match, candidates[0].score if candidates else 0.0, threshold, confidence, pic or 0.0,
                            faces, timings, model)
        top_id = candidates[0].id if match else None
        self.store.record(AuditEvent("identify", self.identity.label, top_id,
                                     candidates[0].score if candidates else None, pair_decision(match), threshold))
        return Identification(match, candidates[0].score if candidates else None, threshold, confidence, pic,
                              candidates, source, {"subjects": matrix.size, "templates": len(matrix.template_ids)},
                              pair, timings, model, explanation_unavailable=unavailable)

    def pair_faces(self, probe: PreparedFace, best: Candidate | None,
                   want_crop: bool) -> tuple[tuple[PreparedFace, ...], str | None]:
        """(probe,) or (the best template's kept crop, probe): enrolled = image a and live = image b, as the questions
        name them ("the enrolled photo", "my photo"); with `want_crop`, why the crop is not there."""
        if not want_crop:
            return (probe,), None
        if best is None:
            return (probe,), "Nobody is enrolled yet, so there is no enrolled photo to explain the decision against."
        enrolled = self.crop_face(best.id, best.template_id)
        if enrolled is None:
            who = f"{best.name} ({best.id})" if best.name else best.id
            return (probe,), (f"{who} was enrolled without keeping a photo to compare with, so this decision cannot "
                              "be explained. To see explanations, enrol again with the photo kept (--keep-crop, or "
                              "keep_crop=true over HTTP).")
        return (enrolled, probe), None

    def verify_id(self, subject_id: str, probe: PreparedFace, embedding: np.ndarray, want_crop: bool,
                  timings: dict[str, float], model: dict[str, str]) -> VerifyResult:
        """1:1 against a claimed subject: the best score over its templates, the verify threshold and PIC."""
        t0 = time.perf_counter()
        subject = self.store.subject(subject_id)
        templates = self.decrypted(self.store.templates(subject_id))
        scores = np.stack([t[2] for t in templates]) @ np.asarray(embedding, np.float32)
        best = int(np.argmax(scores))
        score = float(scores[best])
        match, confidence = self.verify_calibration.decide(score)
        pic = self.verify_calibration.confidence(score)
        timings["decide"] = (time.perf_counter() - t0) * 1e3
        faces, unavailable = self.pair_faces(probe, Candidate(subject_id, subject.name, score, templates[best][1]),
                                             want_crop)
        extra: dict[str, Any] = {"subject": subject_id, "name": subject.name, "templates_compared": len(templates)}
        if unavailable:
            extra["explanation_unavailable"] = unavailable
        self.store.record(AuditEvent("verify_id", self.identity.label, subject_id, score, pair_decision(match),
                                     self.verify_calibration.threshold))
        return VerifyResult(match, score, self.verify_calibration.threshold, confidence, pic, faces,
                            timings, model, extra=extra)


def open_gallery(settings: Settings, manifest: Manifest, recognizer: str, verify_calibration: Calibration) -> Gallery:
    """The gallery at `Settings.db` (key `Settings.key_file`) for the running recognizer x precision x detector."""
    store = GalleryStore(settings.db, settings.key_file)
    identity = template_identity(manifest, recognizer, settings.precision, settings.detector)
    open_set = load_open_set(settings.models_dir, recognizer, settings.precision, settings.detector,
                             getattr(settings, "fusion_weight", None))
    return Gallery(store, identity, verify_calibration, open_set, settings.identify_fpir)


def pair_decision(match: bool) -> str:
    return "match" if match else "no match"
