"""Stop a transcription whose caller gave up, between two of Whisper's forward passes.

openai-whisper has no cancel argument, and one decode holds the recogniser's lock for
seconds (tens of seconds for long audio on a CPU), so a request abandoned by its client kept
the next one waiting. :func:`cancellable` arms forward pre-hooks on the blocks of the model's
encoder and decoder that raise ``asr-cancelled`` once the caller's event is set: the decode
ends within one block, whisper's own ``finally`` drops its key/value cache, and the lock is
free again.

Hooks fire for the thread that armed them only, so one caller's cancel never stops another
caller's decode. A backend without a torch model (faster-whisper) is checked before it starts,
between its 30 s windows (its ``cancel_events``), and when it ends: a result that came after
its caller gave up is never used. One of its windows cannot be stopped (about 1-2 s of CPU).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from voice.errors import VoiceError

logger = logging.getLogger(__name__)

CANCELLED_MESSAGE = "The transcription was stopped because its request was abandoned."


def _cancelled() -> VoiceError:
    return VoiceError("asr-cancelled", CANCELLED_MESSAGE)


class _Watch:
    """The cancel events of the threads now decoding with one model, checked by its hooks."""

    def __init__(self, model: Any):
        self.events: dict[int, threading.Event] = {}
        # Each transformer block, not just encoder/decoder.forward: a decoding path that runs
        # the blocks itself (voice/asr_whisper_short.py) is stopped as well, within one block.
        for part in (model.encoder, model.decoder):
            for module in getattr(part, "blocks", None) or [part]:
                module.register_forward_pre_hook(self._check)

    def _check(self, module: Any, args: Any) -> None:
        event = self.events.get(threading.get_ident())
        if event is not None and event.is_set():
            raise _cancelled()


_watches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_watches_lock = threading.Lock()


def _watch_for(model: Any) -> _Watch | None:
    if not (hasattr(model, "encoder") and hasattr(model, "decoder")):
        return None
    if not hasattr(model.encoder, "register_forward_pre_hook"):
        return None
    with _watches_lock:
        watch = _watches.get(model)
        if watch is None:
            watch = _watches[model] = _Watch(model)
        return watch


@contextmanager
def cancellable(asr: Any, cancel: threading.Event) -> Iterator[None]:
    """Within the block, this thread's decodes with ``asr`` stop once ``cancel`` is set.

    Parameters
    ----------
    asr: a recogniser (``voice.asr.WhisperASR``: its ``model`` is hooked; others are not).
    cancel: set by whoever gives up on the result (the API, when the client leaves).

    Raises
    ------
    VoiceError
        ``asr-cancelled``, from the block, when ``cancel`` is set before or during a decode.
    """
    if cancel.is_set():
        raise _cancelled()
    watch = _watch_for(getattr(asr, "model", None))
    if watch is None:
        events = getattr(asr, "cancel_events", None)  # faster-whisper: between windows
        ident = threading.get_ident()
        if events is not None:
            events[ident] = cancel
        try:
            yield
        finally:
            if events is not None:
                events.pop(ident, None)
        if cancel.is_set():  # it finished after its caller left: the words are not used
            raise _cancelled()
        return
    ident = threading.get_ident()
    watch.events[ident] = cancel
    try:
        yield
    finally:
        watch.events.pop(ident, None)
