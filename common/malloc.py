"""Fewer glibc malloc arenas for the long-running servers (``serve``, the chat window).

glibc gives threads arenas of their own, up to 8 per core, and keeps the memory a thread
freed in its arena for reuse. A server whose requests run on many threads (uvicorn's pool,
the image, speech and turn workers) then holds hundreds of MB of free memory that no object
uses: measured with ``bench load --probe-memory`` (docs/BENCHMARKS.md, "Load and hostile
input"), the offline server's live Python objects and malloc's bytes in use did not change
between two runs of load while its RSS kept growing, and ``malloc_trim`` gave ~0.5 GB back.
With 2 arenas the RSS after a second run stayed where the first left it.

``MALLOC_ARENA_MAX`` in the environment wins (glibc reads it at start); without it,
:func:`limit_arenas` sets the same limit with ``mallopt`` before the server starts its
threads. Elsewhere than glibc both functions do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
SERVER_ARENAS = 2  # arenas for a server process unless MALLOC_ARENA_MAX says otherwise
ARENA_ENV = "MALLOC_ARENA_MAX"


def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None


def limit_arenas(arenas: int = SERVER_ARENAS, environ: dict[str, str] | None = None) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` for threads started from now on.

    Returns
    -------
    True when the cap was set here; False with ``MALLOC_ARENA_MAX`` set (glibc applied it
    already) or without glibc.
    """
    environ = os.environ if environ is None else environ
    if environ.get(ARENA_ENV):
        return False
    libc = _glibc()
    if libc is None:
        return False
    if libc.mallopt(M_ARENA_MAX, int(arenas)) != 1:
        logger.warning("mallopt(M_ARENA_MAX, %d) was refused; malloc keeps its arenas", arenas)
        return False
    logger.debug("malloc arenas capped at %d (MALLOC_ARENA_MAX overrides)", arenas)
    return True
