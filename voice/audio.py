"""Audio in and out: decode what a user gives us to 16 kHz mono float32, write WAV back.

Accepted sources (see :func:`load_audio`):

- a path to a file: WAV/FLAC/OGG/MP3 through soundfile, anything else (M4A, WebM...)
  through the ``ffmpeg`` command line, as ``whisper.audio.load_audio`` does;
- the raw bytes of such a file (an upload, an HTTP body);
- a ``(sample_rate, samples)`` tuple, as gradio's ``Audio`` component gives it
  (int16 or float, mono or stereo);
- an :class:`AudioClip`, or a float32 array already at 16 kHz.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from common.files import atomic_write
from voice.errors import VoiceError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # Hz, what Whisper expects
MAX_SECONDS = 120.0  # s, longest request we accept by default
MAX_CHANNELS = 8  # more "channels" than this means the array is (channels, samples) or junk
FFMPEG_TIMEOUT_S = 60.0  # s, decoding an upload must not hang a turn
TRY_AGAIN = "Record again, or upload a WAV, FLAC or MP3 file."


@dataclass(frozen=True, eq=False)
class AudioClip:
    """Mono audio and its rate.

    Parameters
    ----------
    samples:
        float32 mono samples in -1..1.
    sample_rate:
        Samples per second (Hz).
    """

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return len(self.samples) / self.sample_rate


AudioSource = str | os.PathLike | bytes | bytearray | tuple | AudioClip | np.ndarray


def load_audio(
    source: AudioSource, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = MAX_SECONDS
) -> np.ndarray:
    """Decode ``source`` to float32 mono samples at ``sample_rate``.

    Parameters
    ----------
    source:
        A file path, the bytes of a file, a ``(rate, samples)`` tuple, an :class:`AudioClip`,
        or a 1-D float array that is already at ``sample_rate``.
    sample_rate:
        Output rate in Hz (16000 for Whisper).
    max_seconds:
        Longest audio accepted; ``None`` for no limit.

    Returns
    -------
    1-D float32 array in -1..1.

    Raises
    ------
    VoiceError
        ``audio-invalid`` when the source cannot be decoded or holds no sound samples,
        ``audio-too-long`` when it lasts more than ``max_seconds``.
    """
    if isinstance(source, AudioClip):
        samples = resample(
            _to_mono_float(source.samples, "the audio clip"), source.sample_rate, sample_rate
        )
        label = "the audio clip"
    elif isinstance(source, tuple):
        samples, label = _from_tuple(source, sample_rate), "the recording"
    elif isinstance(source, np.ndarray):
        samples, label = _to_mono_float(source, "the audio array"), "the audio array"
    elif isinstance(source, bytes | bytearray | memoryview):
        samples, label = _from_bytes(bytes(source), sample_rate, max_seconds), "the upload"
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        samples, label = _from_path(path, sample_rate, max_seconds), path.name
    else:
        raise VoiceError(
            "audio-invalid",
            f"Cannot read audio from a {type(source).__name__}; expected a file path, file "
            "bytes, or a (sample_rate, samples) pair.",
        )
    _check(samples, label, sample_rate, max_seconds)
    return samples


def _check(samples: np.ndarray, label: str, sample_rate: int, max_seconds: float | None) -> None:
    if samples.size == 0:
        raise VoiceError("audio-invalid", f"{label} contains no audio. {TRY_AGAIN}")
    if not np.isfinite(samples).all():
        raise VoiceError("audio-invalid", f"{label} contains invalid samples (NaN). {TRY_AGAIN}")
    seconds = samples.size / sample_rate
    if max_seconds is not None and seconds > max_seconds:
        raise VoiceError(
            "audio-too-long",
            f"{label} lasts {seconds:.0f} s; the limit (asr.max_seconds) is {max_seconds:.0f} s. "
            "Keep a request short, or split it into shorter ones.",
        )


def _from_tuple(source: tuple, sample_rate: int) -> np.ndarray:
    if len(source) != 2 or not isinstance(source[0], int | np.integer):
        raise VoiceError(
            "audio-invalid",
            "Audio given as a pair must be (sample_rate, samples), as gradio gives it. "
            f"{TRY_AGAIN}",
        )
    rate, data = int(source[0]), np.asarray(source[1])
    if rate <= 0:
        raise VoiceError("audio-invalid", f"The recording has sample rate {rate}. {TRY_AGAIN}")
    return resample(_to_mono_float(data, "the recording"), rate, sample_rate)


def _to_mono_float(data: Any, label: str) -> np.ndarray:
    """int or float, (samples,) or (samples, channels) -> float32 mono in -1..1."""
    data = np.asarray(data)
    if data.ndim not in (1, 2):
        raise VoiceError("audio-invalid", f"{label} has shape {data.shape}. {TRY_AGAIN}")
    # 1. Scale to -1..1 floats.
    if data.dtype.kind == "i":
        data = data / float(-np.iinfo(data.dtype).min)  # int16: / 32768
    elif data.dtype.kind == "u":
        half = float(np.iinfo(data.dtype).max + 1) / 2  # uint8: 128 is zero
        data = (data - half) / half
    elif data.dtype.kind != "f":
        raise VoiceError("audio-invalid", f"{label} has samples of type {data.dtype}. {TRY_AGAIN}")
    # 2. Mix channels down: gradio and soundfile give (samples, channels); accept
    #    (channels, samples) too.
    if data.ndim == 2:
        channel_axis = 1 if data.shape[1] <= MAX_CHANNELS else 0
        if data.shape[channel_axis] > MAX_CHANNELS:
            raise VoiceError("audio-invalid", f"{label} has shape {data.shape}. {TRY_AGAIN}")
        data = data.mean(axis=channel_axis) if data.size else data.ravel()
    return np.clip(data, -1.0, 1.0).astype(np.float32, copy=False)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample mono float32 from ``rate`` to ``target`` Hz (soxr if present, else linear)."""
    if rate == target or samples.size == 0:
        return samples
    try:
        import soxr
    except ImportError:
        n_out = int(round(samples.size * target / rate))
        t_out = np.arange(n_out) * (rate / target)
        return np.interp(t_out, np.arange(samples.size), samples).astype(np.float32)
    return soxr.resample(samples, rate, target, quality="HQ").astype(np.float32, copy=False)


