"""The text-to-speech interface, and a base class that speaks text one sentence at a time."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np

from voice.errors import VoiceError
from voice.tts_audio import SpeechAudio
from voice.tts_text import check_text, is_speakable, split_sentences

logger = logging.getLogger(__name__)

SENTENCE_PAUSE_S = 0.25  # silence between sentences, in seconds
MIN_SPEED = 0.25  # slowest speaking-rate multiplier accepted
MAX_SPEED = 4.0  # fastest speaking-rate multiplier accepted


@runtime_checkable
class TextToSpeech(Protocol):
    """Anything that turns text into speech.

    Attributes
    ----------
    name:
        Engine and voice, for logs and settings screens (e.g. ``piper:en_US-joe-medium``).
    sample_rate:
        Rate of every chunk it returns, in Hertz.
    """

    name: str
    sample_rate: int

    def synthesize(self, text: str) -> SpeechAudio:
        """Speak the whole text and return it as one piece of audio."""
        ...

    def stream(self, text: str) -> Iterator[SpeechAudio]:
        """Speak the text one sentence at a time, yielding each as soon as it is rendered."""
        ...


def check_speed(speed: float) -> float:
    """Return ``speed`` as a float, or raise ``input-invalid`` if it is out of range.

    Parameters
    ----------
    speed:
        Speaking-rate multiplier: 1.0 is the voice's own pace, 2.0 twice as fast.

    Returns
    -------
    float
    """
    if not MIN_SPEED <= float(speed) <= MAX_SPEED:
        raise VoiceError(
            "input-invalid",
            f"Speech speed {speed} is out of range: set `tts.speed` between "
            f"{MIN_SPEED} and {MAX_SPEED} (1.0 is normal).",
        )
    return float(speed)


class SentenceSynthesizer(ABC):
    """Base for engines: splits text into sentences and renders each with ``_render``.

    Subclasses set ``name`` and ``sample_rate`` and implement ``_render``; this
    class adds input checks, error wrapping, pauses between sentences and a
    lock, so one engine can be shared by threads (one sentence at a time).
    """

    name: str = "tts"
    sample_rate: int = 22050  # Hertz; subclasses set their voice's rate

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @abstractmethod
    def _render(self, sentence: str) -> np.ndarray:
        """Render one sentence to float samples in [-1, 1] at ``self.sample_rate``."""

    def synthesize(self, text: str) -> SpeechAudio:
        """Speak ``text`` and return it as one piece of audio.

        Parameters
        ----------
        text:
            Any length; it is rendered sentence by sentence.

        Returns
        -------
        SpeechAudio
            float32 mono in [-1, 1], with short pauses between sentences.

        Raises
        ------
        VoiceError
            ``input-invalid`` for empty text, ``tts-failed`` if the engine fails.
        """
        return SpeechAudio.concatenate(list(self.stream(text)))

    def stream(self, text: str) -> Iterator[SpeechAudio]:
        """Speak ``text`` one sentence at a time.

        The text is checked before anything is yielded. Every chunk but the last
        ends with a ``SENTENCE_PAUSE_S`` pause, so chunks played back to back
        sound like ``synthesize``.

        Parameters
        ----------
        text:
            Any length.

        Yields
        ------
        SpeechAudio
            One chunk per speakable sentence of ``split_sentences(text)``.

        Raises
        ------
        VoiceError
            ``input-invalid`` for empty text, ``tts-failed`` if the engine fails.
        """
        sentences = [s for s in split_sentences(check_text(text)) if is_speakable(s)]
        return self._stream_sentences(sentences)

    def _stream_sentences(self, sentences: list[str]) -> Iterator[SpeechAudio]:
        pause = np.zeros(round(SENTENCE_PAUSE_S * self.sample_rate), dtype=np.float32)
        for index, sentence in enumerate(sentences):
            samples = self._render_checked(sentence)
            if index < len(sentences) - 1:
                samples = np.concatenate([samples, pause])
            yield SpeechAudio(samples, self.sample_rate)

    def _render_checked(self, sentence: str) -> np.ndarray:
        try:
            with self._lock:
                samples = self._render(sentence)
        except VoiceError:
            raise
        except Exception as e:
            raise VoiceError(
                "tts-failed", f"{self.name} could not speak {sentence[:60]!r}: {e}"
            ) from e
        return np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} @ {self.sample_rate} Hz>"
