"""Access control over real HTTP on the real models: enrol -> identify -> verify against the claimed id -> remove ->
identify again; every bad input a 4xx JSON error; an unknown subject 404; a wrong key a JSON 503; the token."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgefx.runtime.config import Settings
from edgefx.runtime.errors import ModelError
from edgefx.service.app import create_app
from live_server import lfw_pairs, require_lfw, serving

TOKEN = "t0k3n-for-tests-0123456789"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from edgefx.engine import Engine

    require_lfw()
    folder = tmp_path_factory.mktemp("gallery")
    try:
        return Engine(Settings.from_env(db=folder / "gallery.db", key_file=folder / "gallery.key"), load_qa=False)
    except ModelError as exc:
        pytest.skip(f"models are not built ({exc.code}: {exc.message}); run `make models`")


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    require_lfw()
    matched, mismatched = lfw_pairs(5)
    alice = matched[0]
    others = [p for pair in mismatched for p in pair if p.parent.name != alice[0].parent.name]
    bob = others[0]
    assert bob.parent.name != alice[0].parent.name
    return {"alice_1": alice[0].read_bytes(), "alice_2": alice[1].read_bytes(), "bob_1": bob.read_bytes()}


@pytest.fixture(scope="module")
def url(engine: Any) -> Iterator[str]:
    with serving(create_app(engine, engine.settings, token="")) as base:
        yield base


def files(*images: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]


def error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == code, response.text


def test_enrol_identify_verify_remove_identify_again(url: str, photos: dict[str, bytes]) -> None:
    with httpx.Client(base_url=url, timeout=120) as http:
        r = http.post("/v1/subjects", data={"id": "alice", "name": "Alice", "keep_crop": "true"},
                      files=files(photos["alice_1"]))
        assert r.status_code == 201, r.text
        assert r.json()["subject"] == "alice" and len(r.json()["templates"]) == 1 and r.json()["kept_crops"]
        assert http.post("/v1/subjects", data={"id": "bob"}, files=files(photos["bob_1"])).status_code == 201
        listed = http.get("/v1/subjects").json()["subjects"]
        assert [(s["id"], s["name"], s["templates"]) for s in listed] == [("alice", "Alice", 1), ("bob", None, 1)]

        found = http.post("/v1/identify", files=files(photos["alice_2"])).json()
        assert {"match", "subject", "score", "threshold", "confidence", "candidates", "faces", "timings_ms"} <= set(found)
        assert found["match"] and found["subject"] == "alice"
        assert [c["id"] for c in found["candidates"]] == ["alice", "bob"]
        assert found["candidates"][0]["score"] >= found["candidates"][1]["score"]

        claimed = http.post("/v1/subjects/alice/verify", files=files(photos["alice_2"])).json()
        assert claimed["match"] and claimed["subject"] == "alice" and claimed["decision"] == "match"
        wrong_claim = http.post("/v1/subjects/bob/verify", files=files(photos["alice_2"])).json()
        assert not wrong_claim["match"] and wrong_claim["subject"] == "bob"

        assert http.delete("/v1/subjects/alice").json() == {"removed": "alice", "templates_erased": 1}
        again = http.post("/v1/identify", files=files(photos["alice_2"])).json()
        assert again["subject"] != "alice" and "alice" not in [c["id"] for c in again["candidates"]]
        error(http.post("/v1/subjects/alice/verify", files=files(photos["alice_2"])), 404, "unknown_subject")


def test_an_explained_identification_is_against_the_kept_enrolled_photo(url: str, photos: dict[str, bytes]) -> None:
    with httpx.Client(base_url=url, timeout=300) as http:
        assert http.post("/v1/subjects", data={"id": "carol", "keep_crop": "1"},
                         files=files(photos["alice_1"])).status_code == 201
        assert http.post("/v1/subjects", data={"id": "dave"}, files=files(photos["bob_1"])).status_code == 201
        found = http.post("/v1/identify?explain=true", files=files(photos["alice_2"])).json()
        assert found["subject"] == "carol" and found["explanation"]["table"] and found["explanation_id"]
        # the enrolled crop is image a (the reference) and the live photo image b ("my photo" in a question)
        assert [f["image"] for f in found["faces"]] == ["a", "b"]
        assert found["faces"][0]["box"] == [0, 0, 112, 112] and found["faces"][1]["box"] != [0, 0, 112, 112]
        assert http.get(f"/v1/explanations/{found['explanation_id']}").status_code == 200
        without = http.post("/v1/subjects/dave/verify?explain=true", files=files(photos["bob_1"])).json()
        assert "explanation" not in without and "without keeping" in without["explanation_unavailable"]
        http.delete("/v1/subjects/carol")
        http.delete("/v1/subjects/dave")


def test_bad_requests_are_4xx_json_and_the_service_keeps_running(url: str, photos: dict[str, bytes]) -> None:
    jpeg = photos["bob_1"]
    with httpx.Client(base_url=url, timeout=120) as http:
        error(http.post("/v1/subjects"), 415, "unsupported_media_type")
        error(http.post("/v1/subjects", json={"id": "x"}), 415, "unsupported_media_type")
        error(http.post("/v1/subjects", files=files(jpeg)), 400, "invalid_request")  # no id
        error(http.post("/v1/subjects", files=[("id", (None, b"x"))]), 400, "invalid_request")  # no image
        error(http.post("/v1/subjects", data={"id": "../../etc"}, files=files(jpeg)), 400, "invalid_request")
        error(http.post("/v1/subjects", data={"id": "x", "keep_crop": "maybe"}, files=files(jpeg)), 400,
              "invalid_request")
        error(http.post("/v1/subjects", data={"id": "x"}, files=files(*[jpeg] * 11)), 400, "invalid_request")
        error(http.post("/v1/subjects", data={"id": "x"}, files=files(b"not an image")), 415, "unsupported_format")
        error(http.post("/v1/subjects", data={"id": "x"}, files=files(b"")), 400, "invalid_image")
        error(http.post("/v1/identify", files=files(jpeg, jpeg)), 400, "invalid_request")
        error(http.post("/v1/identify?top=0", files=files(jpeg)), 400, "invalid_request")
        error(http.post("/v1/identify", files=files(jpeg[: len(jpeg) // 3])), 400, "invalid_image")
        error(http.post("/v1/subjects/nobody/verify", files=files(jpeg)), 404, "unknown_subject")
        error(http.delete("/v1/subjects/nobody"), 404, "unknown_subject")
        error(http.delete("/v1/subjects/bad%20id"), 400, "invalid_request")
        assert "x" not in [s["id"] for s in http.get("/v1/subjects").json()["subjects"]]  # nothing half-enrolled
        assert http.get("/v1/health").status_code == 200


def test_a_wrong_key_is_a_json_error_not_a_crash(engine: Any, photos: dict[str, bytes], tmp_path: Path) -> None:
    from edgefx.engine import Engine

    engine.enroll("erin", [photos["bob_1"]])
    other_key = tmp_path / "other.key"
    other_key.write_text("11" * 32)
    wrong = Engine(dataclasses.replace(engine.settings, key_file=other_key), load_qa=False)
    with serving(create_app(wrong, wrong.settings, token="")) as base, httpx.Client(base_url=base, timeout=120) as http:
        error(http.post("/v1/identify", files=files(photos["alice_2"])), 503, "template_key_mismatch")
        error(http.post("/v1/subjects", data={"id": "frank"}, files=files(photos["alice_1"])), 503,
              "template_key_mismatch")
        assert http.get("/v1/subjects").status_code == 200  # listing needs no key; the service stays up
    assert [s.id for s in engine.subjects()].count("frank") == 0
    engine.remove_subject("erin")


def test_the_gallery_routes_need_the_token_when_one_is_set(engine: Any, photos: dict[str, bytes]) -> None:
    with serving(create_app(engine, engine.settings, token=TOKEN)) as base, httpx.Client(base_url=base) as http:
        error(http.get("/v1/subjects"), 401, "unauthorized")
        error(http.post("/v1/identify", files=files(photos["bob_1"])), 401, "unauthorized")
        error(http.delete("/v1/subjects/anyone"), 401, "unauthorized")
        assert http.get("/v1/subjects", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
