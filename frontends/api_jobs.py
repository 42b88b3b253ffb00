"""Run a blocking model call off the event loop, and cancel it if the client goes away.

The engines serialise GPU work with their own locks; this only keeps the server
responsive (other requests, /health) while a picture is drawn, and stops drawing for
nobody: when the client disconnects, the job's cancel event is set and the image engine
stops within one denoising step (a transcription within one token: ``voice/asr_cancel.py``).
A job takes a place in its engine's queue first (``frontends/api_limits.py``): a full queue
is answered 429 at once, before any work.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from frontends.api_limits import JobQueue

logger = logging.getLogger(__name__)

T = TypeVar("T")

DISCONNECT_POLL_S = 0.25  # seconds between checks that the client is still there


async def run_blocking(
    request: Request, job: Callable[[threading.Event], T], queue: JobQueue | None = None
) -> T:
    """Run ``job(cancel)`` in the threadpool; set ``cancel`` if the client disconnects.

    Parameters
    ----------
    request: the request being served (to watch for a disconnect).
    job: the blocking work; it receives a ``threading.Event`` to honour.
    queue: the engine's queue to take a place in first (full: ``server-busy``, 429).

    Returns
    -------
    What ``job`` returns; its exceptions propagate unchanged.
    """
    if queue is None:
        return await _watched(request, job)
    with queue.place():
        return await _watched(request, job)


async def _watched(request: Request, job: Callable[[threading.Event], T]) -> T:
    cancel = threading.Event()
    task = asyncio.ensure_future(run_in_threadpool(job, cancel))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if not cancel.is_set() and await request.is_disconnected():
                logger.info("Client left %s %s: cancelling", request.method, request.url.path)
                cancel.set()
    finally:
        # Cancelled ourselves (server shutdown): let the job stop at its next step.
        if not task.done():
            cancel.set()
