"""The servers cap glibc's malloc arenas (common/malloc.py); MALLOC_ARENA_MAX still wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Eight threads allocating at once, then malloc_info's count of arenas.
PROGRAM = """
import json, sys, threading
from benchmarks.memory_probe import arenas
from common.malloc import limit_arenas
capped = limit_arenas(2) if sys.argv[1] == "cap" else False
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    for _ in range(200):
        blocks = [bytearray(512) for _ in range(2000)]
        del blocks
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"capped": capped, "arenas": arenas().get("count", 0)}))
"""


def arenas_after_threads(mode: str, environ: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_arenas_are_capped_for_the_servers_unless_the_environment_says():
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    plain = arenas_after_threads("plain", environ)
    capped = arenas_after_threads("cap", environ)
    assert capped == {"capped": True, "arenas": capped["arenas"]} and capped["arenas"] <= 2
    assert plain["arenas"] > capped["arenas"]  # glibc's default makes more for 8 threads
    chosen = arenas_after_threads("cap", {**environ, "MALLOC_ARENA_MAX": "1"})
    assert chosen == {"capped": False, "arenas": 1}  # the environment's value, not ours
