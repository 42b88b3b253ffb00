"""Keep openai-whisper from importing numba (~60 MB resident) until word timestamps are asked for.

``import whisper`` imports ``whisper.transcribe``, which imports ``whisper.timing`` for its
word-level timestamps, which imports numba (and llvmlite) at once. The assistant never asks
for word timestamps, so :func:`defer_whisper_timing` puts a stand-in ``whisper.timing`` in
``sys.modules`` before whisper is imported: the first use of any of its names
(``add_word_timestamps``, ...) loads the real module from whisper's own file and answers from
it. ``voice/__init__.py`` calls it, so it happens before any of our modules imports whisper.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

MODULE = "whisper.timing"


def _real_timing() -> types.ModuleType:
    """Load whisper's own ``timing.py`` (and numba) now, in place of the stand-in."""
    current = sys.modules.get(MODULE)
    if current is not None and not getattr(current, "_deferred", False):
        return current
    package = sys.modules.get("whisper")
    locations = package.__path__ if package is not None else None
    spec = importlib.util.find_spec("whisper")
    folder = list(locations or (spec.submodule_search_locations if spec else []))[0]
    real_spec = importlib.util.spec_from_file_location(MODULE, f"{folder}/timing.py")
    real = importlib.util.module_from_spec(real_spec)
    sys.modules[MODULE] = real
    real_spec.loader.exec_module(real)
    if package is not None:
        package.timing = real
    return real


class _DeferredTiming(types.ModuleType):
    """``whisper.timing`` until one of its names is used."""

    _deferred = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_real_timing(), name)


def _add_word_timestamps(*args: Any, **kwargs: Any) -> Any:
    return _real_timing().add_word_timestamps(*args, **kwargs)


def defer_whisper_timing() -> None:
    """Install the stand-in, unless whisper (or its timing module) is already imported."""
    if MODULE in sys.modules or "whisper" in sys.modules:
        return
    if importlib.util.find_spec("whisper") is None:  # openai-whisper not installed
        return
    stand_in = _DeferredTiming(MODULE)
    # whisper.transcribe does `from .timing import add_word_timestamps` at import time.
    stand_in.add_word_timestamps = _add_word_timestamps
    sys.modules[MODULE] = stand_in
