"""`POST /v1/verify`: two photos in, the decision out; with `?explain=true` also the stored explanation."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from edgefx.service.explained import Explained, link_images, verify_call
from edgefx.service.state import Services, services
from edgefx.service.uploads import read_two_images

router = APIRouter()

TWO_IMAGES = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image_a", "image_b"],
                    "properties": {
                        "image_a": {"type": "string", "format": "binary"},
                        "image_b": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}


@router.post("/verify", summary="Verify that two photos show the same person; optionally explain the decision",
             openapi_extra=TWO_IMAGES)
async def verify(request: Request, explain: bool = False, methods: str | None = None,
                 s: Services = Depends(services)) -> JSONResponse:
    method_list = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    image_a, image_b = await read_two_images(request.headers.get("content-type"), request.stream())
    kind = "explain" if explain else "verify"
    result = await s.pool.run(verify_call(s.engine, image_a, image_b, explain, method_list), kind=kind)
    del image_a, image_b
    body = result.to_dict()
    if explain and body.get("explanation") is not None:
        entry = s.store.put(Explained(result, body))
        body["explanation_id"] = entry.id
        link_images(body["explanation"], entry.id)
    return JSONResponse(body)
