"""Endpointing: cut a stream of 32 ms frames into utterances, from per-frame speech probabilities.

Pure logic, no model: feed it ``(frame, probability)`` pairs (the probability from
:class:`voice.vad.SileroVAD`, or any number in tests) and it announces when speech starts and
hands back a whole :class:`Utterance` when speech ends::

    endpointer = Endpointer(EndpointConfig(silence_ms=700))
    for frame in source:
        for event in endpointer.push(frame, vad(frame)):
            if isinstance(event, Utterance):
                transcribe(event.audio)

Rules (all durations in whole frames of 32 ms):

- speech *starts* after ``start_frames`` consecutive frames at or above ``threshold``; the
  utterance then also keeps the ``pre_roll_ms`` of audio before them, so the first
  syllable (quieter than the VAD's threshold) is not lost;
- while speaking, a frame counts as speech at or above ``threshold - hysteresis``; speech
  *ends* after ``silence_ms`` of non-speech frames (the trailing silence is kept up to
  ``post_roll_ms``);
- with ``pause_ms`` set (below ``silence_ms``), a :class:`SpeechPaused` carrying the audio so
  far is announced after that much non-speech, so recognition can start before the end is
  decided; if speech does not resume, the :class:`Utterance` that follows holds the same
  audio (``same_speech`` tells), and its transcript is already there. A caller that judges
  the request finished from that transcript may end it at once (:meth:`Endpointer.end_now`),
  once the silence has lasted ``early_end_ms``;
- utterances with less than ``min_speech_ms`` of speech frames are dropped (coughs, clicks);
- an utterance reaching ``max_utterance_s`` is cut and handed back at once (``cut=True``).

:class:`PushToTalk` has the same ``push`` interface; its utterances are whatever lies
between :meth:`PushToTalk.start` and :meth:`PushToTalk.stop`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from voice.vad import FRAME_SAMPLES, SAMPLE_RATE

logger = logging.getLogger(__name__)

FRAME_MS = 1000 * FRAME_SAMPLES / SAMPLE_RATE  # 32.0 ms per frame
MAX_START_FRAMES = 32  # most consecutive frames a start rule may ask for (about 1 s)


def frames_for(ms: float) -> int:
    """Whole frames (32 ms each) covering ``ms`` milliseconds, rounded up; 0 for 0 ms."""
    return max(0, int(np.ceil(ms / FRAME_MS - 1e-9)))


@dataclass(frozen=True)
class EndpointConfig:
    """When an utterance starts and ends.

    Parameters
    ----------
    threshold:
        Speech probability (0..1) at or above which a frame starts speech.
    hysteresis:
        Once speaking, frames down to ``threshold - hysteresis`` still count as speech
        (Silero's own streaming iterator uses 0.15).
    start_frames:
        Consecutive speech frames needed to start an utterance (1 = 32 ms).
    pre_roll_ms:
        Audio kept from before the start, in ms.
    silence_ms:
        Non-speech that ends an utterance, in ms.
    post_roll_ms:
        Trailing non-speech kept at the end of an utterance, in ms (at most ``silence_ms``).
    min_speech_ms:
        Utterances with less speech than this (ms of speech frames) are dropped.
    max_utterance_s:
        Longest utterance in seconds; a longer one is cut and handed back.
    pause_ms:
        Non-speech after which a :class:`SpeechPaused` is announced (0: never); at least
        ``post_roll_ms`` (so its audio is the utterance's) and below ``silence_ms``.
    early_end_ms:
        Least non-speech before :meth:`Endpointer.end_now` may end an utterance early (0:
        at the pause). It keeps a person's hesitation shorter than this from being taken as
        the end however fast recognition is (a GPU recognizes in ~30 ms); below
        ``silence_ms``.
    """

    threshold: float = 0.5
    hysteresis: float = 0.15
    start_frames: int = 1
    pre_roll_ms: float = 300.0
    silence_ms: float = 700.0
    post_roll_ms: float = 200.0
    min_speech_ms: float = 250.0
    max_utterance_s: float = 15.0
    pause_ms: float = 0.0
    early_end_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.hysteresis < self.threshold:
            raise ValueError(f"hysteresis must be in [0, threshold), got {self.hysteresis}")
        if not 1 <= self.start_frames <= MAX_START_FRAMES:
            raise ValueError(f"start_frames must be 1..{MAX_START_FRAMES}, got {self.start_frames}")
        if self.silence_ms < FRAME_MS:
            raise ValueError(f"silence_ms must be at least one frame ({FRAME_MS} ms)")
        if self.max_utterance_s * 1000 <= self.min_speech_ms:
            raise ValueError("max_utterance_s must be longer than min_speech_ms")
        for name in ("pre_roll_ms", "post_roll_ms", "min_speech_ms", "pause_ms", "early_end_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.pause_ms and not min(self.post_roll_ms, self.silence_ms) <= self.pause_ms:
            raise ValueError("pause_ms must be at least post_roll_ms (or 0 for no pauses)")
        if self.pause_ms and frames_for(self.pause_ms) >= frames_for(self.silence_ms):
            raise ValueError("pause_ms must be shorter than silence_ms (or 0 for no pauses)")
        if frames_for(self.early_end_ms) >= frames_for(self.silence_ms):
            raise ValueError("early_end_ms must be shorter than silence_ms")


@dataclass(frozen=True, eq=False)
class SpeechStarted:
    """Speech began (after ``start_frames`` speech frames).

    Parameters
    ----------
    start_sample:
        Stream position (samples since the first frame) of the utterance's first sample,
        pre-roll included.
    time:
        ``time.monotonic()`` when the start was decided.
    """

    start_sample: int
    time: float


@dataclass(frozen=True, eq=False)
class SpeechPaused:
    """Speech paused for ``pause_ms``: the end may come, and recognition can start now.

    Parameters
    ----------
    audio:
        The utterance as it would be handed back if speech does not resume.
    start_sample:
        Stream position of ``audio[0]``.
    speech_frames:
        Speech frames so far; an :class:`Utterance` with as many holds the same speech.
    time:
        ``time.monotonic()`` when the pause was announced.
    """

    audio: np.ndarray
    start_sample: int
    speech_frames: int
    time: float


@dataclass(frozen=True, eq=False)
class SpeechDropped:
    """Speech that ended too short to be an utterance (a cough, a click, a door).

    Parameters
    ----------
    speech_ms:
        Milliseconds of speech frames it held.
    start_sample:
        Stream position of its first sample.
    """

    speech_ms: float
    start_sample: int


@dataclass(frozen=True, eq=False)
class Utterance:
    """One stretch of speech, ready for recognition.

    Parameters
    ----------
    audio:
        float32 samples at 16 kHz: pre-roll, speech, up to ``post_roll_ms`` of silence.
    start_sample:
        Stream position of ``audio[0]``.
    probabilities:
        The speech probability of each frame of ``audio``.
    speech_frames:
        How many of those frames counted as speech.
    cut:
        True when ``max_utterance_s`` was reached and the person may still be talking.
    speech_end_time:
        ``time.monotonic()`` when the last speech frame arrived: the end of speech.
    end_time:
        ``time.monotonic()`` when the end was decided (after the silence window).
    """

    audio: np.ndarray
    start_sample: int
    probabilities: np.ndarray
    speech_frames: int
    cut: bool
    speech_end_time: float
    end_time: float

    @property
    def seconds(self) -> float:
        """Duration of ``audio`` in seconds."""
        return self.audio.size / SAMPLE_RATE

    @property
    def speech_seconds(self) -> float:
        """Seconds of speech frames."""
        return self.speech_frames * FRAME_SAMPLES / SAMPLE_RATE

    @property
    def end_sample(self) -> int:
        """Stream position just after ``audio``."""
        return self.start_sample + self.audio.size

    def same_speech(self, paused: SpeechPaused | None) -> bool:
        """True when ``paused`` announced this very audio (speech did not resume since)."""
        return (
            paused is not None
            and not self.cut
            and paused.start_sample == self.start_sample
            and paused.speech_frames == self.speech_frames
            and paused.audio.size == self.audio.size
        )


EndpointEvent = SpeechStarted | SpeechPaused | SpeechDropped | Utterance


@dataclass
class _Open:
    """The utterance being collected."""

    start_sample: int
    frames: list[np.ndarray] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    speech_frames: int = 0
    last_speech_index: int = -1  # index in frames of the last speech frame
    speech_end_time: float = 0.0
    silence_run: int = 0


class Endpointer:
    """Turns frames and their speech probabilities into utterances (see the module notes).

    Parameters
    ----------
    config:
        The rules; defaults: 300 ms pre-roll, 700 ms silence, 250 ms minimum, 15 s maximum.
    clock:
        Returns the current time in seconds (``time.monotonic``); tests may pass their own.
    """

    def __init__(self, config: EndpointConfig | None = None, clock=time.monotonic):
        self.config = config or EndpointConfig()
        self._clock = clock
        c = self.config
        self._pre_roll_frames = frames_for(c.pre_roll_ms)
        self._silence_frames = frames_for(c.silence_ms)
        self._post_roll_frames = min(frames_for(c.post_roll_ms), self._silence_frames)
        self._min_speech_frames = frames_for(c.min_speech_ms)
        self._max_frames = max(1, int(c.max_utterance_s * 1000 // FRAME_MS))
        self._pause_frames = frames_for(c.pause_ms)
        self._early_end_frames = max(self._pause_frames, frames_for(c.early_end_ms))
        self.reset()

    def reset(self) -> None:
        """Forget everything: no utterance open, empty pre-roll, stream position 0."""
        self._position = 0  # samples seen so far
        self._pre_roll: deque[tuple[np.ndarray, float]] = deque(
            maxlen=self._pre_roll_frames + MAX_START_FRAMES
        )
        self._run = 0  # consecutive start-worthy frames while silent
        self._open: _Open | None = None

    @property
    def in_speech(self) -> bool:
        """True while an utterance is open."""
        return self._open is not None

    @property
    def position(self) -> int:
        """Samples pushed so far (the stream position of the next frame)."""
        return self._position

    def push(
        self,
        frame: np.ndarray,
        probability: float,
        start_threshold: float | None = None,
        start_frames: int | None = None,
    ) -> list[EndpointEvent]:
        """Take the next frame of the stream.

        Parameters
        ----------
        frame:
            512 float32 samples (32 ms at 16 kHz).
        probability:
            Its speech probability, 0..1.
        start_threshold, start_frames:
            Stricter start rule for this frame (the echo guard raises both while the
            assistant is speaking); default: the config's.

        Returns
        -------
        The events this frame caused, usually none: :class:`SpeechStarted`,
        :class:`SpeechDropped`, :class:`Utterance`.
        """
        c = self.config
        frame = np.asarray(frame, dtype=np.float32).reshape(-1)
        now = self._clock()
        position = self._position
        self._position += frame.size
        events: list[EndpointEvent] = []

        if self._open is None:
            threshold = c.threshold if start_threshold is None else start_threshold
            needed = c.start_frames if start_frames is None else start_frames
            needed = min(max(1, needed), MAX_START_FRAMES)
            self._run = self._run + 1 if probability >= threshold else 0
            self._pre_roll.append((frame, probability))
            if self._run >= needed:
                events.append(self._start(position + frame.size, needed, now))
            return events

        # An utterance is open: speech goes on while frames stay above the lower threshold.
        u = self._open
        u.frames.append(frame)
        u.probabilities.append(probability)
        if probability >= c.threshold - c.hysteresis:
            u.speech_frames += 1
            u.last_speech_index = len(u.frames) - 1
            u.speech_end_time = now
            u.silence_run = 0
        else:
            u.silence_run += 1
        if u.silence_run >= self._silence_frames:
            events.append(self._close(now, cut=False))
        elif len(u.frames) >= self._max_frames:
            events.append(self._close(now, cut=True))
        elif self._pause_frames and u.silence_run == self._pause_frames:
            if u.speech_frames >= self._min_speech_frames:
                events.append(self._paused(now))
        return events

    def flush(self) -> list[EndpointEvent]:
        """End of stream: close an open utterance as if its silence window had passed.

        Returns
        -------
        ``[Utterance]`` or ``[SpeechDropped]`` when one was open, else ``[]``.
        """
        if self._open is None:
            return []
        return [self._close(self._clock(), cut=False)]

    def still_paused(self, paused: SpeechPaused | None) -> bool:
        """True while the open utterance is the one ``paused`` announced, with no speech since."""
        u = self._open
        return (
            paused is not None
            and u is not None
            and u.start_sample == paused.start_sample
            and u.speech_frames == paused.speech_frames
            and u.silence_run >= self._pause_frames
        )

    def may_end_early(self, paused: SpeechPaused | None) -> bool:
        """True when :meth:`still_paused` holds and the silence has lasted ``early_end_ms``."""
        u = self._open
        return (
            self.still_paused(paused)
            and u is not None
            and (u.silence_run >= self._early_end_frames)
        )

    def end_now(self, paused: SpeechPaused) -> list[EndpointEvent]:
        """End the open utterance before its silence window is over (a turn-end decision).

        Only while :meth:`may_end_early` holds; the :class:`Utterance` handed back then
        holds the pause's audio (``same_speech(paused)`` is true).

        Returns
        -------
        ``[Utterance]``, or ``[]`` when speech resumed or the silence is still shorter than
        ``early_end_ms`` (nothing is ended then).
        """
        if not self.may_end_early(paused):
            return []
        return [self._close(self._clock(), cut=False)]

    def _start(self, end_position: int, speech_frames: int, now: float) -> SpeechStarted:
        # The last `speech_frames` frames of the pre-roll ring are the speech that started it.
        kept = list(self._pre_roll)[-(self._pre_roll_frames + speech_frames) :]
        start_sample = end_position - len(kept) * FRAME_SAMPLES
        self._open = _Open(
            start_sample=start_sample,
            frames=[f for f, _ in kept],
            probabilities=[p for _, p in kept],
            speech_frames=speech_frames,
            last_speech_index=len(kept) - 1,
            speech_end_time=now,
        )
        self._pre_roll.clear()
        self._run = 0
        logger.debug("speech started at sample %d", start_sample)
        return SpeechStarted(start_sample=start_sample, time=now)

    def _speech_end(self, u: _Open) -> int:
        """Frames of ``u`` an uncut utterance keeps: its speech and the post-roll."""
        return min(len(u.frames), u.last_speech_index + 1 + self._post_roll_frames)

    def _paused(self, now: float) -> SpeechPaused:
        u = self._open
        assert u is not None
        return SpeechPaused(
            audio=np.concatenate(u.frames[: self._speech_end(u)]),
            start_sample=u.start_sample,
            speech_frames=u.speech_frames,
            time=now,
        )

    def _close(self, now: float, cut: bool) -> SpeechDropped | Utterance:
        u = self._open
        assert u is not None
        self._open = None
        speech_ms = u.speech_frames * FRAME_MS
        if u.speech_frames < self._min_speech_frames:
            logger.debug(
                "dropped %.0f ms of speech (< %.0f ms)", speech_ms, self.config.min_speech_ms
            )
            return SpeechDropped(speech_ms=speech_ms, start_sample=u.start_sample)
        end = len(u.frames) if cut else self._speech_end(u)
        utterance = Utterance(
            audio=np.concatenate(u.frames[:end]),
            start_sample=u.start_sample,
            probabilities=np.asarray(u.probabilities[:end], dtype=np.float32),
            speech_frames=u.speech_frames,
            cut=cut,
            speech_end_time=u.speech_end_time,
            end_time=now,
        )
        logger.debug(
            "utterance of %.2f s (%.2f s speech%s)",
            utterance.seconds,
            utterance.speech_seconds,
            ", cut at the maximum" if cut else "",
        )
        return utterance


class PushToTalk:
    """Push-to-talk: an utterance is everything between :meth:`start` and :meth:`stop`.

    :meth:`start` and :meth:`stop` may be called from another thread (the CLI calls them
    when Enter is pressed); the frames are still pushed by the listening loop, which gets
    the events. A short pre-roll before :meth:`start` is kept (people start talking as
    they press), and ``max_utterance_s`` still cuts a forgotten recording.

    Parameters
    ----------
    config:
        Only ``pre_roll_ms``, ``min_speech_ms`` (the shortest recording kept, in ms of
        audio) and ``max_utterance_s`` are used.
    clock:
        Returns the current time in seconds.
    """

    def __init__(self, config: EndpointConfig | None = None, clock=time.monotonic):
        self.config = config or EndpointConfig()
        self._clock = clock
        self._pre_roll_frames = frames_for(self.config.pre_roll_ms)
        self._min_frames = frames_for(self.config.min_speech_ms)
        self._max_frames = max(1, int(self.config.max_utterance_s * 1000 // FRAME_MS))
        self._lock = threading.Lock()
        self._want: bool = False  # what the last start()/stop() asked for
        self.reset()

    def reset(self) -> None:
        """Forget everything: not recording, stream position 0."""
        self._position = 0
        self._pre_roll: deque[tuple[np.ndarray, float]] = deque(maxlen=self._pre_roll_frames)
        self._open: _Open | None = None
        with self._lock:
            self._want = False

    def start(self) -> None:
        """Begin an utterance at the next frame."""
        with self._lock:
            self._want = True

    def stop(self) -> None:
        """End the utterance at the next frame."""
        with self._lock:
            self._want = False

    def toggle(self) -> bool:
        """Start when stopped, stop when recording; returns True when now recording."""
        with self._lock:
            self._want = not self._want
            return self._want

    @property
    def in_speech(self) -> bool:
        """True while recording."""
        return self._open is not None

    @property
    def position(self) -> int:
        """Samples pushed so far."""
        return self._position

    def push(self, frame: np.ndarray, probability: float = 1.0, **_ignored) -> list[EndpointEvent]:
        """Take the next frame; see :meth:`Endpointer.push` (the probability is only stored)."""
        frame = np.asarray(frame, dtype=np.float32).reshape(-1)
        now = self._clock()
        position = self._position
        self._position += frame.size
        with self._lock:
            want = self._want
        events: list[EndpointEvent] = []
        if self._open is None and want:
            kept = list(self._pre_roll)
            self._open = _Open(
                start_sample=position - len(kept) * FRAME_SAMPLES,
                frames=[f for f, _ in kept],
                probabilities=[p for _, p in kept],
            )
            self._pre_roll.clear()
            events.append(SpeechStarted(start_sample=self._open.start_sample, time=now))
        if self._open is None:
            self._pre_roll.append((frame, probability))
            return events
        u = self._open
        if want:
            u.frames.append(frame)
            u.probabilities.append(probability)
            u.speech_frames += 1
            u.speech_end_time = now
            if len(u.frames) >= self._max_frames:
                events.append(self._close(now, cut=True))
                with self._lock:
                    self._want = False
            return events
        self._pre_roll.append((frame, probability))
        events.append(self._close(now, cut=False))
        return events

    def flush(self) -> list[EndpointEvent]:
        """End of stream: hand back a recording in progress."""
        if self._open is None:
            return []
        return [self._close(self._clock(), cut=False)]

    def _close(self, now: float, cut: bool) -> SpeechDropped | Utterance:
        u = self._open
        assert u is not None
        self._open = None
        if len(u.frames) < self._min_frames or not u.frames:
            return SpeechDropped(speech_ms=len(u.frames) * FRAME_MS, start_sample=u.start_sample)
        return Utterance(
            audio=np.concatenate(u.frames),
            start_sample=u.start_sample,
            probabilities=np.asarray(u.probabilities, dtype=np.float32),
            speech_frames=u.speech_frames,
            cut=cut,
            speech_end_time=u.speech_end_time,
            end_time=now,
        )
