"""``serve`` with a memory probe, for ``bench load --probe-memory``: is growth a leak?

Run as ``python -m benchmarks.memory_probe serve ...`` (the arguments of run_assistant.py).
With ``ASSISTANT_MEMORY_PROBE=<file>`` set, the server appends one JSON line to that file
each time it gets a signal:

- ``SIGUSR1``: resident memory (RSS), what Python's allocator has handed out as counted by
  ``tracemalloc`` (started at import, one frame per allocation), the biggest growths by
  source line since the previous probe, the number of objects the garbage collector tracks
  by type, and glibc's ``mallinfo2`` (bytes in use vs. free but kept by malloc's arenas).
- ``SIGUSR2``: the same after ``malloc_trim(0)``, which hands free arena memory back to the
  system: RSS that drops then was never held by live objects.

A leak shows as Python objects or traced bytes that keep growing run after run; allocator
retention shows as ``fordblks`` (free, kept) and RSS that ``malloc_trim`` gives back.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from xml.etree import ElementTree

PROBE_ENV = "ASSISTANT_MEMORY_PROBE"
MB = 1024 * 1024
TOP = 12  # lines of growth and object types reported per probe


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc 2.33+): every field in bytes or counts."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes malloc got from the system with brk (all arenas)
            "ordblks",  # free chunks
            "smblks",
            "hblks",  # mmapped chunks
            "hblkhd",  # bytes in mmapped chunks
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use
            "fordblks",  # bytes free but kept
            "keepcost",
        )
    ]


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


LIBC = _libc()


def mallinfo() -> dict[str, float]:
    """glibc's view in MB: in use, free but kept, mmapped (empty without glibc 2.33+)."""
    if LIBC is None or not hasattr(LIBC, "mallinfo2"):
        return {}
    LIBC.mallinfo2.restype = MallInfo2
    info = LIBC.mallinfo2()
    return {
        "in_use_mb": round(info.uordblks / MB, 1),
        "free_kept_mb": round(info.fordblks / MB, 1),
        "mmapped_mb": round(info.hblkhd / MB, 1),
        "heap_mb": round(info.arena / MB, 1),
    }


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def resident_by_mapping(top: int = TOP) -> list[tuple[str, float]]:
    """Where the RSS is: MB resident per mapped file (libraries, model files) and for the
    anonymous memory (malloc, torch tensors, Python), biggest first, from /proc/self/smaps."""
    sizes: collections.Counter = collections.Counter()
    name = "[anonymous]"
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            name = Path(fields[5]).name if len(fields) > 5 else "[anonymous]"
            name = "[anonymous]" if name in ("[heap]", "[stack]") else name
        elif fields and fields[0] == "Rss:":
            sizes[name] += int(fields[1]) / 1024
    return [(n, round(mb, 1)) for n, mb in sizes.most_common(top)]


def arenas() -> dict[str, float]:
    """malloc's arenas from glibc's ``malloc_info``: how many, and the MB they hold from the
    system (in use or not). Threads get arenas of their own, up to 8 per core unless
    MALLOC_ARENA_MAX says fewer."""
    if LIBC is None or not hasattr(LIBC, "malloc_info"):
        return {}
    with tempfile.NamedTemporaryFile("r", suffix=".xml") as xml:
        LIBC.fopen.restype = ctypes.c_void_p
        LIBC.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        LIBC.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        LIBC.fclose.argtypes = [ctypes.c_void_p]
        handle = LIBC.fopen(xml.name.encode(), b"w")
        LIBC.malloc_info(0, handle)
        LIBC.fclose(handle)
        root = ElementTree.fromstring(xml.read())
    heaps = root.findall("heap")
    held = sum(
        int(s.get("size", 0))
        for h in heaps
        for s in h.findall("system")
        if s.get("type") == "current"
    )
    return {"count": len(heaps), "system_mb": round(held / MB, 1)}


class Probe:
    def __init__(self, path: Path):
        self.path = path
        self.previous: tracemalloc.Snapshot | None = None
        self.previous_types: collections.Counter = collections.Counter()

    def write(self, label: str) -> None:
        gc.collect()
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        growth = []
        if self.previous is not None:
            for stat in snapshot.compare_to(self.previous, "lineno")[:TOP]:
                frame = stat.traceback[0]
                growth.append(
                    f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno} "
                    f"{stat.size_diff / 1024:+.0f} KiB ({stat.count_diff:+d} blocks)"
                )
        traced, peak = tracemalloc.get_traced_memory()
        record = {
            "label": label,
            "time": time.time(),
            "rss_mb": rss_mb(),
            "traced_mb": round(traced / MB, 1),
            "traced_peak_mb": round(peak / MB, 1),
            "gc_objects": sum(counts.values()),
            "gc_counts": gc.get_count(),
            "objects_growth": self._type_growth(counts),
            "traced_growth": growth,
            "malloc": mallinfo(),
            "arenas": arenas(),
            "threads": len(os.listdir("/proc/self/task")),
        }
        self.previous, self.previous_types = snapshot, counts
        with self.path.open("a") as out:
            out.write(json.dumps(record) + "\n")

    def _type_growth(self, counts: collections.Counter) -> list[str]:
        """The object types whose count changed most since the last probe (at the first
        probe: the most common types)."""
        if not self.previous_types:
            return [f"{name} {n}" for name, n in counts.most_common(TOP)]
        names = set(counts) | set(self.previous_types)
        diffs = {name: counts[name] - self.previous_types[name] for name in names}
        ranked = sorted(diffs.items(), key=lambda item: -abs(item[1]))[:TOP]
        return [f"{name} {n:+d}" for name, n in ranked if n]

    def on_usr1(self, signum, frame) -> None:
        self.write("probe")

    def on_usr2(self, signum, frame) -> None:
        if LIBC is not None:
            LIBC.malloc_trim(0)
        self.write("after malloc_trim")


def main(argv: list[str]) -> int:
    target = os.environ.get(PROBE_ENV)
    if target:
        tracemalloc.start(1)
        probe = Probe(Path(target))
        signal.signal(signal.SIGUSR1, probe.on_usr1)
        signal.signal(signal.SIGUSR2, probe.on_usr2)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from run_assistant import main as run  # noqa: PLC0415 (after the probe is in place)

    return run(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
