"""`edgefx bench serve`: cold start, memory and latency of the HTTP service, measured against a server on loopback."""
from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefx.runtime.config import Settings

if TYPE_CHECKING:
    import httpx

HOST = "127.0.0.1"  # the benchmark only ever talks to a server it started on this machine's loopback
CLIENT_TIMEOUT_S = 300.0  # well past the server's own bound on queueing (max_queue_wait_s)
TARGETS = {"cold_start_s": 3.0, "rss_ready_mb": 400.0, "rss_growth_pct": 5.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def peak_rss_mb(pid: int) -> float:
    """The highest resident set size of a process so far (VmHWM), from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


# Questions of different lengths, so the QA models see several input shapes (as a person at the kiosk would give them).
BENCH_QUESTIONS = (
    "Is it a match?",
    "What is the similarity score?",
    "Why did the system decide this?",
    "Which facial region mattered most in photo A, and how much did it count?",
    "How confident is the decision, and how far is the score from the threshold?",
    "Did the different explanation methods agree about the most important region of the face in photo B?",
    "What was the least important region in photo A?",
    "Was more than one face found in either photo?",
)


def run_explain_and_ask(base: str, pairs: list[tuple[bytes, bytes]], explanations: int) -> dict[str, Any]:
    """`explanations` explained verifications, each followed by every bench question and its summary figure."""
    import httpx

    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=base, timeout=httpx.Timeout(CLIENT_TIMEOUT_S)) as client:
        for k in range(explanations):
            response = _post(client, pairs[(k * 7) % len(pairs)], True)
            statuses[response.status_code] += 1
            if response.status_code != 200:
                continue
            explanation_id = response.json()["explanation_id"]
            for question in BENCH_QUESTIONS:
                answer = client.post(f"/v1/explanations/{explanation_id}/ask", json={"question": question})
                statuses[answer.status_code] += 1
            statuses[client.get(f"/v1/explanations/{explanation_id}/summary.png").status_code] += 1
    return {"explanations": explanations, "questions": explanations * len(BENCH_QUESTIONS),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (less sensitive than wall time to other load on the machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_pairs(lfw: Path, count: int) -> list[tuple[bytes, bytes]]:
    """Image bytes of the first `count` pairs of pairsDevTest.txt, matched and mismatched interleaved."""
    from edgefx.evaluation.lfw import lfw_image_root, read_pairs

    pairs = read_pairs(lfw / "pairsDevTest.txt")
    matched = [p for p in pairs if p.genuine]
    mismatched = [p for p in pairs if not p.genuine]
    interleaved = [p for both in zip(matched, mismatched) for p in both][:count]
    root = lfw_image_root(lfw)
    return [((root / p.path_a).read_bytes(), (root / p.path_b).read_bytes()) for p in interleaved]


@dataclass
class PhaseResult:
    explain: bool
    clients: int
    duration_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    client_timeouts: int = 0

    def summary(self) -> dict[str, Any]:
        ok = len(self.latencies_ms)
        lat = sorted(self.latencies_ms)
        return {
            "explain": self.explain,
            "clients": self.clients,
            "duration_s": round(self.duration_s, 2),
            "ok": ok,
            "throughput_rps": round(ok / self.duration_s, 3) if self.duration_s else 0.0,
            "p50_ms": round(statistics.median(lat), 1) if lat else None,
            "p95_ms": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1) if lat else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors_5xx_other_than_503": sum(v for k, v in self.statuses.items() if k >= 500 and k != 503),
            "transport_errors": self.transport_errors,
            "client_timeouts": self.client_timeouts,
        }


def _post(client: "httpx.Client", pair: tuple[bytes, bytes], explain: bool) -> "httpx.Response":
    files = {"image_a": ("a.jpg", pair[0], "image/jpeg"), "image_b": ("b.jpg", pair[1], "image/jpeg")}
    return client.post("/v1/verify", params={"explain": str(explain).lower()}, files=files)


def run_phase(base: str, pairs: list[tuple[bytes, bytes]], clients: int, explain: bool, duration_s: float,
              max_requests: int | None = None) -> PhaseResult:
    """`clients` threads post pairs back to back for `duration_s` (or until `max_requests`); 503s honour Retry-After."""
    import httpx

    result = PhaseResult(explain, clients)
    lock = threading.Lock()
    counter = iter(range(10**9))
    start = time.perf_counter()
    deadline = start + duration_s

    def client_loop() -> None:
        with httpx.Client(base_url=base, timeout=httpx.Timeout(CLIENT_TIMEOUT_S)) as client:
            while time.perf_counter() < deadline:
                with lock:
                    k = next(counter)
                if max_requests is not None and k >= max_requests:
                    return
                t0 = time.perf_counter()
                try:
                    response = _post(client, pairs[k % len(pairs)], explain)
                except httpx.TimeoutException:
                    with lock:
                        result.client_timeouts += 1
                    continue
                except httpx.TransportError:  # refused, reset or closed early: a dropped connection
                    with lock:
                        result.transport_errors += 1
                    continue
                elapsed_ms = (time.perf_counter() - t0) * 1e3
                with lock:
                    result.statuses[response.status_code] += 1
                    if response.status_code == 200:
                        result.latencies_ms.append(elapsed_ms)
                if response.status_code in (429, 503):
                    wait = float(response.headers.get("retry-after", "1"))
                    time.sleep(max(0.0, min(wait, deadline - time.perf_counter())))

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.duration_s = time.perf_counter() - start
    return result


def start_server(port: int, settings: Settings, threads: int | None,
                 command: list[str] | None = None) -> tuple[subprocess.Popen[bytes], float]:
    """Start `edgefx serve` on loopback; returns the process and the seconds from spawn to /v1/ready = 200."""
    import httpx

    env = dict(os.environ)
    env.update({"EDGEFX_WORKERS": str(settings.workers), "EDGEFX_QUEUE_SIZE": str(settings.queue_size)})
    env.pop("EDGEFX_TOKEN", None)
    env.pop("EDGEFX_TOKEN_FILE", None)
    cmd = [sys.executable, "-m", "edgefx.cli", "serve", "--host", HOST, "--port", str(port)]
    if threads:
        cmd += ["--threads", str(threads)]
    if command is not None:
        cmd = [part.format(port=port) for part in command]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://{HOST}:{port}/v1/ready"
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"the server exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.TransportError:
            pass
        if time.perf_counter() - t0 > 120:
            proc.kill()
            raise RuntimeError("the server was not ready within 120 s")
        time.sleep(0.02)


def stop_server(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def bench_serve(*, lfw: Path, requests: int = 1000, duration_s: float = 10.0, explain_duration_s: float = 20.0,
                client_counts: tuple[int, ...] = (1, 4, 16), pair_count: int = 50, workers: int = 1,
                queue_size: int = 8, threads: int | None = 2, server_command: list[str] | None = None,
                explain_and_ask: int = 3) -> dict[str, Any]:
    """Every figure of `edgefx bench serve`, as a dict; `server_command` ("{port}" filled in) replaces `edgefx serve`."""
    import httpx

    load_at_start = os.getloadavg()[0]  # other work on the machine shows in every figure below
    pairs = load_pairs(lfw, pair_count)
    settings = Settings.from_env(workers=workers, queue_size=queue_size)
    port = _free_port()
    proc, cold_start_s = start_server(port, settings, threads, server_command)
    base = f"http://{HOST}:{port}"
    try:
        cold_start_cpu_s = cpu_seconds(proc.pid)
        info = httpx.get(f"{base}/v1/info", timeout=10).json()
        rss_ready = rss_mb(proc.pid)
        warm = run_phase(base, pairs, 1, False, 60.0, max_requests=20)
        rss_warm = rss_mb(proc.pid)
        soak = run_phase(base, pairs, 4, False, 600.0, max_requests=requests)
        rss_after = rss_mb(proc.pid)
        phases = []
        for explain, seconds in ((False, duration_s), (True, explain_duration_s)):
            if explain:  # one explanation first, so the server has timed one (as a running service has)
                run_phase(base, pairs, 1, True, 600.0, max_requests=1)
            for clients in client_counts:
                phases.append(run_phase(base, pairs, clients, explain, seconds).summary())
        rss_load_phases = rss_mb(proc.pid)
        asked = run_explain_and_ask(base, pairs, explain_and_ask)
        rss_end = rss_mb(proc.pid)
        rss_peak = peak_rss_mb(proc.pid)
        service_end = httpx.get(f"{base}/v1/info", timeout=10).json().get("service", {})
        health = httpx.get(f"{base}/v1/health", timeout=10).status_code
    finally:
        exit_code = stop_server(proc)
    growth_ready = 100 * (rss_after - rss_ready) / rss_ready
    growth_warm = 100 * (rss_after - rss_warm) / rss_warm
    bad = sum(p["server_errors_5xx_other_than_503"] + p["transport_errors"] + p["client_timeouts"] for p in phases)
    soak_summary = soak.summary()
    return {
        "server": {
            "host": HOST,
            "workers": workers,
            "queue_size": queue_size,
            "threads": threads,
            "backend": info.get("backend"),
            "device": info.get("device"),
            "precision": info.get("precision"),
            "engine_load_s": info.get("load_seconds"),
            "pid_exit_code": exit_code,
            "cpu_count": os.cpu_count(),
            "loadavg_1m_at_start": round(load_at_start, 2),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "cold_start_s": round(cold_start_s, 3),
        "cold_start_cpu_s": round(cold_start_cpu_s, 3),
        "rss_mb": {
            "ready": round(rss_ready, 1),
            "after_20_warmup": round(rss_warm, 1),
            f"after_{requests}": round(rss_after, 1),
            "after_load_phases": round(rss_load_phases, 1),
            f"after_{explain_and_ask}_explain_and_ask": round(rss_end, 1),
            "peak": round(rss_peak, 1),
            "explanations_stored_at_end": service_end.get("explanations_stored"),
            "explanation_store_mb_at_end": round(service_end.get("explanation_bytes_stored", 0) / 2**20, 1),
            "growth_pct_vs_ready": round(growth_ready, 2),
            "growth_pct_vs_warmup": round(growth_warm, 2),
        },
        "soak": {"requests": requests, "clients": 4, **{k: soak_summary[k] for k in
                 ("duration_s", "ok", "throughput_rps", "p50_ms", "p95_ms", "statuses", "transport_errors",
                  "client_timeouts")}},
        "warmup_statuses": warm.summary()["statuses"],
        "load": phases,
        "explain_and_ask": asked,
        "health_after": health,
        "targets": targets_met(cold_start_s, rss_ready, growth_ready, growth_warm,
                               bad == 0 and soak.transport_errors == 0),
    }


def targets_met(cold_start_s: float, rss_ready: float, growth_ready: float, growth_warm: float,
                clean: bool) -> dict[str, bool]:
    """The service targets, each as met or not."""
    return {
        "cold_start_s<=3": cold_start_s <= TARGETS["cold_start_s"],
        "rss_ready_mb<=400": rss_ready <= TARGETS["rss_ready_mb"],
        "rss_growth_pct<=5 (vs ready)": growth_ready <= TARGETS["rss_growth_pct"],
        "rss_growth_pct<=5 (vs warm-up)": growth_warm <= TARGETS["rss_growth_pct"],
        "no 5xx but 503, no dropped connections": clean,
    }
