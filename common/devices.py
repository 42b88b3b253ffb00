"""The one place that decides which torch device and CPU precision a model runs on.

``pick_device`` maps a setting ("auto", "cpu", "cuda", "cuda:N", "mps") to a device that is
really there; an accelerator that is missing degrades to the CPU with a warning (as Whisper
degrades FP16 on a CPU), an unknown name raises ``ValueError`` for the caller to turn into its
own error type. Callers: ``pipelines.loading.resolve_device`` (images, and through
``assistant.build`` the whole assistant); the voice modules can use it too.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")  # what ``pick_device`` accepts
# /proc/cpuinfo flags of x86 CPUs that run bfloat16 matrix maths natively (Zen 4/5, Cooper
# Lake, Sapphire Rapids). Without them torch emulates bf16 and it is 7-50x slower than fp32.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def has_mps() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def pick_device(requested: str | None = "auto", setting: str = "device") -> str:
    """The torch device for ``requested``.

    Parameters
    ----------
    requested: "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps".
    setting: the config key named in messages.

    Returns
    -------
    The device string to use.

    Raises
    ------
    ValueError naming ``setting`` for an unknown device name.
    """
    wanted = (requested or "auto").strip().lower()
    if wanted == "auto":
        return "cuda" if has_cuda() else "mps" if has_mps() else "cpu"
    if wanted.startswith("cuda"):
        if not has_cuda():
            logger.warning("Device %s was asked for but CUDA is not available; using cpu", wanted)
            return "cpu"
        return wanted
    if wanted == "mps":
        if not has_mps():
            logger.warning("Device mps was asked for but is not available; using cpu")
            return "cpu"
        return wanted
    if wanted == "cpu":
        return wanted
    raise ValueError(
        f"Unknown device {requested!r} (setting `{setting}`): use auto, cpu, cuda or mps."
    )


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def is_out_of_memory(error: BaseException) -> bool:
    """True for torch's out-of-memory errors on any device (CUDA, MPS, a CPU allocator)."""
    import torch

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_cached_memory(device: str) -> None:
    """Give the CUDA caching allocator's free blocks back after an out-of-memory error."""
    if is_cuda(device) and has_cuda():
        import torch

        torch.cuda.empty_cache()


def synchronize(device: str) -> None:
    """Wait for queued GPU work (timers around GPU calls need it); a no-op on the CPU."""
    if is_cuda(device) and has_cuda():
        import torch

        torch.cuda.synchronize()


@functools.cache
def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when this x86 CPU has bfloat16 instructions (``NATIVE_BF16_FLAGS``).

    Read from ``/proc/cpuinfo`` (Linux). Elsewhere, or when it cannot be read, False: bf16 is
    then left off, the safe choice.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(flag in flags for flag in NATIVE_BF16_FLAGS)
    return False
