"""`run_assistant.py bench load`: many clients against `serve` on 127.0.0.1, twice.

The server runs as its own process (``run_assistant.py serve``, the same config), on a free
loopback port only; 20 client threads (``--clients``) send a mix of requests for
``--seconds`` (120 by default), then do it again, so that the server's memory after the
second run can be compared with after the first (a leak keeps growing; a cache or the
allocator's arenas settle).

Request kinds, one per client in turn: ``image`` (a picture at the configured size and
steps), ``turn`` (a typed conversational turn, which draws), ``transcription`` (a spoken
request, made once by the server's own voice), ``speech``, and the cheap ``health`` and
``session`` (read a session's edit tree). A client answered 429 waits the ``Retry-After`` it
was given (those are counted as queue refusals, not errors).

Printed: throughput, p50/p95 latency per kind, errors, 429s, the p95 of cheap requests made
while a picture was being drawn, and the server's resident memory (RSS) before, after run 1
and after run 2. ``--malloc-arena-max N`` sets MALLOC_ARENA_MAX for the server; without
it ``serve`` caps glibc's arenas at 2 itself (``common/malloc.py``); 16 is glibc's own default
on 2 cores (8 per core), the behaviour before that cap. ``--probe-memory``
runs the server under ``benchmarks/memory_probe.py`` and prints, after the warm-up, each run
and a ``malloc_trim``, what Python holds (tracemalloc, object counts) beside what malloc keeps.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # never anything else: this is a load test
MB = 1024 * 1024
START_TIMEOUT_S = 600.0  # a cold server start on a busy 2-core machine stays below this
REQUEST_TIMEOUT_S = 300.0
MAX_BACKOFF_S = 5.0  # the longest a refused client waits before trying again
PROBE_TIMEOUT_S = 120.0  # a probe walks every object of a big process (seconds)
KINDS = ("image", "turn", "transcription", "speech", "health", "session")
CHEAP = ("health", "session")
# Which kind each client sends, by its index modulo this list (20 clients: 2 image, 2 turn,
# 2 transcription, 2 speech, 12 cheap).
CLIENT_KINDS = (
    "image",
    "health",
    "turn",
    "session",
    "transcription",
    "health",
    "speech",
    "session",
    "health",
    "session",
)
REQUEST_TEXT = "draw a red barn in a snowy field"


@dataclass
class Sample:
    kind: str
    started: float
    seconds: float
    status: int  # 0: no answer (a connection error)


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seconds: float = 0.0

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(
    config_args: list[str], port: int, env: dict[str, str], log: Path, probe: bool = False
) -> subprocess.Popen:
    """``serve`` in its own process; its log goes to a file (a pipe nobody reads fills up
    and stops the server at its next log line). ``probe``: under ``benchmarks.memory_probe``."""
    entry = ["-m", "benchmarks.memory_probe"] if probe else [str(REPO / "run_assistant.py")]
    cmd = [sys.executable, *entry, "serve", "--host", HOST]
    cmd += ["--port", str(port), *config_args]
    with log.open("w") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def read_probe(server: subprocess.Popen, path: Path, signum: int) -> dict:
    """Signal the probed server and wait for the JSON line it appends (``memory_probe``)."""
    before = len(path.read_text().splitlines()) if path.exists() else 0
    server.send_signal(signum)
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) > before:
            return json.loads(lines[-1])
        time.sleep(0.5)
    raise RuntimeError(f"the memory probe did not answer within {PROBE_TIMEOUT_S:.0f} s")


def print_probe(label: str, record: dict) -> None:
    malloc, arenas = record.get("malloc", {}), record.get("arenas", {})
    print(
        f"  {label}: RSS {record['rss_mb']:.0f} MB; Python traced {record['traced_mb']:.0f} MB "
        f"(peak {record['traced_peak_mb']:.0f}); {record['gc_objects']} gc objects; malloc "
        f"in use {malloc.get('in_use_mb', float('nan')):.0f} MB, free but kept "
        f"{malloc.get('free_kept_mb', float('nan')):.0f} MB, mmapped "
        f"{malloc.get('mmapped_mb', float('nan')):.0f} MB, {arenas.get('count', '?')} arenas; "
        f"{record['threads']} threads"
    )
    if record.get("traced_growth"):
        print("    traced growth since the last probe: " + "; ".join(record["traced_growth"][:6]))
    if record.get("objects_growth"):
        what = "most common objects" if label == "ready" else "objects by type since"
        print(f"    {what}: " + ", ".join(record["objects_growth"][:8]))


def wait_ready(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise RuntimeError(f"the server did not answer /health within {START_TIMEOUT_S:.0f} s")


class Requests:
    """One request of each kind, against one server."""

    def __init__(self, client: httpx.Client, session_id: str, spoken: bytes):
        self.client = client
        self.session_id = session_id
        self.spoken = spoken
        self.turn_session: str | None = None

    def send(self, kind: str) -> httpx.Response:
        c = self.client
        if kind == "health":
            return c.get("/health")
        if kind == "session":
            return c.get(f"/v1/sessions/{self.session_id}")
        if kind == "image":
            return c.post("/v1/images/generations", json={"prompt": REQUEST_TEXT, "raw": True})
        if kind == "turn":
            if self.turn_session is None:  # each turn client talks in its own session
                created = c.post("/v1/sessions")
                if created.status_code != 201:
                    return created
                self.turn_session = created.json()["session_id"]
            return c.post(f"/v1/sessions/{self.turn_session}/turns", json={"text": REQUEST_TEXT})
        if kind == "transcription":
            files = {"file": ("request.wav", self.spoken, "audio/wav")}
            return c.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
        if kind == "speech":
            return c.post(
                "/v1/audio/speech",
                json={
                    "model": "tts-1",
                    "input": "Here is your red barn.",
                    "response_format": "wav",
                },
            )
        raise ValueError(kind)


def client_loop(base: str, kind: str, until: float, run: Run, session_id: str, spoken: bytes):
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        requests = Requests(client, session_id, spoken)
        while (now := time.monotonic()) < until:
            try:
                response = requests.send(kind)
                status = response.status_code
            except httpx.HTTPError:
                response, status = None, 0
            run.add(Sample(kind, now, time.monotonic() - now, status))
            if status == 429 and response is not None:
                wait = float(response.headers.get("retry-after", "1"))
                time.sleep(max(0.0, min(wait, MAX_BACKOFF_S, until - time.monotonic())))


def load_once(base: str, clients: int, seconds: float, session_id: str, spoken: bytes) -> Run:
    run = Run()
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=client_loop,
            args=(base, CLIENT_KINDS[i % len(CLIENT_KINDS)], until, run, session_id, spoken),
            daemon=True,
        )
        for i in range(clients)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # a request in flight at the end finishes (bounded by its timeout)
    run.seconds = time.monotonic() - started
    return run


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def cheap_while_drawing(run: Run) -> list[float]:
    """Latencies of cheap requests that started while an image or turn request was running."""
    drawing = [
        (s.started, s.started + s.seconds)
        for s in run.samples
        if s.kind in ("image", "turn") and s.status == 200
    ]
    return [
        s.seconds
        for s in run.samples
        if s.kind in CHEAP and any(a <= s.started <= b for a, b in drawing)
    ]


def report(label: str, run: Run) -> dict:
    print(f"\n{label}: {len(run.samples)} requests in {run.seconds:.0f} s "
          f"({len(run.samples) / run.seconds:.1f}/s)")  # fmt: skip
    print(f"{'kind':<14}{'sent':>6}{'ok':>6}{'429':>6}{'errors':>8}{'p50 s':>9}{'p95 s':>9}")
    totals = {"errors": 0, "refused": 0}
    for kind in KINDS:
        samples = [s for s in run.samples if s.kind == kind]
        if not samples:
            continue
        ok = [s.seconds for s in samples if s.status in (200, 201)]
        refused = sum(s.status == 429 for s in samples)
        errors = len(samples) - len(ok) - refused
        totals["errors"] += errors
        totals["refused"] += refused
        print(
            f"{kind:<14}{len(samples):>6}{len(ok):>6}{refused:>6}{errors:>8}"
            f"{percentile(ok, 50):>9.3f}{percentile(ok, 95):>9.3f}"
        )
    cheap = cheap_while_drawing(run)
    totals["cheap_p95_while_drawing"] = percentile(cheap, 95)
    print(
        f"cheap requests while a picture was drawn: {len(cheap)}, "
        f"p95 {totals['cheap_p95_while_drawing']:.3f} s; errors {totals['errors']}, "
        f"429s {totals['refused']}"
    )
    return totals


def run_load_bench(
    config,
    config_path: Path | None = None,
    profile: str | None = None,
    overrides: list[str] | None = None,
    seconds: float = 120.0,
    clients: int = 20,
    malloc_arena_max: int | None = None,
    probe_memory: bool = False,
) -> int:
    """Serve the configured assistant on 127.0.0.1 and load it twice; print the figures.

    ``probe_memory``: run the server under ``benchmarks.memory_probe`` (tracemalloc, object
    counts and malloc's arenas after the warm-up and after each run, then after
    ``malloc_trim``), to tell a leak from memory the allocator keeps.
    """
    config_args = (["--config", str(config_path)] if config_path else []) + (
        ["--profile", profile] if profile else []
    )
    for override in overrides or []:
        config_args += ["--set", override]
    env = {**os.environ, "ASSISTANT_API_KEY": ""}
    if malloc_arena_max:
        env["MALLOC_ARENA_MAX"] = str(malloc_arena_max)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    base = f"http://{HOST}:{port}"
    log = Path(tempfile.gettempdir()) / f"bench-load-server-{port}.log"
    load = os.getloadavg()
    print(
        f"bench load: {clients} clients x {seconds:.0f} s, twice, against serve on {base} "
        f"(profile {config.profile}, image {config.image.model}, MALLOC_ARENA_MAX "
        f"{malloc_arena_max or 'unset, serve caps arenas at 2'}; load average {load[0]:.1f}, "
        f"{os.cpu_count()} CPUs)"
    )
    probe_file = Path(tempfile.gettempdir()) / f"bench-load-probe-{port}.jsonl"
    if probe_memory:
        from benchmarks.memory_probe import PROBE_ENV  # noqa: PLC0415

        probe_file.unlink(missing_ok=True)
        env[PROBE_ENV] = str(probe_file)
    server = start_server(config_args, port, env, log, probe=probe_memory)
    print(f"server log: {log}")
    try:
        started = time.monotonic()
        wait_ready(base, server, log)
        print(f"server ready in {time.monotonic() - started:.0f} s")
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S, trust_env=False) as c:
            session_id = c.post("/v1/sessions").json()["session_id"]
            spoken = c.post(
                "/v1/audio/speech",
                json={"model": "tts-1", "input": "Draw a red barn.", "response_format": "wav"},
            ).content
            c.post("/v1/images/generations", json={"prompt": REQUEST_TEXT})  # warm
        rss = {"ready": rss_mb(server.pid)}
        probes = {}
        if probe_memory:
            probes["ready"] = read_probe(server, probe_file, signal.SIGUSR1)
        results = []
        for index in (1, 2):
            run = load_once(base, clients, seconds, session_id, spoken)
            rss[f"after run {index}"] = rss_mb(server.pid)
            results.append(report(f"run {index}", run))
            if probe_memory:
                probes[f"after run {index}"] = read_probe(server, probe_file, signal.SIGUSR1)
        growth = rss["after run 2"] / rss["after run 1"] - 1
        print(
            "\nserver RSS: "
            + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items())
            + f"; run 2 vs run 1: {growth:+.1%}"
        )
        if probe_memory:
            probes["after malloc_trim"] = read_probe(server, probe_file, signal.SIGUSR2)
            print(f"memory probe ({probe_file}):")
            for label, record in probes.items():
                print_probe(label, record)
        errors = sum(r["errors"] for r in results)
        return 0 if errors == 0 else 1
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
