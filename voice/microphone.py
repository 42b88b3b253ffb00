"""Where the voice loop's audio comes from: 512-sample float32 frames at 16 kHz, one after another.

A :class:`FrameSource` is any iterator of such frames with a ``close()``:

- :class:`MicrophoneSource` captures a sound card input with ``sounddevice.InputStream``
  (PortAudio); the device is chosen by index or by a part of its name;
- :class:`FakeSource` plays arrays, WAV files and stretches of silence as if they came from
  a microphone, in real time or as fast as possible, and takes more audio while it runs
  (tests, demos, and the echo of a fake speaker).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from voice.audio import AudioSource, load_audio
from voice.errors import VoiceError
from voice.vad import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE

logger = logging.getLogger(__name__)

MAX_QUEUE_S = 30.0  # s of captured audio held while the loop is busy; older audio is dropped
STALL_TIMEOUT_S = 5.0  # s without any audio from the device before it counts as failed
QUEUE_POLL_S = 0.5  # s between checks of the stop flag while waiting for audio
OVERFLOW_LOG_INTERVAL_S = 5.0  # s between two "audio dropped" warnings


@runtime_checkable
class FrameSource(Protocol):
    """An iterator of float32 frames of ``FRAME_SAMPLES`` (512) samples at 16 kHz."""

    def __iter__(self) -> Iterator[np.ndarray]: ...

    def close(self) -> None:
        """Stop producing frames; a running iteration ends soon after."""
        ...


# --- choosing a device ---------------------------------------------------------------------


def _sounddevice():
    """Import sounddevice, turning a missing PortAudio library into a clear error."""
    try:
        import sounddevice  # noqa: PLC0415 (needs the PortAudio shared library)
    except (ImportError, OSError) as e:
        raise VoiceError(
            "audio-device-missing",
            "Audio input needs PortAudio: apt-get install libportaudio2 (and pip install "
            f"sounddevice). ({e})",
        ) from e
    return sounddevice


def list_devices(kind: str = "input", sd: Any = None) -> list[dict[str, Any]]:
    """The sound devices that can record (``kind="input"``) or play (``"output"``).

    Parameters
    ----------
    kind:
        ``"input"`` or ``"output"``.
    sd:
        The sounddevice module (tests pass a stand-in).

    Returns
    -------
    One dict per device: ``index``, ``name``, ``channels``, ``default_samplerate``.
    """
    sd = sd or _sounddevice()
    key = f"max_{kind}_channels"
    try:
        devices = list(sd.query_devices())
    except Exception as e:  # PortAudio could not enumerate (no sound system at all)
        logger.warning("Could not list audio devices: %s", e)
        return []
    return [
        {
            "index": int(d.get("index", i)),
            "name": str(d["name"]),
            "channels": int(d[key]),
            "default_samplerate": float(d.get("default_samplerate") or SAMPLE_RATE),
        }
        for i, d in enumerate(devices)
        if int(d.get(key, 0)) > 0
    ]


def describe_devices(devices: list[dict[str, Any]]) -> str:
    """``"0: USB Mic, 3: pulse"``, or a hint when there are none."""
    if not devices:
        return "none found (is a microphone connected, and can this user open it?)"
    return ", ".join(f"{d['index']}: {d['name']}" for d in devices)


def find_device(device: int | str | None, kind: str = "input", sd: Any = None) -> dict[str, Any]:
    """Pick a device by index, by a case-insensitive part of its name, or the default.

    Parameters
    ----------
    device:
        An index (``2`` or ``"2"``), part of a name (``"usb"``), or ``None`` for the
        system default.
    kind:
        ``"input"`` or ``"output"``.
    sd:
        The sounddevice module (tests pass a stand-in).

    Returns
    -------
    The device's entry from :func:`list_devices`.

    Raises
    ------
    VoiceError
        ``audio-device-missing``, naming the available devices, when none matches.
    """
    sd = sd or _sounddevice()
    devices = list_devices(kind, sd)
    setting = "voice.input_device" if kind == "input" else "voice.output_device"
    if device is None or (isinstance(device, str) and not device.strip()):
        default = _default_index(sd, kind)
        chosen = [d for d in devices if d["index"] == default] or devices[:1]
        what = f"There is no audio {kind} device to use by default."
    elif isinstance(device, int) or str(device).strip().isdigit():
        chosen = [d for d in devices if d["index"] == int(device)]
        what = f"There is no audio {kind} device number {int(device)}."
    else:
        wanted = str(device).strip().casefold()
        chosen = [d for d in devices if wanted in d["name"].casefold()]
        what = f"There is no audio {kind} device matching {str(device)!r}."
    if not chosen:
        raise VoiceError(
            "audio-device-missing",
            f"{what} Available {kind} devices: {describe_devices(devices)}. Choose one with "
            f"{setting} (an index or part of its name).",
        )
    return chosen[0]


def _default_index(sd: Any, kind: str) -> int:
    try:
        pair = sd.default.device
        index = pair[0 if kind == "input" else 1] if isinstance(pair, list | tuple) else pair
        return int(index) if index is not None else -1
    except Exception:  # no default set
        return -1


# --- frames from arrays -------------------------------------------------------------------


class _Rechunker:
    """Collects blocks of any size and hands out whole frames."""

    def __init__(self, frame_samples: int = FRAME_SAMPLES):
        self.frame_samples = frame_samples
        self._parts: deque[np.ndarray] = deque()
        self._size = 0

    def add(self, block: np.ndarray) -> None:
        if block.size:
            self._parts.append(block)
            self._size += block.size

    @property
    def size(self) -> int:
        return self._size

    def take(self, n: int) -> np.ndarray:
        """Up to ``n`` samples (fewer only when fewer are held)."""
        out = []
        while n > 0 and self._parts:
            part = self._parts[0]
            if part.size <= n:
                out.append(self._parts.popleft())
                n -= part.size
            else:
                out.append(part[:n])
                self._parts[0] = part[n:]
                n = 0
        taken = np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
        self._size -= taken.size
        return taken.astype(np.float32, copy=False)

    def frames(self) -> Iterator[np.ndarray]:
        while self._size >= self.frame_samples:
            yield self.take(self.frame_samples)


class _StreamResampler:
    """Resample a stream block by block (soxr's streaming resampler, else linear)."""

    def __init__(self, rate_in: float, rate_out: int = SAMPLE_RATE):
        self.rate_in, self.rate_out = rate_in, rate_out
        try:
            import soxr  # noqa: PLC0415

            self._soxr = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32")
        except ImportError:
            self._soxr = None
            self._phase = 0.0

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if self._soxr is not None:
            return self._soxr.resample_chunk(block)
        step = self.rate_in / self.rate_out
        positions = np.arange(self._phase, block.size, step)
        if positions.size:
            self._phase = positions[-1] + step - block.size
        else:
            self._phase -= block.size
        return np.interp(positions, np.arange(block.size), block).astype(np.float32)


# --- the microphone -----------------------------------------------------------------------


class MicrophoneSource:
    """Frames from a sound card input (``sounddevice.InputStream``), 16 kHz mono float32.

    The PortAudio callback only copies each block into a queue; the iterating thread cuts
    frames from it. If the device cannot record at 16 kHz, it records at its own rate and
    the audio is resampled. If the loop falls behind by more than ``max_queue_s``, the
    oldest audio is dropped (with a warning) so the loop hears the present.

    Parameters
    ----------
    device:
        Index, part of a name, or ``None`` for the default input (see :func:`find_device`).
    max_queue_s:
        Seconds of audio held while the loop is busy.
    sd:
        The sounddevice module (tests pass a stand-in).

    Raises
    ------
    VoiceError
        ``audio-device-missing`` (naming the available inputs) when the device does not
        exist or cannot be opened.
    """

    def __init__(
        self, device: int | str | None = None, max_queue_s: float = MAX_QUEUE_S, sd: Any = None
    ):
        self._sd = sd or _sounddevice()
        self.device = find_device(device, "input", self._sd)
        self.rate = self._pick_rate()
        blocks = max(1, int(max_queue_s * self.rate / FRAME_SAMPLES))
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=blocks)
        self._closed = threading.Event()
        self._stream = None
        self.dropped_blocks = 0  # blocks lost because the loop fell behind
        self.overflows = 0  # PortAudio input overflows (the device lost audio)
        self._last_warning = 0.0

    def _pick_rate(self) -> float:
        try:
            self._sd.check_input_settings(
                device=self.device["index"], samplerate=SAMPLE_RATE, channels=1, dtype="float32"
            )
            return float(SAMPLE_RATE)
        except Exception as e:
            native = self.device["default_samplerate"]
            logger.info(
                "%s cannot record at %d Hz (%s); recording at %.0f Hz and resampling",
                self.device["name"],
                SAMPLE_RATE,
                e,
                native,
            )
            return native

    def start(self) -> None:
        """Open and start the input stream (done by the first iteration if not before)."""
        if self._stream is not None:
            return
        try:
            self._stream = self._sd.InputStream(
                device=self.device["index"],
                samplerate=self.rate,
                channels=1,
                dtype="float32",
                blocksize=FRAME_SAMPLES if self.rate == SAMPLE_RATE else 0,
                callback=self._callback,
            )
            self._stream.start()
        except Exception as e:
            self._stream = None
            raise VoiceError(
                "audio-device-missing",
                f"Could not open the microphone {self.device['name']!r}: {e}. Available input "
                f"devices: {describe_devices(list_devices('input', self._sd))}.",
            ) from e
        logger.info("Listening on %s at %.0f Hz", self.device["name"], self.rate)

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread
        if status and status.input_overflow:
            self.overflows += 1
        block = np.array(indata[:, 0], dtype=np.float32)
        try:
            self._queue.put_nowait(block)
        except queue.Full:
            try:
                self._queue.get_nowait()  # drop the oldest: the loop should hear the present
            except queue.Empty:
                pass
            self._queue.put_nowait(block)
            self.dropped_blocks += 1
            now = time.monotonic()
            if now - self._last_warning > OVERFLOW_LOG_INTERVAL_S:
                self._last_warning = now
                logger.warning("The voice loop fell behind: dropped old microphone audio")

    def __iter__(self) -> Iterator[np.ndarray]:
        self.start()
        resample = _StreamResampler(self.rate) if self.rate != SAMPLE_RATE else None
        chunks = _Rechunker()
        last_audio = time.monotonic()
        while not self._closed.is_set():
            try:
                block = self._queue.get(timeout=QUEUE_POLL_S)
            except queue.Empty:
                if time.monotonic() - last_audio > STALL_TIMEOUT_S:
                    raise VoiceError(
                        "audio-device-failed",
                        f"The microphone {self.device['name']!r} stopped sending audio.",
                    ) from None
                continue
            last_audio = time.monotonic()
            chunks.add(resample(block) if resample else block)
            yield from chunks.frames()

    def close(self) -> None:
        """Stop and close the input stream."""
        self._closed.set()
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None