def _from_path(path: Path, sample_rate: int, max_seconds: float | None) -> np.ndarray:
    if not path.is_file():
        raise VoiceError("audio-invalid", f"Could not read {path.name}: no such file. {TRY_AGAIN}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        logger.debug("soundfile cannot read %s (%s); trying ffmpeg", path, e)
        return _ffmpeg_decode(str(path), path.name, sample_rate, max_seconds, cause=e)
    if max_seconds is not None and info.duration > max_seconds:
        raise VoiceError(
            "audio-too-long",
            f"{path.name} lasts {info.duration:.0f} s; the limit (asr.max_seconds) is "
            f"{max_seconds:.0f} s. Keep a request short, or split it into shorter ones.",
        )
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        return _ffmpeg_decode(str(path), path.name, sample_rate, max_seconds, cause=e)
    return resample(_to_mono_float(data, path.name), rate, sample_rate)


def _from_bytes(data: bytes, sample_rate: int, max_seconds: float | None) -> np.ndarray:
    if not data:
        raise VoiceError("audio-invalid", f"The upload is empty. {TRY_AGAIN}")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        logger.debug("soundfile cannot read %d uploaded bytes (%s); trying ffmpeg", len(data), e)
        # ffmpeg needs a seekable file for some containers (M4A keeps its index at the end).
        with tempfile.NamedTemporaryFile(suffix=".audio") as tmp:
            tmp.write(data)
            tmp.flush()
            return _ffmpeg_decode(tmp.name, "the upload", sample_rate, max_seconds, cause=e)
    return resample(_to_mono_float(samples, "the upload"), rate, sample_rate)


def _ffmpeg_decode(
    file: str, label: str, sample_rate: int, max_seconds: float | None, cause: Exception
) -> np.ndarray:
    """Decode any format ffmpeg knows to mono float32 at ``sample_rate``."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise VoiceError(
            "audio-invalid",
            f"Could not read {label}: it is not a WAV/FLAC/OGG/MP3 file, and ffmpeg (needed "
            f"for other formats) is not installed. {TRY_AGAIN}",
        ) from cause
    # fmt: off
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "0",
           "-i", file, "-f", "f32le", "-ac", "1", "-acodec", "pcm_f32le",
           "-ar", str(sample_rate)]
    # fmt: on
    if max_seconds is not None:
        cmd += ["-t", str(max_seconds + 1.0)]  # decode just enough to know it is too long
    cmd.append("-")
    try:
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=FFMPEG_TIMEOUT_S)
    except subprocess.CalledProcessError as e:
        detail = e.stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"ffmpeg exit status {e.returncode}"
        raise VoiceError(
            "audio-invalid",
            f"Could not read {label}: not a WAV/FLAC/MP3 or other audio file ({reason}). "
            f"{TRY_AGAIN}",
        ) from e
    except subprocess.TimeoutExpired as e:
        raise VoiceError("audio-invalid", f"Decoding {label} took too long. {TRY_AGAIN}") from e
    return np.frombuffer(out.stdout, dtype=np.float32).copy()


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono or (samples, channels) audio as a 16-bit PCM WAV, atomically.

    Parameters
    ----------
    path:
        Destination; its folder must exist.
    samples:
        float samples in -1..1 (clipped) or int16.
    sample_rate:
        Samples per second (Hz).

    Returns
    -------
    The path written.
    """
    data = wav_bytes(samples, sample_rate)
    return atomic_write(path, lambda f: f.write(data))


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode audio as the bytes of a 16-bit PCM WAV file.

    Parameters
    ----------
    samples:
        float samples in -1..1 (clipped) or int16, mono or (samples, channels).
    sample_rate:
        Samples per second (Hz).

    Returns
    -------
    The WAV file content.
    """
    samples = np.asarray(samples)
    if samples.dtype.kind == "f":
        samples = np.clip(samples, -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def rms_dbfs(samples: np.ndarray) -> float:
    """Loudness as RMS in dB relative to full scale (a full-scale sine is about -3 dBFS).

    Parameters
    ----------
    samples:
        float samples in -1..1.

    Returns
    -------
    dBFS, ``-inf`` for empty or all-zero audio.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples))))
    return float(20.0 * np.log10(rms)) if rms > 0 else float("-inf")
