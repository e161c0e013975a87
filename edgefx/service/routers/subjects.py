"""Access control over HTTP: enrol (`POST /v1/subjects`), list, remove, identify (`POST /v1/identify`) and verify
against a claimed subject (`POST /v1/subjects/{id}/verify`); explained decisions are stored like verify's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from edgefx.gallery.store import check_subject_id
from edgefx.runtime.errors import InvalidRequest
from edgefx.service.explained import Explained, link_images
from edgefx.service.memory import give_back_memory
from edgefx.service.state import Services, services
from edgefx.service.uploads import read_form

router = APIRouter()
TRUE, FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def form_body(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """The OpenAPI description of a multipart form (the route reads the stream itself)."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": required, "properties": fields}}}}}


IMAGE = {"type": "string", "format": "binary"}
TEXT = {"type": "string"}
ENROL_FORM = form_body({"id": TEXT, "name": TEXT, "image": {"type": "array", "items": IMAGE, "maxItems": 10},
                        "keep_crop": {"type": "boolean"}}, ["id", "image"])
PROBE_FORM = form_body({"image": IMAGE}, ["image"])


def flag(value: str | None, name: str) -> bool:
    text = (value or "").strip().lower()
    if text not in TRUE | FALSE:
        raise InvalidRequest(f"field {name} must be true or false, not {value!r}")
    return text in TRUE


def explained_body(s: Services, result: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Keep an explained decision (its probe-vs-enrolled pair) for the explanation and question routes."""
    if body.get("explanation") is not None:
        entry = s.store.put(Explained(result, body))
        body["explanation_id"] = entry.id
        link_images(body["explanation"], entry.id)
    return body


async def one_image(request: Request) -> bytes:
    images, _ = await read_form(request.headers.get("content-type"), request.stream())
    if len(images) != 1:
        raise InvalidRequest(f"send exactly one photo in the field image (got {len(images)})")
    return images[0]


def released(engine: Any, fn: Any, explain: bool) -> Any:
    """`fn`, and after an explanation the memory it took goes back (as after an explained verify)."""
    def call() -> Any:
        try:
            return fn()
        finally:
            if explain:
                give_back_memory(engine)
    return call


@router.post("/subjects", status_code=201, summary="Enrol a subject: one encrypted template per photo",
             openapi_extra=ENROL_FORM)
async def enrol(request: Request, s: Services = Depends(services)) -> JSONResponse:
    images, fields = await read_form(request.headers.get("content-type"), request.stream(),
                                     texts=("id", "name", "keep_crop"))
    if "id" not in fields:
        raise InvalidRequest("send the subject id in the field id")
    subject_id, name, keep = check_subject_id(fields["id"]), fields.get("name") or None, flag(
        fields.get("keep_crop"), "keep_crop")
    result = await s.pool.run(lambda: s.engine.enroll(subject_id, images, name=name, keep_crop=keep), kind="verify")
    return JSONResponse(result.to_dict(), status_code=201)


@router.get("/subjects", summary="The enrolled subjects")
def list_subjects(s: Services = Depends(services)) -> dict[str, Any]:
    return {"subjects": [row.to_dict() for row in s.engine.subjects()]}


@router.delete("/subjects/{subject_id}", summary="Erase a subject's templates (the database is vacuumed)")
def remove_subject(subject_id: str, s: Services = Depends(services)) -> dict[str, Any]:
    check_subject_id(subject_id)
    return {"removed": subject_id, "templates_erased": s.engine.remove_subject(subject_id)}


@router.post("/identify", summary="1:N: who of the enrolled subjects is in the photo, if anyone",
             openapi_extra=PROBE_FORM)
async def identify(request: Request, explain: bool = False, top: int = 5,
                   s: Services = Depends(services)) -> JSONResponse:
    if not 1 <= top <= 100:
        raise InvalidRequest("top must be between 1 and 100")
    image = await one_image(request)
    call = released(s.engine, lambda: s.engine.identify(image, top=top, explain=explain), explain)
    result = await s.pool.run(call, kind="explain" if explain else "verify")
    return JSONResponse(explained_body(s, result.pair, result.to_dict()))


@router.post("/subjects/{subject_id}/verify", summary="1:1: is the person in the photo this enrolled subject?",
             openapi_extra=PROBE_FORM)
async def verify_subject(subject_id: str, request: Request, explain: bool = False,
                         s: Services = Depends(services)) -> JSONResponse:
    check_subject_id(subject_id)
    image = await one_image(request)
    call = released(s.engine, lambda: s.engine.verify_id(subject_id, image, explain=explain), explain)
    result = await s.pool.run(call, kind="explain" if explain else "verify")
    return JSONResponse(explained_body(s, result, result.to_dict()))