# --- a stand-in microphone ---------------------------------------------------------------


def silence(seconds: float) -> np.ndarray:
    """``seconds`` of digital silence at 16 kHz (float32 zeros)."""
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.float32)


class FakeSource:
    """A microphone stand-in: plays audio into the loop frame by frame.

    Parameters
    ----------
    segments:
        What to "hear", in order: numbers are seconds of silence; anything else is read
        with :func:`voice.audio.load_audio` (a WAV path, a ``(rate, samples)`` pair, a
        16 kHz float array).
    realtime:
        Hand out one frame per 32 ms of wall time, like a microphone (``speed`` times
        faster when ``speed > 1``); otherwise as fast as the loop takes them.
    then:
        When everything queued has been heard: ``"stop"`` ends the iteration;
        ``"silence"`` goes on with silence (paced in real time) until :meth:`close`,
        taking more audio from :meth:`push` meanwhile.
    noise_dbfs:
        Add white noise at this RMS level (dBFS) everywhere, like a real microphone's
        floor; ``None`` for none.
    speed:
        Pace multiplier for ``realtime``.
    seed:
        Seed of the noise.
    """

    def __init__(
        self,
        segments: Iterable[AudioSource | float] = (),
        realtime: bool = False,
        then: str = "stop",
        noise_dbfs: float | None = None,
        speed: float = 1.0,
        seed: int = 0,
    ):
        if then not in ("stop", "silence"):
            raise ValueError(f"then must be 'stop' or 'silence', not {then!r}")
        self.realtime, self.then, self.speed = realtime, then, speed
        self.noise = None if noise_dbfs is None else 10 ** (noise_dbfs / 20)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._pending = _Rechunker()
        self._echo = _Rechunker()
        self._closed = threading.Event()
        self.frames_out = 0  # frames handed out so far
        for segment in segments:
            self.push(segment)

    @property
    def position(self) -> int:
        """Samples handed out so far."""
        return self.frames_out * FRAME_SAMPLES

    @property
    def pending_seconds(self) -> float:
        """Seconds of queued audio not yet handed out."""
        with self._lock:
            return self._pending.size / SAMPLE_RATE

    def push(self, segment: AudioSource | float) -> None:
        """Queue more audio (or seconds of silence) after what is already queued."""
        if isinstance(segment, int | float) and not isinstance(segment, bool):
            samples = silence(float(segment))
        else:
            samples = load_audio(segment, SAMPLE_RATE, max_seconds=None)
        with self._lock:
            self._pending.add(np.asarray(samples, dtype=np.float32))

    def add_echo(self, samples: np.ndarray) -> None:
        """Mix 16 kHz samples into the next frames, on top of whatever they hold.

        A fake speaker calls this with what it plays (attenuated), to simulate the
        assistant's voice reaching the microphone.
        """
        with self._lock:
            self._echo.add(np.asarray(samples, dtype=np.float32))

    def close(self) -> None:
        """End the iteration at the next frame."""
        self._closed.set()

    def __iter__(self) -> Iterator[np.ndarray]:
        start = time.monotonic()
        frame_s = FRAME_SECONDS / self.speed
        while not self._closed.is_set():
            with self._lock:
                have = self._pending.size
                if have == 0 and self.then == "stop":
                    return
                frame = self._pending.take(FRAME_SAMPLES)
                if frame.size < FRAME_SAMPLES:  # the tail, or nothing: pad with silence
                    padding = np.zeros(FRAME_SAMPLES - frame.size, dtype=np.float32)
                    frame = np.concatenate([frame, padding])
                echo = self._echo.take(FRAME_SAMPLES)
            if echo.size:
                frame = frame.copy()
                frame[: echo.size] += echo
            if self.noise is not None:
                noise = self._rng.normal(0.0, self.noise, FRAME_SAMPLES).astype(np.float32)
                frame = frame + noise
            pace = self.realtime or have == 0  # silence is always paced, never spun
            if pace:
                delay = start + (self.frames_out + 1) * frame_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -1.0:  # far behind (a slow consumer): do not burst to catch up
                    start = time.monotonic() - (self.frames_out + 1) * frame_s
            self.frames_out += 1
            yield np.clip(frame, -1.0, 1.0).astype(np.float32, copy=False)
