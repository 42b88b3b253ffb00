"""Optional wake word: only speech that follows "Hey Jarvis" (or another built-in word) counts.

:class:`WakeWordDetector` runs a microWakeWord model (``pymicro-wakeword``: TensorFlow Lite
models and runtime inside the wheel, nothing downloaded) over every frame of the stream.
:class:`WakeGate` decides which utterances the assistant should act on:

- an utterance that holds the wake word counts, minus the wake word itself
  ("Hey Jarvis, draw a cat" is heard as "draw a cat");
- the wake word alone ("Hey Jarvis." ... "draw a cat") arms the gate: the next utterance
  that starts within ``listen_s`` counts;
- after the assistant asks a question, :meth:`WakeGate.reopen` lets the next utterance in
  without the wake word (within ``seconds``);
- detections closer than ``cooldown_s`` to the previous one are ignored (one "Hey Jarvis"
  keeps the model's score high for several frames).

Without a wake word (no gate), every utterance counts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from voice.endpointing import Utterance
from voice.errors import VoiceError
from voice.vad import FRAME_SAMPLES, SAMPLE_RATE

logger = logging.getLogger(__name__)

WAKE_WORDS = ("hey_jarvis", "okay_nabu", "hey_mycroft", "alexa")  # built into pymicro-wakeword
INT16_FULL_SCALE = 32767  # float -1..1 to 16-bit PCM, what the model's feature frontend takes
DEFAULT_COOLDOWN_S = 2.0  # s after a detection during which another one is ignored
DEFAULT_LISTEN_S = 6.0  # s after a lone wake word during which the next utterance counts
DEFAULT_MIN_COMMAND_MS = 400.0  # ms of speech after the wake word for it to be a request
DEFAULT_ANSWER_S = 10.0  # s the mic stays open without the wake word after a question


def wake_word_names() -> tuple[str, ...]:
    """Names accepted by :class:`WakeWordDetector` (``hey_jarvis``, ``okay_nabu``, ...)."""
    return WAKE_WORDS


class WakeWordDetector:
    """A streaming microWakeWord model.

    Parameters
    ----------
    name:
        One of :data:`WAKE_WORDS`; spaces and dashes are accepted ("hey jarvis").
    cutoff:
        Detection threshold 0..1 on the model's smoothed probability; ``None`` takes the
        model's own (0.97 for hey_jarvis, 0.85 for okay_nabu ...).

    Raises
    ------
    VoiceError
        ``input-invalid`` for an unknown name, ``model-missing`` when pymicro-wakeword is
        not installed or cannot load its model.
    """

    def __init__(self, name: str = "hey_jarvis", cutoff: float | None = None):
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        if key not in WAKE_WORDS:
            raise VoiceError(
                "input-invalid",
                f"Unknown wake word {name!r}: choose one of {', '.join(WAKE_WORDS)} "
                "(setting voice.wake_word), or none.",
            )
        try:
            from pymicro_wakeword import (  # noqa: PLC0415 (optional dependency)
                MicroWakeWord,
                MicroWakeWordFeatures,
                Model,
            )
        except ImportError as e:
            raise VoiceError(
                "model-missing",
                "The wake word needs pymicro-wakeword: pip install pymicro-wakeword==2.5.0, or "
                "run without a wake word.",
            ) from e
        try:
            self._model = MicroWakeWord.from_builtin(Model(key))
        except Exception as e:
            raise VoiceError(
                "model-missing", f"Could not load the wake word model {key}: {e}"
            ) from e
        self._features = MicroWakeWordFeatures()
        self.name = key
        self.phrase = self._model.wake_word  # e.g. "Hey Jarvis"
        self.cutoff = self._model.probability_cutoff if cutoff is None else cutoff
        self.last_probability = 0.0

    def process(self, frame: np.ndarray) -> bool:
        """Feed the next frame (16 kHz float32); True when the wake word has just been said.

        Parameters
        ----------
        frame:
            Samples of any length, in -1..1.

        Returns
        -------
        Whether the model's smoothed probability rose above the cutoff in this frame.
        """
        pcm = np.clip(np.asarray(frame, dtype=np.float32), -1.0, 1.0) * INT16_FULL_SCALE
        detected = False
        for features in self._features.process_streaming(pcm.astype("<i2").tobytes()):
            probability = self._model.process_streaming_prob(features)
            if probability is None:
                continue
            self.last_probability = float(probability)
            detected = detected or probability > self.cutoff
        return detected

    def reset(self) -> None:
        """Forget the stream (reloads the model's internal state)."""
        self._model.reset()
        self._features.reset()


@dataclass(frozen=True)
class _Detection:
    sample: int  # stream position at the end of the frame where the word was detected


class WakeGate:
    """Which utterances count, given a wake word (see the module notes).

    ``process`` is called by the listening thread for every frame; ``reopen`` may be
    called from the thread that runs turns.

    Parameters
    ----------
    detector:
        A :class:`WakeWordDetector`, or anything with ``process(frame) -> bool``.
    cooldown_s:
        Seconds after a detection during which another is ignored.
    listen_s:
        Seconds after a lone wake word during which the next utterance counts.
    min_command_ms:
        Milliseconds of speech needed after the wake word, within the same utterance, for
        that utterance to be a request (otherwise the gate waits for the next one).
    speech_threshold:
        Speech probability at or above which a frame of an utterance counts as speech.
    """

    def __init__(
        self,
        detector,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        listen_s: float = DEFAULT_LISTEN_S,
        min_command_ms: float = DEFAULT_MIN_COMMAND_MS,
        speech_threshold: float = 0.35,
    ):
        self.detector = detector
        self.cooldown = int(cooldown_s * SAMPLE_RATE)  # samples
        self.listen = int(listen_s * SAMPLE_RATE)  # samples
        self.min_command_frames = int(np.ceil(min_command_ms / 1000 * SAMPLE_RATE / FRAME_SAMPLES))
        self.speech_threshold = speech_threshold
        self._lock = threading.Lock()
        self._position = 0  # samples seen
        self._detection: _Detection | None = None  # last detection not yet used
        self._last_detection_sample: int | None = None
        self._armed_until: int | None = None  # a lone wake word: next utterance counts
        self._answer_until: int | None = None  # after a question: next utterance counts
        self.detections = 0

    @property
    def phrase(self) -> str:
        """The wake phrase, for prompts ("Say 'Hey Jarvis' ...")."""
        return getattr(self.detector, "phrase", "the wake word")

    def process(self, frame: np.ndarray) -> bool:
        """Feed the next frame of the stream; True when the wake word was just detected."""
        with self._lock:
            self._position += len(frame)
            position = self._position
        if not self.detector.process(frame):
            return False
        with self._lock:
            last = self._last_detection_sample
            if last is not None and position - last < self.cooldown:
                return False
            self._last_detection_sample = position
            self._detection = _Detection(position)
            self.detections += 1
        logger.info("wake word heard at %.2f s", position / SAMPLE_RATE)
        return True

    def reopen(self, seconds: float = DEFAULT_ANSWER_S) -> None:
        """Let the next utterance starting within ``seconds`` in without the wake word."""
        with self._lock:
            self._answer_until = self._position + int(seconds * SAMPLE_RATE)

    @property
    def is_open(self) -> bool:
        """True when the next utterance would count without saying the wake word now."""
        with self._lock:
            return any(
                until is not None and self._position <= until
                for until in (self._answer_until, self._armed_until)
            )

    def accept(self, utterance: Utterance) -> np.ndarray | None:
        """The audio of ``utterance`` the assistant should hear, or None to ignore it.

        Parameters
        ----------
        utterance:
            From the endpointer of the same stream.

        Returns
        -------
        The whole utterance (the mic was open), the part after the wake word, or None.
        """
        with self._lock:
            start, end = utterance.start_sample, utterance.end_sample
            detection = self._detection
            if detection is not None and start <= detection.sample <= end:
                self._detection = None
                self._answer_until = None
                first = int(np.ceil((detection.sample - start) / FRAME_SAMPLES))
                rest = utterance.probabilities[first:]
                if int((rest >= self.speech_threshold).sum()) >= self.min_command_frames:
                    self._armed_until = None
                    return utterance.audio[first * FRAME_SAMPLES :]
                self._armed_until = detection.sample + self.listen
                logger.info("wake word alone: listening for %.0f s", self.listen / SAMPLE_RATE)
                return None
            if detection is not None and detection.sample < start:
                # Said before this utterance began, alone: it armed the gate.
                self._detection = None
                self._armed_until = detection.sample + self.listen
            for name in ("_answer_until", "_armed_until"):
                until = getattr(self, name)
                if until is not None and start <= until:
                    setattr(self, name, None)
                    return utterance.audio
            return None
