"""Shared pieces of the image benchmarks: the prompt, module timers, memory, run settings."""

from __future__ import annotations

import sys
import time
from typing import Any

from common.devices import synchronize

BENCH_PROMPT = "a photograph of an astronaut riding a horse on the moon"


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where unsupported)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 if sys.platform != "darwin" else 1024 * 1024), 1)


class ModuleTimer:
    """Sums the time spent in a module's forward calls (text encoder, UNet, VAE decoder)."""

    def __init__(self, module, sync=lambda: None):
        self.total_s, self.calls, self._start = 0.0, 0, 0.0
        self._sync = sync  # waits for queued GPU work, so GPU times are real
        self.active = True
        self._handles = [
            module.register_forward_pre_hook(self._begin),
            module.register_forward_hook(self._end),
        ]

    def _begin(self, *args):
        self._sync()
        self._start = time.perf_counter()

    def _end(self, *args):
        self._sync()
        if self.active:
            self.total_s += time.perf_counter() - self._start
            self.calls += 1

    def reset(self):
        self.total_s, self.calls = 0.0, 0

    def remove(self):
        for handle in self._handles:
            handle.remove()


def device_sync(device: str):
    """A no-argument function that waits for ``device``'s queued work (nothing on a CPU)."""
    return lambda: synchronize(device)


def run_settings(model: str, engine, steps: int, size: int, repeats: int) -> dict[str, Any]:
    """What every benchmark result records about the run it measured."""
    import torch

    return {
        "model": model,
        "device": engine.info.device,
        "dtype": engine.info.dtype,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "size": size,
        "repeats": repeats,
        "speedups": list(engine.info.speedups),
        "load_avg": _load_average(),
    }


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (uptime), None where unsupported."""
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def model_name(arch_or_model: str) -> str:
    """``small`` -> ``random:small``; any other ``image.model`` value unchanged."""
    from pipelines.components import ARCHS

    return f"random:{arch_or_model}" if arch_or_model in ARCHS else arch_or_model
