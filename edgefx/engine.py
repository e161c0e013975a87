"""The Engine: loads every model once and runs verify / explain / ask for the CLI and the server."""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from edgefx.explain.result import explain_result
from edgefx.faces.align import TEMPLATE_SIZE, align, template
from edgefx.faces.decision import Calibration, cosine, load_calibration
from edgefx.faces.detection import select_face
from edgefx.faces.loading import load_face_models
from edgefx.faces.result import ImageInput, PreparedFace, VerifyResult
from edgefx.faces.yunet import YuNet
from edgefx.gallery.access import Gallery, open_gallery
from edgefx.gallery.results import Enrolment, Identification
from edgefx.gallery.store import SubjectRow
from edgefx.qa.answerer import Answer, QuestionAnswerer
from edgefx.qa.facts import Fact
from edgefx.runtime.config import Settings
from edgefx.runtime.errors import NoFaceDetected
from edgefx.runtime.image import decode_image
from edgefx.runtime.manifest import Manifest

log = logging.getLogger(__name__)

class Engine:
    """Loads the detector, recognizer, calibration (and, lazily or eagerly, the QA models) once; thread-safe."""

    def __init__(self, settings: Settings | None = None, load_qa: bool = True) -> None:
        self.settings = s = settings or Settings.from_env()
        t0 = time.perf_counter()
        self.manifest = Manifest(s.models_dir)
        self.detector, self.recognizer, self.backend_name = load_face_models(s)
        self.device = self.recognizer.model.device
        # Refuses (CalibrationMismatch, a ModelError) a calibration fitted for another recognizer.
        self.calibration: Calibration = load_calibration(s.models_dir, self.recognizer.name, s.precision, s.detector)
        self.calibration.require_weight(getattr(self.recognizer, "weight", None))
        if self.calibration.meta.get("flip_tta", s.flip_tta) != s.flip_tta:
            log.warning("the decision threshold was calibrated with flip_tta=%s but runs with flip_tta=%s",
                        self.calibration.meta.get("flip_tta"), s.flip_tta)
        self.qa = None
        if load_qa:
            self.qa = QuestionAnswerer.load(s)
        # Photo B is decoded, detected and aligned on this thread while the caller does photo A.
        cores = s.threads or os.cpu_count() or 1
        self._prepare_pool = ThreadPoolExecutor(1, thread_name_prefix="edgefx-prepare") if cores > 1 else None
        self._gallery: Gallery | None = None  # opened on first use: a verify-only run never creates a database
        self._gallery_lock = threading.Lock()
        self._warm_up()
        self.load_seconds = time.perf_counter() - t0
        self.ready = True

    def _warm_up(self) -> None:
        """Each step of a verification once at load (JPEG decoder, every net, alignment), so that the first person at
        the kiosk does not wait for lazy initialisation and the service's memory when ready is the memory it keeps."""
        grey = np.full((160, 160, 3), 128, np.uint8)
        photo = decode_image(cv2.imencode(".jpg", grey)[1].tobytes(), self.settings.max_pixels)
        self.detector.warm_up(photo)
        crop, _ = align(photo, template() + (np.array(photo.shape[1::-1]) - TEMPLATE_SIZE) / 2)  # a central "face"
        self.recognizer.embed(np.stack([crop, crop]))

    # -- verification -------------------------------------------------------------------------
    def prepare(self, image: ImageInput, label: str, timings: dict[str, float]) -> PreparedFace:
        """Decode, detect, select the face, align; adds per-stage milliseconds to `timings`."""
        t0 = time.perf_counter()
        photo = image if isinstance(image, np.ndarray) else decode_image(bytes(image), self.settings.max_pixels)
        t1 = time.perf_counter()
        faces = self.detector.detect(photo)
        t2 = time.perf_counter()
        if not faces:
            raise NoFaceDetected(f"no face was found in image {label}", image=label)
        face, others = select_face(faces, photo.shape)
        crop, matrix = align(photo, face.landmarks)
        t3 = time.perf_counter()
        for stage, dt in (("decode", t1 - t0), ("detect", t2 - t1), ("align", t3 - t2)):
            timings[stage] = timings.get(stage, 0.0) + dt * 1e3
        return PreparedFace(label, photo, face, others, crop, matrix)

    def verify(self, image_a: ImageInput, image_b: ImageInput, explain: bool = False,
               methods: list[str] | None = None) -> VerifyResult:
        """Compare two photos; with `explain`, also compute the saliency maps and the region table."""
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        timings_b: dict[str, float] = {}
        if self._prepare_pool is None:
            face_a = self.prepare(image_a, "a", timings)
            face_b = self.prepare(image_b, "b", timings)  # one after the other: stage times add up
        else:
            pending_b = self._prepare_pool.submit(self.prepare, image_b, "b", timings_b)
            try:
                face_a = self.prepare(image_a, "a", timings)  # photo A's error comes first, as it would serially
            except BaseException:
                pending_b.exception()  # waits: photo B's work ends before the error reaches the caller
                raise
            face_b = pending_b.result()
        # Per stage, the slower photo: with the two photos in parallel that is the stage's share of the wall time.
        for stage, ms in timings_b.items():
            timings[stage] = max(timings.get(stage, 0.0), ms)
        t0 = time.perf_counter()
        emb = self.recognizer.embed(np.stack([face_a.crop, face_b.crop]))
        t1 = time.perf_counter()
        score = cosine(emb[0], emb[1])
        match, confidence = self.calibration.decide(score)
        pic = self.calibration.confidence(score)
        t2 = time.perf_counter()
        timings["embed"] = (t1 - t0) * 1e3
        timings["decide"] = (t2 - t1) * 1e3
        timings["total"] = (t2 - t_start) * 1e3
        result = VerifyResult(match, score, self.calibration.threshold, confidence, pic, (face_a, face_b), timings,
                              self.model_info(), embeddings=(emb[0], emb[1]))
        if explain:
            t3 = time.perf_counter()
            result.explanation = explain_result(result, self.recognizer.embed, self.calibration.threshold, methods)
            result.timings_ms["explain"] = (time.perf_counter() - t3) * 1e3
        return result

    def release_memory(self) -> int:
        """Free the buffers that models on OpenVINO keep sized for the largest input they have seen (an explanation's
        SFace batches, a long question), so that they do not stay with the service; returns how many were freed.
        Safe at any time: a model that is running keeps its buffers."""
        models = [self.recognizer.model] + (self.qa.models() if self.qa is not None else [])
        return sum(bool(m.release_memory()) for m in models if hasattr(m, "release_memory"))

    def model_info(self) -> dict[str, str]:
        yunet = isinstance(self.detector, YuNet)  # YuNet is built in fp32 only
        return {"detector": self.settings.detector, "recognizer": self.recognizer.name,
                "precision": self.settings.precision,
                "detector_precision": "fp32" if yunet else self.settings.detector_precision, "backend": self.backend_name,
                "detector_backend": self.detector.backend, "device": self.device,
                "flip_tta": str(self.recognizer.flip_tta).lower()}

    # -- access control: the gallery (edgefx.gallery) ----------------------------------------------
    @property
    def gallery(self) -> Gallery:
        with self._gallery_lock:
            if self._gallery is None:
                self._gallery = open_gallery(self.settings, self.manifest, self.recognizer.name, self.calibration)
            return self._gallery

    def _embed_one(self, image: ImageInput, timings: dict[str, float]) -> tuple[PreparedFace, np.ndarray]:
        face = self.prepare(image, "b", timings)  # the live photo is image b, as the questions name it
        t0 = time.perf_counter()
        embedding = self.recognizer.embed(face.crop[None])[0]
        timings["embed"] = (time.perf_counter() - t0) * 1e3
        return face, embedding

    def _explained(self, pair: VerifyResult, timings: dict[str, float]) -> Any:
        t0 = time.perf_counter()
        explanation = explain_result(pair, self.recognizer.embed, pair.threshold)
        timings["explain"] = (time.perf_counter() - t0) * 1e3
        return explanation

    def enroll(self, subject_id: str, images: list[bytes], name: str | None = None,
               keep_crop: bool = False) -> Enrolment:
        """Store one encrypted template per photo (and, with `keep_crop`, its aligned crop) for a subject."""
        self.gallery.check_enrolment(subject_id, name, len(images))
        t_start, timings = time.perf_counter(), {}
        faces = [self.prepare(image, str(i + 1), timings) for i, image in enumerate(images)]
        t0 = time.perf_counter()
        embeddings = self.recognizer.embed(np.stack([f.crop for f in faces]))
        timings["embed"] = (time.perf_counter() - t0) * 1e3
        enrolment = self.gallery.enroll(subject_id, name, faces, embeddings, keep_crop, timings, self.model_info())
        timings["total"] = (time.perf_counter() - t_start) * 1e3
        return enrolment

    def identify(self, image: ImageInput, top: int = 5, explain: bool = False) -> Identification:
        """1:N open-set: who of the enrolled, if anyone; the top candidates best first."""
        t_start, timings = time.perf_counter(), {}
        probe, embedding = self._embed_one(image, timings)
        result = self.gallery.identify(probe, embedding, top, explain, timings, self.model_info())
        if explain and len(result.pair.faces) == 2:
            result.explanation = result.pair.explanation = self._explained(result.pair, timings)
        timings["total"] = (time.perf_counter() - t_start) * 1e3
        return result

    def verify_id(self, subject_id: str, image: ImageInput, explain: bool = False) -> VerifyResult:
        """1:1 against a claimed subject (its best template), with the verify threshold; `extra.subject` names it."""
        self.gallery.store.subject(subject_id)  # an unknown subject is refused before any photo is decoded
        t_start, timings = time.perf_counter(), {}
        probe, embedding = self._embed_one(image, timings)
        result = self.gallery.verify_id(subject_id, probe, embedding, explain, timings, self.model_info())
        if explain and len(result.faces) == 2:
            result.explanation = self._explained(result, timings)
        timings["total"] = (time.perf_counter() - t_start) * 1e3
        return result

    def subjects(self) -> list[SubjectRow]:
        return self.gallery.store.subjects()

    def remove_subject(self, subject_id: str) -> int:
        """Erase a subject's rows (vacuumed, WAL checkpointed); how many templates were erased."""
        return self.gallery.remove_subject(subject_id)

    def audit_verify(self) -> dict[str, Any]:
        """{ok, rows, ...}: whether the audit trail's hash chain verifies."""
        return self.gallery.store.audit_verify()

    # -- questions ----------------------------------------------------------------------------
    def ask(self, facts: list[Fact], question: str) -> Answer:
        """Answer a question about one result, given its facts (`edgefx.qa.context.build_facts(result.to_dict())`)."""
        if self.qa is None:
            self.qa = QuestionAnswerer.load(self.settings)
        return self.qa.answer(facts, question)

    def info(self) -> dict[str, Any]:
        """Models with their hashes, backend, device and decision threshold (for `/v1/info`)."""
        models = {key: {fmt: [p.get("sha256") for p in ([spec] if "path" in spec else spec.values())]
                        for fmt, spec in entry["files"].items()}
                  for key, entry in self.manifest.entries().items()}
        return {
            "version": __import__("edgefx").__version__,
            **self.model_info(),
            "threshold": self.calibration.threshold,
            "calibration": self.calibration.meta,
            "models": models,
            "load_seconds": round(self.load_seconds, 3),
        }
