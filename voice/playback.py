"""Speech out: a :class:`Player` that plays float32 chunks one after another and stops at once.

The player keeps a queue of chunks; a *sink* pulls fixed-size blocks from it at the pace of
the sound card:

- :class:`SoundDeviceSink`: ``sounddevice.OutputStream`` in callback mode (PortAudio pulls);
- :class:`FakeSink`: a thread that pulls in real time (or faster), records what it "played"
  and can hand it to a :class:`voice.microphone.FakeSource` as an echo;
- :class:`NullSink`: no sound card: the audio is paced and thrown away.

:meth:`Player.stop` empties the queue under the lock the sink pulls with, so the next block
is silence: playback stops within one block (20 ms) plus the device's own output latency.
Every chunk is reported (:class:`PlayedChunk`): how much of it was heard, and whether it was
stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from voice.audio import load_audio
from voice.errors import VoiceError

logger = logging.getLogger(__name__)

DEFAULT_RATE = 22050  # Hz, the packaged Piper voice's rate; other rates are resampled
BLOCK_S = 0.02  # s of audio per pull (20 ms): the longest a stop() waits for
TAIL_S = 0.3  # s after the last sample during which the room still echoes it
HISTORY_MAX = 1000  # chunks remembered in Player.history (a long session must not grow)


@dataclass(eq=False)
class PlayedChunk:
    """One chunk handed to the player, and what became of it.

    Parameters
    ----------
    label:
        What it is (e.g. ``"ack"``, ``"reply 1/2"``), for logs and tests.
    samples:
        Its length in samples at the player's rate.
    sample_rate:
        The player's rate, Hz.
    queued_at:
        ``time.monotonic()`` when it was handed over.
    started_at:
        ``time.monotonic()`` when its first block went to the sink, or None.
    played:
        Samples that went to the sink.
    stopped:
        True when :meth:`Player.stop` cut it off (or dropped it before it started).
    """

    label: str
    samples: int
    sample_rate: int
    queued_at: float
    started_at: float | None = None
    played: int = 0
    stopped: bool = False

    @property
    def seconds(self) -> float:
        """Its full length, s."""
        return self.samples / self.sample_rate

    @property
    def played_seconds(self) -> float:
        """How much of it was played, s."""
        return self.played / self.sample_rate

    @property
    def done(self) -> bool:
        """Played to the end, or stopped."""
        return self.stopped or self.played >= self.samples


Pull = Callable[[int], tuple[np.ndarray, int]]  # n -> (n samples, how many were queued audio)


class Sink(Protocol):
    """Where the player's blocks go. ``start`` makes the sink call ``pull`` for each block."""

    def start(self, pull: Pull, sample_rate: int) -> None: ...

    def close(self) -> None: ...

    @property
    def latency_s(self) -> float:
        """Seconds between a pull and the sound leaving the speaker."""
        ...


