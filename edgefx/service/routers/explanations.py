"""A stored explanation: its JSON and context, its heatmap and summary PNGs, and questions about it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from edgefx.qa.answerer import MAX_QUESTION_CHARS, validate_question
from edgefx.runtime.errors import InvalidQuestion, InvalidRequest, NotFound, UnsupportedMediaType
from edgefx.service.explained import IMAGES, Explained, explanation_facts
from edgefx.service.memory import then_trim_heap
from edgefx.service.state import Services, services

router = APIRouter(prefix="/explanations/{explanation_id}")

MAX_JSON_BYTES = 16 * 1024
PNG = {200: {"content": {"image/png": {}}}}
QUESTION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["question"],
                    "properties": {"question": {"type": "string", "maxLength": MAX_QUESTION_CHARS}},
                }
            }
        },
    }
}


@router.get("", summary="An explanation: result, table and context sentences")
async def explanation(explanation_id: str, s: Services = Depends(services)) -> dict[str, Any]:
    explained: Explained = s.lookup(explanation_id).result
    facts = await s.pool.run(explanation_facts, explained)
    return {**explained.body, "context": [f.text for f in facts]}


@router.get("/heatmaps/{image}/{method}.png", summary="The heatmap of one method over one photo",
            response_class=Response, responses=PNG)
async def heatmap(explanation_id: str, image: str, method: str, s: Services = Depends(services)) -> Response:
    entry = s.lookup(explanation_id)
    explained: Explained = entry.result
    methods = explained.body["explanation"].get("methods", [])
    if image not in IMAGES:
        raise NotFound(f"image must be 'a' or 'b', not {image!r}")
    if method not in methods:
        raise NotFound(f"method {method!r} is not in this explanation ({', '.join(methods)})")
    png = await s.pool.run(then_trim_heap(lambda: explained.result.explanation.heatmap_png(image, method)))
    s.store.touch(entry)
    return Response(png, media_type="image/png")


@router.get("/summary.png", summary="Both faces and every method's heatmap in one figure",
            response_class=Response, responses=PNG)
async def summary(explanation_id: str, s: Services = Depends(services)) -> Response:
    entry = s.lookup(explanation_id)
    explained: Explained = entry.result
    png = await s.pool.run(then_trim_heap(explained.result.explanation.summary_png))
    s.store.touch(entry)
    return Response(png, media_type="image/png")


@router.post("/ask", summary="Ask a question about an explained decision", openapi_extra=QUESTION_BODY)
async def ask(explanation_id: str, request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    question = await read_question(request)
    explained: Explained = s.lookup(explanation_id).result
    facts = await s.pool.run(explanation_facts, explained)
    answer = await s.pool.run(s.engine.ask, facts, question)
    return answer_dict(answer)


def answer_dict(answer: Any) -> dict[str, Any]:
    """The engine's Answer as JSON; the four documented keys are always present."""
    data = answer.to_dict() if hasattr(answer, "to_dict") else dataclasses.asdict(answer)
    for key in ("answer", "confidence", "evidence", "suggestions"):
        data.setdefault(key, None)
    return data


async def read_question(request: Request) -> str:
    """The `question` of a small JSON body, validated; typed errors for anything else."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType('send the question as application/json: {"question": "..."}')
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise InvalidQuestion(f"the request is too long; a question has at most {MAX_QUESTION_CHARS} characters")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest('the body is not valid JSON; send {"question": "..."}') from None
    question = payload.get("question") if isinstance(payload, dict) else None
    if not isinstance(question, str):
        raise InvalidRequest('send {"question": "..."} with the question as a string')
    return validate_question(question)
