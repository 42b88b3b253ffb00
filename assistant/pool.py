"""Models loaded once and then kept: on first use (the image models and voices a session may
pick), or in a background thread at start-up (so a front end is ready before its models)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

logger = logging.getLogger(__name__)


class ModelPool:
    """A lazily filled map from a setting (an image model, a voice) to its loaded engine.

    Parameters
    ----------
    loader: builds the engine for a key; its errors (e.g. ``model-missing``) reach the turn.
    preloaded: engines already built at start-up, by key.
    """

    def __init__(self, loader: Callable[[str], Any], preloaded: dict[str, Any] | None = None):
        self._loader = loader
        self._engines: dict[str, Any] = dict(preloaded or {})
        self._lock = threading.Lock()  # one load at a time: two tabs never load the same twice

    def get(self, key: str) -> Any:
        with self._lock:
            if key not in self._engines:
                logger.info("Loading %s for the first time", key)
                self._engines[key] = self._loader(key)
            return self._engines[key]

    def loaded(self) -> list[str]:
        return list(self._engines)


class Preloading:
    """Stands in for an engine a background thread is still building; first use waits for it.

    Attribute reads, writes and calls go to the engine once it is built, so the controller and
    the front ends use it as they would the engine; a failed build raises its error (e.g.
    ``model-missing``) at each use, where a turn reports it. ``resolve(x)`` gives the engine.
    """

    def __init__(self, name: str, future: Future, start: Callable[[], None]):
        object.__setattr__(self, "_preloading_name", name)
        object.__setattr__(self, "_preloading_future", future)
        object.__setattr__(self, "_preloading_start", start)  # a use before start() must not hang

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # copy/pickle probes must not wait for a model
            raise AttributeError(attr)
        return getattr(resolve(self), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(resolve(self), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(resolve(self), attr)

    def __repr__(self) -> str:
        future = self._preloading_future
        state = "ready" if future.done() and not future.exception() else "loading"
        return f"<Preloading {self._preloading_name}: {state}>"


def resolve(engine: Any, timeout: float | None = None) -> Any:
    """The engine itself: waits for a ``Preloading`` one (re-raising its build error)."""
    if isinstance(engine, Preloading):
        engine._preloading_start()
        return engine._preloading_future.result(timeout)
    return engine


def is_ready(engine: Any) -> bool:
    """False while a ``Preloading`` engine is still being built (or failed to build)."""
    if isinstance(engine, Preloading):
        future = engine._preloading_future
        return future.done() and future.exception() is None
    return engine is not None


class BackgroundLoader:
    """Builds engines and runs warm-ups one after another in one background thread.

    One thread, not one per model: on a 2-core machine parallel loads only fight for the cores
    and the GIL. Jobs run in the order they were submitted, so submit what a turn needs first.
    Nothing runs before ``start()``: the foreground loads and the front end's own start-up
    get the cores first. Its worker is not a daemon: at exit Python waits for a load in
    progress instead of tearing down native thread pools under it.
    """

    def __init__(self, on_done: Callable[[str, float], None] | None = None):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")
        self._futures: list[Future] = []
        self._on_done = on_done
        self._started = threading.Event()

    def start(self) -> None:
        """Let the submitted jobs run (calling it again does nothing)."""
        self._started.set()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def submit(self, name: str, build: Callable[[], Any]) -> Future:
        """Run ``build`` after the jobs before it; its errors are logged and kept."""
        future = self._executor.submit(self._run, name, build)
        self._futures.append(future)
        return future

    def load(self, name: str, build: Callable[[], Any]) -> Preloading:
        """Build an engine in the background; returns its stand-in at once."""
        return Preloading(name, self.submit(name, build), self.start)

    def wait(self, timeout: float | None = None) -> bool:
        """Start, then wait until every job so far is done (failed ones too); False on timeout."""
        self.start()
        _, pending = wait_futures(list(self._futures), timeout=timeout)
        return not pending

    def _run(self, name: str, build: Callable[[], Any]) -> Any:
        self._started.wait()
        start = time.perf_counter()
        try:
            return build()
        except BaseException:
            logger.exception("Loading %s in the background failed; turns needing it say so", name)
            raise
        finally:
            release_freed_memory()  # a load's transient copies (checkpoint dicts) go back
            if self._on_done is not None:
                self._on_done(name, time.perf_counter() - start)


_trimming = threading.Lock()  # one trim at a time; a turn ending meanwhile skips its own


def release_memory_after_turn() -> bool:
    """At a turn's end: hand back to the OS what the turn freed (for every front end).

    A 512x512 turn leaves ~150-250 MB of freed image and decode buffers that glibc keeps for
    reuse (docs/BENCHMARKS.md, "Voice speed and memory, fifth session"); trimming them costs
    a few ms, paid after ``turn.end`` was sent. When another turn's end is trimming already,
    this one does nothing (that trim gives back its memory too).

    Returns
    -------
    True when this call trimmed, False when another was trimming.
    """
    if not _trimming.acquire(blocking=False):
        return False
    try:
        release_freed_memory()
    finally:
        _trimming.release()
    return True


def release_freed_memory() -> None:
    """Hand memory that Python and the loaders freed back to the OS (glibc ``malloc_trim``).

    A model load frees its temporary copies, but glibc keeps the pages for reuse, so the
    process stays as big as its peak; trimming returned 30-120 MB after the offline loads.
    """
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def resident_mb() -> float:
    """This process's resident memory (RSS) in MB; NaN where /proc is not there."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
