"""The HTTP API over real HTTP: happy path on LFW with the real engine, every bad input, tokens, limits, busy."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import socket
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from edgefx.runtime.config import Settings
from edgefx.runtime.errors import InvalidRequest, ModelMissing
from edgefx.runtime.image import decode_image
from edgefx.service.app import create_app
from edgefx.service.process import sd_notify, uvicorn_server
from edgefx.service.security import UnsafeBind, check_bind, resolve_token
from edgefx.service.store import ExplanationStore
from live_server import lfw_pairs, real_engine, require_lfw, serving

TOKEN = "t0k3n-for-tests-0123456789"
METHODS = ["single_removal", "greedy_removal", "single_aggregation", "greedy_aggregation", "average"]


# ---------------------------------------------------------------------------------------------- a stand-in engine
# Only for the paths that must not depend on the models (bad input, tokens, queueing). It decodes with the
# real edgefx.runtime.image, so malformed images are refused by the same code as in production.


@dataclasses.dataclass
class FakeAnswer:
    answer: str
    confidence: float
    evidence: str
    suggestions: list[str]


class FakeExplanation:
    def __init__(self, methods: list[str]) -> None:
        self.methods = methods

    def heatmap_png(self, image: str, method: str) -> bytes:
        ok, png = cv2.imencode(".png", np.full((112, 112, 3), 10 * len(method), np.uint8))
        assert ok
        return png.tobytes()

    def summary_png(self) -> bytes:
        return self.heatmap_png("a", "summary")


class FakeResult:
    def __init__(self, explain: bool, methods: list[str]) -> None:
        self.explanation = FakeExplanation(methods) if explain else None
        self.methods = methods

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"match": True, "score": 0.5, "threshold": 0.3, "confidence": 0.9, "faces": []}
        if self.explanation is not None:
            body["explanation"] = {
                "methods": self.methods,
                "table": [],
                "heatmaps": {"a": {m: "local" for m in self.methods}},
                "summary": "local",
            }
        return body


class FakeEngine:
    ready = True

    def __init__(self, max_pixels: int = 40_000_000, delay_s: float = 0.0) -> None:
        self.max_pixels = max_pixels
        self.delay_s = delay_s
        self.calls = 0

    def verify(self, image_a: bytes, image_b: bytes, explain: bool = False, methods: list[str] | None = None) -> FakeResult:
        self.calls += 1
        decode_image(image_a, self.max_pixels)
        decode_image(image_b, self.max_pixels)
        methods = methods or METHODS
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise InvalidRequest(f"unknown method(s): {unknown}")
        time.sleep(self.delay_s)
        return FakeResult(explain, methods)

    def ask(self, facts: list[Any], question: str) -> FakeAnswer:
        if question == "model gone":
            raise ModelMissing("no model qa/int8 in /srv/secret/models/manifest.json")
        return FakeAnswer(facts[0].text, 0.8, facts[0].text, ["Which region mattered most?"])

    def info(self) -> dict[str, Any]:
        return {"models": {}}


# ---------------------------------------------------------------------------------------------- inputs


def jpeg_bytes(size: int = 96) -> bytes:
    rng = np.random.default_rng(0)
    ok, data = cv2.imencode(".jpg", rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


@functools.lru_cache(maxsize=1)
def png_bomb(side: int = 20_000) -> bytes:
    """A valid side x side 8-bit gray PNG of zeros: ~400 MB of pixels in well under 1 MB on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    rows_per_block = 500
    block = row * rows_per_block
    idat = bytearray()
    for _ in range(side // rows_per_block):
        idat += compressor.compress(block)
    idat += compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b"")


def two_images(a: bytes, b: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"image_a": ("a.jpg", a, "image/jpeg"), "image_b": ("b.jpg", b, "image/jpeg")}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fake_url() -> Any:
    settings = Settings(workers=1, queue_size=4)
    with serving(create_app(FakeEngine(settings.max_pixels), settings, token="")) as url:
        yield url