class Player:
    """Plays chunks back to back; :meth:`stop` silences it at once.

    Parameters
    ----------
    sink:
        Where audio goes (default: :class:`SoundDeviceSink` on the default output).
    sample_rate:
        Output rate, Hz; chunks at other rates are resampled.
    tail_s:
        Seconds after the last sample during which :meth:`is_playing` stays true (room echo
        and the device's buffer), so the echo guard stays up a little longer.
    clock:
        Returns the current time in seconds.
    """

    def __init__(
        self,
        sink: Sink | None = None,
        sample_rate: int = DEFAULT_RATE,
        tail_s: float = TAIL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sink = sink if sink is not None else SoundDeviceSink()
        self.sample_rate = int(sample_rate)
        self.tail_s = tail_s
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: deque[tuple[PlayedChunk, np.ndarray]] = deque()
        self._idle = threading.Event()
        self._idle.set()
        self._last_audio_at = -float("inf")
        self.history: deque[PlayedChunk] = deque(maxlen=HISTORY_MAX)
        self.stops = 0  # stop() calls that cut something off
        self.last_stop_at: float | None = None  # time.monotonic() of the last such stop
        self._started = False

    def open(self) -> None:
        """Start the sink now (otherwise the first :meth:`play` does)."""
        if not self._started:
            self.sink.start(self._pull, self.sample_rate)
            self._started = True

    def play(self, samples: np.ndarray, sample_rate: int, label: str = "") -> PlayedChunk:
        """Queue audio after what is already playing; returns at once.

        Parameters
        ----------
        samples:
            float32 mono samples in -1..1.
        sample_rate:
            Their rate, Hz.
        label:
            A name for reports.

        Returns
        -------
        The chunk's :class:`PlayedChunk`, updated as it plays.
        """
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if sample_rate != self.sample_rate and samples.size:
            samples = load_audio((int(sample_rate), samples), self.sample_rate, max_seconds=None)
        chunk = PlayedChunk(label, samples.size, self.sample_rate, self._clock())
        self.open()
        with self._lock:
            self.history.append(chunk)
            if samples.size:
                self._queue.append((chunk, samples))
                self._idle.clear()
        return chunk

    def stop(self) -> list[PlayedChunk]:
        """Stop at once: drop what is playing and everything queued.

        Returns
        -------
        The chunks that were cut off or dropped (empty when nothing was playing).
        """
        with self._lock:
            cut = [chunk for chunk, _ in self._queue]
            for chunk in cut:
                chunk.stopped = True
            self._queue.clear()
            self._idle.set()
            if cut:
                self.stops += 1
                self.last_stop_at = self._clock()
        if cut:
            logger.info(
                "playback stopped: %s",
                ", ".join(f"{c.label} at {c.played_seconds:.2f}/{c.seconds:.2f} s" for c in cut),
            )
        return cut

    def is_playing(self, with_tail: bool = True) -> bool:
        """True while audio is queued, or (``with_tail``) within ``tail_s`` of the last sample."""
        with self._lock:
            if self._queue:
                return True
            last = self._last_audio_at
        return with_tail and self._clock() < last + self.sink.latency_s + self.tail_s

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything queued has been played (or stopped); False on timeout."""
        return self._idle.wait(timeout)

    @property
    def played_seconds(self) -> float:
        """Seconds of audio played so far, all chunks together."""
        with self._lock:
            return sum(c.played for c in self.history) / self.sample_rate

    def close(self) -> None:
        """Stop and release the sink."""
        self.stop()
        if self._started:
            self.sink.close()
            self._started = False

    def _pull(self, n: int) -> tuple[np.ndarray, int]:
        """The next ``n`` samples (silence where nothing is queued); called by the sink.

        Returns
        -------
        The block, and how many of its samples (from the start) were queued audio.
        """
        out = np.zeros(n, dtype=np.float32)
        filled = 0
        now = self._clock()
        with self._lock:
            while filled < n and self._queue:
                chunk, samples = self._queue[0]
                if chunk.started_at is None:
                    chunk.started_at = now
                take = min(n - filled, samples.size - chunk.played)
                out[filled : filled + take] = samples[chunk.played : chunk.played + take]
                chunk.played += take
                filled += take
                if chunk.played >= samples.size:
                    self._queue.popleft()
            if filled:
                self._last_audio_at = now + filled / self.sample_rate
            if not self._queue:
                self._idle.set()
        return out, filled


# --- sinks ----------------------------------------------------------------------------------


class SoundDeviceSink:
    """The sound card, through ``sounddevice.OutputStream`` in callback mode.

    Parameters
    ----------
    device:
        Output device index, part of its name, or None for the default.
    sd:
        The sounddevice module (tests pass a stand-in).
    """

    def __init__(self, device: int | str | None = None, sd: Any = None):
        from voice.microphone import _sounddevice, find_device  # noqa: PLC0415

        self._sd = sd or _sounddevice()
        self.device = find_device(device, "output", self._sd)
        self._stream = None
        self._latency = BLOCK_S

    @property
    def latency_s(self) -> float:
        """The stream's output latency as PortAudio reports it, s."""
        return self._latency

    def start(self, pull: Pull, sample_rate: int) -> None:
        """Open the output stream; PortAudio's thread then pulls blocks."""

        def callback(outdata, frames, time_info, status) -> None:  # PortAudio's thread
            outdata[:, 0] = pull(frames)[0]

        try:
            self._stream = self._sd.OutputStream(
                device=self.device["index"],
                samplerate=sample_rate,
                channels=1,
                dtype="float32",
                blocksize=int(BLOCK_S * sample_rate),
                latency="low",
                callback=callback,
            )
            self._stream.start()
        except Exception as e:
            self._stream = None
            raise VoiceError(
                "audio-device-missing",
                f"Could not open the speaker {self.device['name']!r} at {sample_rate} Hz: {e}",
            ) from e
        self._latency = float(getattr(self._stream, "latency", BLOCK_S) or BLOCK_S)
        logger.info(
            "Speaking on %s (%d Hz, %.0f ms latency)",
            self.device["name"],
            sample_rate,
            1000 * self._latency,
        )

    def close(self) -> None:
        """Stop and close the stream."""
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None


class FakeSink:
    """A pretend speaker: pulls blocks on a thread at the pace of real playback.

    Parameters
    ----------
    speed:
        Pace multiplier (2.0 plays twice as fast as real time).
    echo:
        Called with each played block resampled to 16 kHz and scaled by ``echo_gain``
        (e.g. ``FakeSource.add_echo``), to simulate the speaker reaching the microphone.
    echo_gain:
        Linear gain of that echo (0.1 is -20 dB).
    record:
        Keep the played blocks in :attr:`blocks`.
    """

    latency_s = 0.0

    def __init__(
        self,
        speed: float = 1.0,
        echo: Callable[[np.ndarray], None] | None = None,
        echo_gain: float = 0.1,
        record: bool = True,
    ):
        self.speed = speed
        self.echo, self.echo_gain = echo, echo_gain
        self.record = record
        self.blocks: list[np.ndarray] = []  # the audio played, block by block
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def received(self) -> np.ndarray:
        """Everything it played (the silence between chunks left out)."""
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)

    def start(self, pull: Pull, sample_rate: int) -> None:
        """Start the pulling thread."""
        self.sample_rate = sample_rate
        block = int(BLOCK_S * sample_rate)

        def run() -> None:
            start, n = time.monotonic(), 0
            while not self._closed.is_set():
                samples, filled = pull(block)
                if filled:
                    samples = samples[:filled]
                    if self.record:
                        self.blocks.append(samples)
                    if self.echo is not None:
                        self.echo(
                            self.echo_gain
                            * load_audio((sample_rate, samples), 16000, max_seconds=None)
                        )
                n += 1
                delay = start + n * BLOCK_S / self.speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

        self._thread = threading.Thread(target=run, name="fake-speaker", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)


class NullSink(FakeSink):
    """No speaker: audio is paced as if played, and forgotten."""

    def __init__(self):
        super().__init__(speed=1.0, record=False)
