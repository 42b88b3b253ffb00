"""Models loaded on first use and then kept: the image models and voices a session may pick."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
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