@pytest.fixture(scope="module")
def client(fake_url: str) -> Any:
    with httpx.Client(base_url=fake_url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def fake_explanation_id(client: httpx.Client) -> str:
    jpg = jpeg_bytes()
    r = client.post("/v1/verify", params={"explain": "true"}, files=two_images(jpg, jpg))
    assert r.status_code == 200, r.text
    return r.json()["explanation_id"]


# ---------------------------------------------------------------------------------------------- bad input


def test_no_body(client: httpx.Client) -> None:
    r = client.post("/v1/verify", headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert_error(r, 400, "invalid_request")
    assert_error(client.post("/v1/verify"), 415, "unsupported_media_type")


def test_one_image(client: httpx.Client) -> None:
    r = client.post("/v1/verify", files={"image_a": ("a.jpg", jpeg_bytes(), "image/jpeg")})
    error = assert_error(r, 400, "invalid_request")
    assert "image_b" in error["message"]


def test_non_image_bytes(client: httpx.Client) -> None:
    r = client.post("/v1/verify", files=two_images(jpeg_bytes(), b"%PDF-1.4 definitely not a photo" * 10))
    assert_error(r, 415, "unsupported_format")


def test_truncated_jpeg(client: httpx.Client) -> None:
    jpg = jpeg_bytes(200)
    assert_error(client.post("/v1/verify", files=two_images(jpg, jpg[: len(jpg) // 2])), 400, "invalid_image")


def test_zero_byte_file(client: httpx.Client) -> None:
    error = assert_error(client.post("/v1/verify", files=two_images(jpeg_bytes(), b"")), 400, "invalid_image")
    assert "image_b" in error["message"]


def test_decompression_bomb_refused_from_header(client: httpx.Client) -> None:
    bomb = png_bomb()
    assert len(bomb) < 1_500_000
    start = time.perf_counter()
    r = client.post("/v1/verify", files={"image_a": ("a.png", bomb, "image/png"), "image_b": ("b.png", bomb, "image/png")})
    elapsed = time.perf_counter() - start
    error = assert_error(r, 413, "image_too_large")
    assert "20000x20000" in error["message"]
    assert elapsed < 5, "a 400 MP image must be refused from its header, not decoded"


def test_huge_multipart_body_with_length(client: httpx.Client) -> None:
    huge = b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024)
    assert_error(client.post("/v1/verify", files=two_images(huge, huge)), 413, "body_too_large")


def test_huge_multipart_body_streamed_without_length(client: httpx.Client) -> None:
    """A chunked body has no Content-Length: the limit must hold while the bytes stream in."""
    boundary = "b0undary"
    sent = 0

    def body() -> Any:
        nonlocal sent
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image_a"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        yield head
        for _ in range(64):  # up to 64 MiB, far past the 10 MiB limit
            chunk = b"\0" * (1024 * 1024)
            sent += len(chunk)
            yield chunk

    try:
        r = client.post("/v1/verify", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError) as exc:  # pragma: no cover - diagnostic
        pytest.fail(f"the server dropped the connection instead of answering 413: {exc!r}")
    assert_error(r, 413, "body_too_large")


def test_wrong_content_type(client: httpx.Client) -> None:
    r = client.post("/v1/verify", json={"image_a": "x", "image_b": "y"})
    assert_error(r, 415, "unsupported_media_type")
    r = client.post("/v1/verify", content=b"hello", headers={"content-type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")


def test_malformed_multipart(client: httpx.Client) -> None:
    r = client.post(
        "/v1/verify",
        content=b"--zzz\r\nno headers here\r\n\r\n",
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    assert_error(r, 400, "invalid_request")


def test_bad_query_parameter(client: httpx.Client) -> None:
    jpg = jpeg_bytes()
    r = client.post("/v1/verify", params={"explain": "perhaps"}, files=two_images(jpg, jpg))
    assert_error(r, 400, "invalid_request")


def test_unknown_explanation_id(client: httpx.Client) -> None:
    assert_error(client.get("/v1/explanations/nope"), 404, "not_found")
    assert_error(client.get("/v1/explanations/nope/summary.png"), 404, "not_found")
    assert_error(client.get("/v1/explanations/nope/heatmaps/a/average.png"), 404, "not_found")
    assert_error(client.post("/v1/explanations/nope/ask", json={"question": "why?"}), 404, "not_found")


def test_unknown_image_or_method(client: httpx.Client, fake_explanation_id: str) -> None:
    base = f"/v1/explanations/{fake_explanation_id}"
    png = client.get(f"{base}/heatmaps/a/average.png")
    assert png.headers["content-type"] == "image/png"
    assert png.headers.get_list("cache-control") == ["no-store"]  # a face image never lands in a browser cache
    assert_error(client.get(f"{base}/heatmaps/c/average.png"), 404, "not_found")
    assert_error(client.get(f"{base}/heatmaps/a/guesswork.png"), 404, "not_found")


def test_question_limits(client: httpx.Client, fake_explanation_id: str) -> None:
    url = f"/v1/explanations/{fake_explanation_id}/ask"
    assert_error(client.post(url, json={"question": "x" * 10_000}), 422, "invalid_question")
    assert_error(client.post(url, json={"question": "   "}), 422, "invalid_question")
    assert_error(client.post(url, json={"q": "why"}), 400, "invalid_request")
    assert_error(client.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400, "invalid_request")
    assert_error(client.post(url, content=b"why?", headers={"content-type": "text/plain"}), 415, "unsupported_media_type")
    error = assert_error(client.post(url, json={"question": "model gone"}), 503, "model_missing")
    assert "/srv/secret" not in error["message"]  # server-side details stay in the log
    r = client.post(url, json={"question": "Which region mattered most?"})
    assert r.status_code == 200
    assert set(r.json()) >= {"answer", "confidence", "evidence", "suggestions"}


def test_unknown_route_is_json(client: httpx.Client) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(client.get("/v1/verify"), 405, "method_not_allowed")


def test_health_answers_after_bad_inputs(client: httpx.Client) -> None:
    r = client.get("/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert client.get("/v1/ready").json() == {"ready": True}


def test_security_headers(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/v1/health").headers["cache-control"] == "no-store"


def test_openapi_lists_every_v1_route(client: httpx.Client) -> None:
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/v1/verify",
        "/v1/health",
        "/v1/ready",
        "/v1/info",
        "/v1/explanations/{explanation_id}",
        "/v1/explanations/{explanation_id}/heatmaps/{image}/{method}.png",
        "/v1/explanations/{explanation_id}/summary.png",
        "/v1/explanations/{explanation_id}/ask",
    }
    assert "multipart/form-data" in paths["/v1/verify"]["post"]["requestBody"]["content"]


# ---------------------------------------------------------------------------------------------- tokens and binding


def test_token_required_on_every_v1_route() -> None:
    settings = Settings()
    app = create_app(FakeEngine(), settings, token=TOKEN)
    jpg = jpeg_bytes()
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        ok = c.post("/v1/verify?explain=true", files=two_images(jpg, jpg), headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, ok.text
        eid = ok.json()["explanation_id"]
        spec = c.get("/v1/openapi.json", headers={"authorization": f"Bearer {TOKEN}"}).json()
        routes = [(path, method) for path, ops in spec["paths"].items() for method in ops]
        routes.append(("/v1/openapi.json", "get"))
        assert len(routes) >= 9 and all(path.startswith("/v1/") for path, _ in routes)
        for template, method in routes:
            path = template.format(explanation_id=eid, image="a", method="average", subject_id="someone")
            for headers in ({}, {"authorization": "Bearer wrong-token-wrong-token"}, {"authorization": TOKEN}):
                r = c.request(method, path, headers=headers)
                assert_error(r, 401, "unauthorized")
                assert r.headers["www-authenticate"].startswith("Bearer")
        good = c.get("/v1/health", headers={"authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200
        assert c.get("/").status_code == 200  # the page itself holds no data; its API calls need the token


def test_bind_safety(tmp_path: Path) -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    for host in ("0.0.0.0", "::", "192.0.2.10", "kiosk.local"):
        with pytest.raises(UnsafeBind):
            check_bind(host, None)
        check_bind(host, TOKEN)
    with pytest.raises(UnsafeBind):
        resolve_token(Settings(token="short"))
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert resolve_token(Settings(token_file=token_file)) == TOKEN
    with pytest.raises(UnsafeBind):
        resolve_token(Settings(token_file=tmp_path / "missing"))


def test_cli_refuses_public_bind_without_token(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from edgefx.cli import main

    monkeypatch.delenv("EDGEFX_TOKEN", raising=False)
    monkeypatch.delenv("EDGEFX_TOKEN_FILE", raising=False)
    loaded = []
    monkeypatch.setattr("edgefx.service.process.create_app", lambda *a, **k: loaded.append(a))
    monkeypatch.setattr("edgefx.service.process.Engine", lambda *a, **k: loaded.append(a))
    assert main(["serve", "--host", "0.0.0.0", "--port", "9"]) == 2
    assert "error [unsafe_bind]" in capsys.readouterr().err
    assert not loaded


# ---------------------------------------------------------------------------------------------- queueing


def test_full_queue_answers_503_with_retry_after() -> None:
    settings = Settings(workers=1, queue_size=1)
    engine = FakeEngine(delay_s=0.4)
    jpg = jpeg_bytes()

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            return await asyncio.gather(*(c.post("/v1/verify", files=two_images(jpg, jpg)) for _ in range(6)))

    with serving(create_app(engine, settings, token="")) as url:
        responses = asyncio.run(burst(url))
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) == {200, 503}, statuses
        assert statuses.count(200) >= 2  # one running + one queued at least
        for r in responses:
            if r.status_code == 503:
                assert_error(r, 503, "busy")
                assert int(r.headers["retry-after"]) >= 1
        assert httpx.get(f"{url}/v1/health").status_code == 200
        # The queue drains: once the work is done the next request is served.
        time.sleep(1.0)
        assert httpx.post(f"{url}/v1/verify", files=two_images(jpg, jpg), timeout=30).status_code == 200


def test_pool_refuses_work_that_would_wait_too_long() -> None:
    """By count the queue has room, but by measured duration the jobs ahead would take longer than max_wait_s."""
    from edgefx.runtime.errors import Busy
    from edgefx.service.pool import InferencePool

    async def scenario() -> list[str]:
        pool = InferencePool(workers=1, queue_size=8, max_wait_s=1.0)
        await pool.run(time.sleep, 0.4, kind="slow")  # the pool learns that a "slow" job takes ~0.4 s
        outcomes = await asyncio.gather(
            *(pool.run(time.sleep, 0.4, kind="slow") for _ in range(4)), return_exceptions=True
        )
        quick = await asyncio.gather(*(pool.run(time.sleep, 0.01, kind="quick") for _ in range(3)))
        pool.shutdown()
        assert quick == [None] * 3
        return ["busy" if isinstance(o, Busy) else "ok" for o in outcomes]

    # 0.4 s running + 0.4 s waiting fit in 1 s; a third would wait 0.8 s + run 0.4 s: refused.
    assert asyncio.run(scenario()) == ["ok", "ok", "busy", "busy"]


# ---------------------------------------------------------------------------------------------- explanation store


def test_store_expires_and_evicts() -> None:
    now = [0.0]
    store = ExplanationStore(ttl_s=10, cap=2, clock=lambda: now[0])
    a, b = store.put("a"), store.put("b")
    assert store.get(a.id).result == "a"  # a is now the most recently used
    c = store.put("c")
    assert store.get(b.id) is None and store.get(a.id) is not None and len(store) == 2
    now[0] = 10.0
    assert store.get(a.id) is None and store.get(c.id) is None and len(store) == 0
    assert len({store.put(i).id for i in range(100)}) == 100


def test_store_byte_budget() -> None:
    sizes = {"small": 10, "big": 80}
    store = ExplanationStore(ttl_s=60, cap=10, max_bytes=100, weigh=lambda r: sizes[r[0]])
    first, second = store.put(["small"]), store.put(["big"])
    assert store.bytes == 90
    third = store.put(["small"])  # 100: still within the budget
    assert store.get(first.id) is not None
    fourth = store.put(["big"])  # 180: the least recently used go until it fits
    assert store.get(second.id) is None and store.get(fourth.id) is not None and store.bytes <= 100
    third.result[0] = "big"  # an entry that grew (rendered PNGs) is re-measured on touch
    store.get(third.id)
    store.touch(third)
    assert store.bytes <= 100 and store.get(third.id) is not None
    lone = ExplanationStore(ttl_s=60, cap=10, max_bytes=5, weigh=lambda r: 50)
    assert lone.get(lone.put("x").id) is not None  # the newest entry stays even when over budget


def test_sd_notify_reaches_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sd_notify("READY=1")
        assert listener.recv(64) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sd_notify("READY=1")


def test_service_notifies_ready_and_pings_watchdog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under systemd (Type=notify, WatchdogSec) the server says READY=1 once it listens, then pings the watchdog."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(15)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "200000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        settings = Settings(port=port)
        server = uvicorn_server(create_app(FakeEngine(), settings, token=""), settings)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            ready = listener.recv(256).decode()
            assert ready.startswith("READY=1")
            assert httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200  # READY means listening
            assert listener.recv(64) == b"WATCHDOG=1"
            assert listener.recv(64) == b"WATCHDOG=1"
        finally:
            server.should_exit = True
            thread.join(timeout=20)
        messages = []
        with contextlib.suppress(TimeoutError):
            listener.settimeout(1)
            while True:
                messages.append(listener.recv(64))
        assert b"STOPPING=1" in messages


# ---------------------------------------------------------------------------------------------- real engine, real LFW


@pytest.fixture(scope="module")
def real_url() -> Any:
    require_lfw()
    engine = real_engine(threads=2)
    settings = Settings.from_env(threads=2, workers=1, queue_size=8)
    with serving(create_app(engine, settings, token="")) as url:
        yield url


def _post_pair(c: httpx.Client, a: Path, b: Path, **params: Any) -> httpx.Response:
    return c.post("/v1/verify", params=params, files=two_images(a.read_bytes(), b.read_bytes()))


def test_verify_lfw_pairs(real_url: str) -> None:
    matched, mismatched = lfw_pairs(limit=4)
    with httpx.Client(base_url=real_url, timeout=60) as c:
        same = [_post_pair(c, a, b).json() for a, b in matched]
        diff = [_post_pair(c, a, b).json() for a, b in mismatched]
    for body in same + diff:
        assert set(body) >= {"match", "score", "threshold", "confidence", "faces", "timings_ms", "model"}
        assert body["match"] == (body["score"] >= body["threshold"])
        assert [f["image"] for f in body["faces"]] == ["a", "b"]
        assert "explanation" not in body and "explanation_id" not in body
    # LFW DevTest's first pairs are easy: a working recogniser gets at least 3 of 4 right on each side.
    assert sum(b["match"] for b in same) >= 3
    assert sum(not b["match"] for b in diff) >= 3
    assert min(b["score"] for b in same) > max(b["score"] for b in diff) - 0.2


def test_explain_heatmaps_and_ask(real_url: str) -> None:
    matched, _ = lfw_pairs(limit=1)
    with httpx.Client(base_url=real_url, timeout=120) as c:
        r = _post_pair(c, *matched[0], explain="true")
        assert r.status_code == 200, r.text
        body = r.json()
        eid = body["explanation_id"]
        explanation = body["explanation"]
        assert explanation["methods"] == METHODS
        for image in ("a", "b"):
            for method in explanation["methods"]:
                url = explanation["heatmaps"][image][method]
                assert url == f"/v1/explanations/{eid}/heatmaps/{image}/{method}.png"
                png = c.get(url)
                assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        summary = c.get(explanation["summary"])
        assert summary.status_code == 200 and summary.content[:8] == b"\x89PNG\r\n\x1a\n"
        stored = c.get(f"/v1/explanations/{eid}").json()
        assert stored["explanation"]["table"] == explanation["table"]
        context = stored["context"]
        assert context and all(isinstance(s, str) for s in context)
        answer = c.post(f"/v1/explanations/{eid}/ask", json={"question": "What is the similarity score?"}).json()
        assert answer["answer"] and answer["evidence"]
        assert answer["evidence"] in context  # the answer is grounded in this result's own sentences
        assert f"{body['score']:.3f}" in answer["answer"] + answer["evidence"]
        info = c.get("/v1/info").json()
        assert info["service"]["max_body_bytes"] == 10 * 1024 * 1024


def test_real_engine_bad_inputs_then_health(real_url: str) -> None:
    matched, _ = lfw_pairs(limit=1)
    good = matched[0][0].read_bytes()
    with httpx.Client(base_url=real_url, timeout=60) as c:
        assert_error(c.post("/v1/verify", files=two_images(good, good[: len(good) // 2])), 400, "invalid_image")
        assert_error(c.post("/v1/verify", files=two_images(good, b"GIF89a" + b"\0" * 100)), 415, "unsupported_format")
        assert_error(c.post("/v1/verify", files=two_images(good, b"")), 400, "invalid_image")
        bomb = png_bomb()
        assert_error(c.post("/v1/verify", files=two_images(good, bomb)), 413, "image_too_large")
        blank = cv2.imencode(".jpg", np.full((250, 250, 3), 128, np.uint8))[1].tobytes()
        assert_error(c.post("/v1/verify", files=two_images(good, blank)), 422, "no_face_detected")
        assert c.get("/v1/health").json() == {"status": "ok"}


# ---------------------------------------------------------------------------------------------- the systemd unit


def test_systemd_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    import re
    import shutil
    import subprocess

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    repo = Path(__file__).resolve().parent.parent
    unit = (repo / "systemd" / "edgefx.service").read_text()
    assert "\nMemoryDenyWriteExecute=no" in unit and "\nDynamicUser=yes" in unit
    # The unit names /opt/edgefx; point it at this checkout so that `verify` finds the real executable.
    local = tmp_path / "edgefx.service"
    local.write_text(unit.replace("/opt/edgefx", str(repo)))
    verify = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=yes", str(local)], capture_output=True, text=True, timeout=60
    )
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    assert level, security.stdout[-500:] + security.stderr[-500:]
    assert float(level.group(1)) <= 1.5, f"exposure {level.group(1)} (was 0.9 when the unit was written)"
