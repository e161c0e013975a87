"""Typed errors: each has a stable machine-readable `code` and the HTTP `status` it maps to."""

from __future__ import annotations


class EdgefxError(Exception):
    """Base class of every error edgefx raises on purpose."""

    code: str = "edgefx_error"
    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidImage(EdgefxError):
    """The bytes are empty, truncated, or not a decodable image."""

    code = "invalid_image"
    status = 400


class UnsupportedFormat(EdgefxError):
    """The image is in a format the device does not accept (allowed: JPEG, PNG, WebP, BMP)."""

    code = "unsupported_format"
    status = 415


class UnsupportedMediaType(EdgefxError):
    """The request body is not multipart/form-data."""

    code = "unsupported_media_type"
    status = 415


class BodyTooLarge(EdgefxError):
    """The request body is larger than the configured limit."""

    code = "body_too_large"
    status = 413


class ImageTooLarge(EdgefxError):
    """The image has more pixels (or bytes) than the configured limit."""

    code = "image_too_large"
    status = 413


class ImageTooSmall(EdgefxError):
    """The image is too small to contain a face that can be verified."""

    code = "image_too_small"
    status = 422


class NoFaceDetected(EdgefxError):
    """No face was found in an image."""

    code = "no_face_detected"
    status = 422

    def __init__(self, message: str, image: str | None = None) -> None:
        super().__init__(message)
        self.image = image


class InvalidQuestion(EdgefxError):
    """A question is empty or longer than the limit."""

    code = "invalid_question"
    status = 422


class InvalidRequest(EdgefxError):
    """A request is malformed (missing field, bad parameter)."""

    code = "invalid_request"
    status = 400


class NotFound(EdgefxError):
    """An explanation id (or another resource) is unknown or expired."""

    code = "not_found"
    status = 404


class Busy(EdgefxError):
    """The inference queue is full; retry after `retry_after` seconds."""

    code = "busy"
    status = 503

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(EdgefxError):
    """A token is required and was missing or wrong."""

    code = "unauthorized"
    status = 401


class ModelError(EdgefxError):
    """A model artifact is missing, tampered with, or cannot be loaded."""

    code = "model_error"
    status = 503


class ModelMissing(ModelError):
    """A model artifact is not built yet."""

    code = "model_missing"


class ModelHashMismatch(ModelError):
    """A model artifact's sha256 differs from the manifest (tampered or stale)."""

    code = "model_hash_mismatch"


class CalibrationMismatch(ModelError):
    """A decision calibration was fitted for another recognizer (or precision, or detector) than the one loaded:
    its threshold and score densities would be meaningless for these scores."""

    code = "calibration_mismatch"


class CannotWrite(EdgefxError):
    """An output file or folder cannot be created or written (CLI: exit 2)."""

    code = "cannot_write"
    status = 500


class CannotRead(EdgefxError):
    """An input file cannot be read: missing, a folder, or not permitted (CLI: exit 2)."""

    code = "cannot_read"
    status = 400


class BadArgument(EdgefxError):
    """A command-line argument is missing or malformed (CLI: exit 2)."""

    code = "bad_argument"
    status = 400


class TemplateKeyError(EdgefxError):
    """The template key file is unreadable or malformed: a server configuration fault, nothing was read or written."""

    code = "template_key_error"
    status = 503


class TemplateKeyMismatch(TemplateKeyError):
    """The gallery was encrypted with another key than the one configured; no template was read or changed."""

    code = "template_key_mismatch"


class TemplateMismatch(EdgefxError):
    """An enrolled template was made by another recognizer, precision or detector than the one running: its scores
    would not be comparable, so it is never compared (re-enrol the subject with the running models)."""

    code = "template_mismatch"
    status = 409


class UnknownSubject(NotFound):
    """No subject with this id is enrolled."""

    code = "unknown_subject"


class GalleryUnavailable(EdgefxError):
    """The gallery database cannot be opened or written (path, permissions, a damaged file)."""

    code = "gallery_unavailable"
    status = 503


class AuditChainBroken(EdgefxError):
    """A row of the audit trail was changed or deleted: its hash chain does not verify."""

    code = "audit_chain_broken"
    status = 500
