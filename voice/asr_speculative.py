"""Speculative recognition: start transcribing at a short pause, reuse it if the person stopped.

The voice loop hears a request as finished only after a silence window (700 ms by default).
With ``voice.pause_ms`` set, the endpointer announces a :class:`voice.endpointing.SpeechPaused`
earlier, carrying the audio so far; :class:`SpeculativeASR` starts recognizing that audio at
once on its own thread. When the utterance that follows holds exactly that audio (nobody spoke
again), the controller's ``transcribe`` call gets the result already computed, or waits for
the part still running; any other audio (speech resumed, a different language or task) is
recognized as usual and the speculation is discarded. A wrong guess costs CPU, never words.

Example::

    asr = SpeculativeASR(controller.asr)
    asr.speculate(paused.audio)            # at the pause, on the listening thread
    ...
    transcript = asr.transcribe((16000, utterance.audio), task="transcribe")  # reused
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voice.audio import SAMPLE_RATE

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Guess:
    """One speculative recognition: its audio, its call's arguments, and its outcome."""

    samples: np.ndarray
    language: str | None
    task: str | None
    started_at: float
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None
    unwanted: bool = False  # replaced or discarded: skip the decode if not begun
    skipped: bool = False  # it was unwanted before it began: there is no result

    def matches(self, samples: np.ndarray | None, language: str | None, task: str | None) -> bool:
        return (
            samples is not None
            and (language, task) == (self.language, self.task)
            and samples.shape == self.samples.shape
            and np.array_equal(samples, self.samples)
        )


def _samples_of(audio: Any) -> np.ndarray | None:
    """16 kHz float32 samples when ``audio`` is already that (array or ``(16000, array)``)."""
    if isinstance(audio, tuple) and len(audio) == 2 and audio[0] == SAMPLE_RATE:
        audio = audio[1]
    if isinstance(audio, np.ndarray) and audio.dtype == np.float32 and audio.ndim == 1:
        return audio
    return None


class SpeculativeASR:
    """A recognizer that may already have recognized the audio it is asked about.

    Parameters
    ----------
    asr:
        Any recognizer with ``transcribe(audio, language=None, task=None)`` (a
        :class:`voice.asr_base.GuardedRecognizer`, or the start-up ``Preloading`` stand-in).

    Attributes
    ----------
    started, used, discarded:
        Counts of speculations begun, whose result a ``transcribe`` call returned, and thrown
        away (speech resumed, or a different call came).
    """

    def __init__(self, asr: Any):
        self.asr = asr
        self._lock = threading.Lock()
        self._guess: _Guess | None = None
        self.started = self.used = self.discarded = 0

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr == "asr":
            raise AttributeError(attr)
        return getattr(self.asr, attr)

    def speculate(
        self, samples: np.ndarray, language: str | None = None, task: str | None = None
    ) -> None:
        """Start recognizing ``samples`` (16 kHz float32) in the background.

        A previous guess not yet used is discarded (its decode, if running, finishes first:
        the backend decodes one request at a time).
        """
        guess = _Guess(np.asarray(samples, np.float32), language, task, time.monotonic())
        with self._lock:
            self._drop_locked()
            self._guess = guess
            self.started += 1
        threading.Thread(
            target=self._run, args=(guess,), name="asr-speculative", daemon=True
        ).start()

    def _run(self, guess: _Guess) -> None:
        with self._lock:
            if guess.unwanted:  # replaced before it began: skip the work
                guess.skipped = True
                guess.done.set()
                return
        try:
            guess.result = self.asr.transcribe(
                guess.samples, language=guess.language, task=guess.task
            )
        except Exception as e:  # handed to whoever uses the guess (VoiceError included)
            guess.error = e
        finally:
            guess.done.set()

    def discard(self) -> None:
        """Forget the current guess (speech went on)."""
        with self._lock:
            self._drop_locked()

    def _drop_locked(self) -> None:
        if self._guess is not None:
            self._guess.unwanted = True
            self.discarded += 1
        self._guess = None

    def ready(self) -> Any:
        """The current guess's transcript when it has finished well, else ``None``."""
        with self._lock:
            guess = self._guess
        if guess is None or not guess.done.is_set() or guess.error is not None or guess.skipped:
            return None
        return guess.result

    def pending(self) -> bool:
        """True while a guess is held (running or finished, not yet used or discarded)."""
        with self._lock:
            return self._guess is not None

    def transcribe(self, audio: Any, language: str | None = None, task: str | None = None):
        """The backend's ``transcribe``, answered from the guess when it is of this audio.

        A guess that was superseded before it ran is recognized now, as without one.
        """
        samples = _samples_of(audio)
        with self._lock:
            guess, self._guess = self._guess, None
        if guess is not None and guess.matches(samples, language, task):
            was_done = guess.done.is_set()
            guess.done.wait()
            if not guess.skipped:
                self.used += 1
                logger.info(
                    "speculative transcript reused (started %.2f s before it was asked for, %s)",
                    time.monotonic() - guess.started_at,
                    "finished" if was_done else "still running",
                )
                if guess.error is not None:
                    raise guess.error
                return guess.result
        if guess is not None and not guess.matches(samples, language, task):
            guess.unwanted = True
            self.discarded += 1
        return self.asr.transcribe(audio, language=language, task=task)

    def warm_up(self) -> None:
        """The backend's warm-up."""
        self.asr.warm_up()
