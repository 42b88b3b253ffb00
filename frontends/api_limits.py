"""What one request may cost the server, checked before any work is queued.

- :class:`~assistant.cost.CostBudget`: an image request's cost is width x height x steps x
  images, in megapixel-steps; above the budget for the device (``api.cost_budget``) it is
  refused with ``budget-exceeded`` (400) and a message saying what would fit. On this
  project's 2-core CPU one request within the schema's maxima (4 x 2048x2048 x 150 steps)
  held the engine ~1.5 h. Turns are held to the same budget by the controller.
- :class:`JobQueue`: one per engine; holds at most ``api.max_queued`` jobs (running or
  waiting for the engine's lock). One more is answered 429 ``server-busy`` with
  ``Retry-After``, the seconds a job has recently taken there.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from assistant.cost import CostBudget, budget_for, device_kind
from frontends.api_errors import ApiError

logger = logging.getLogger(__name__)

__all__ = ["ApiLimits", "CostBudget", "JobQueue", "build_limits", "device_kind"]

RETRY_AFTER_MIN_S, RETRY_AFTER_MAX_S = 1, 600  # seconds told to a refused client
DURATION_SMOOTHING = 0.3  # weight of the newest job in the running mean of job durations


class JobQueue:
    """Admission to one engine: at most ``capacity`` jobs running or waiting.

    Parameters
    ----------
    name: what the engine does, for the refusal ("image", "transcription", ...).
    capacity: jobs admitted at once (``api.max_queued``).
    """

    def __init__(self, name: str, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self.admitted = 0
        self.refused = 0
        self._mean_s = 1.0  # seconds per job, smoothed
        self._lock = threading.Lock()

    def retry_after_s(self) -> int:
        """Whole seconds until a place is likely to free up."""
        return int(min(RETRY_AFTER_MAX_S, max(RETRY_AFTER_MIN_S, math.ceil(self._mean_s))))

    def enter(self) -> None:
        """Take a place, or raise ``server-busy`` (429, ``Retry-After``) when all are taken."""
        with self._lock:
            if self.admitted >= self.capacity:
                self.refused += 1
                wait = self.retry_after_s()
                raise ApiError(
                    "server-busy",
                    f"The {self.name} queue is full ({self.capacity} requests running or "
                    f"waiting). Try again in about {wait} s.",
                    headers={"Retry-After": str(wait)},
                )
            self.admitted += 1

    def leave(self, seconds: float | None = None) -> None:
        """Give the place back; ``seconds`` the job took, for later ``Retry-After`` values."""
        with self._lock:
            self.admitted = max(0, self.admitted - 1)
            if seconds is not None:
                self._mean_s += DURATION_SMOOTHING * (seconds - self._mean_s)

    @contextmanager
    def place(self) -> Iterator[None]:
        """``enter`` on the way in, ``leave`` (with the time taken) on the way out."""
        self.enter()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.leave(time.perf_counter() - started)


@dataclass
class ApiLimits:
    """Everything the routes check before they queue work."""

    budget: CostBudget
    queues: dict[str, JobQueue]
    max_image_pixels: int
    session_keep_s: float | None = None  # stored sessions unchanged this long are deleted

    def queue(self, name: str) -> JobQueue:
        return self.queues[name]


QUEUE_NAMES = ("image", "transcription", "speech", "turn")


def build_limits(settings: object, device: str) -> ApiLimits:
    """The limits of ``settings`` (``assistant.config.ApiConfig``) for the image device."""
    return ApiLimits(
        budget=budget_for(settings.cost_budget, device),
        queues={name: JobQueue(name, settings.max_queued) for name in QUEUE_NAMES},
        max_image_pixels=settings.max_image_pixels,
        session_keep_s=getattr(settings, "session_keep_s", None),
    )
