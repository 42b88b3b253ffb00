"""Audio in and out: decode what a user gives us to 16 kHz mono float32, write WAV back.

Accepted sources (see :func:`load_audio`):

- a path to a file, or the raw bytes of one (an upload, an HTTP body). Its first bytes must
  be one of :data:`AUDIO_FORMATS` (WAV, FLAC, OGG, MP3, WebM, M4A/MP4, AIFF); anything else
  is refused before any decoder sees it. WAV/FLAC/OGG/MP3 are read by soundfile from memory;
  the rest go to the ``ffmpeg`` command line with that one demuxer forced and only the
  ``pipe`` protocol allowed (M4A: ``file``, for one private temporary copy), so a playlist
  or concat script cannot make ffmpeg open any other file or URL;
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
SNIFF_BYTES = 12  # the longest signature below ends at byte 12

# Accepted containers: name -> (the ffmpeg demuxer forced for it, whether soundfile reads it).
AUDIO_FORMATS: dict[str, tuple[str, bool]] = {
    "wav": ("wav", True),
    "flac": ("flac", True),
    "ogg": ("ogg", True),
    "mp3": ("mp3", True),
    "aiff": ("aiff", True),
    "webm": ("matroska", False),
    "m4a": ("mov", False),
}
ACCEPTED = "WAV, FLAC, OGG, MP3, WebM or M4A"


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


class UnknownAudioFormat(ValueError):
    """The first bytes match no accepted audio container (kept as the refusal's cause)."""


def sniff_format(head: bytes) -> str | None:
    """The :data:`AUDIO_FORMATS` name whose signature ``head`` starts with, else None.

    Parameters
    ----------
    head:
        The first bytes of the file (:data:`SNIFF_BYTES` are enough).
    """
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"  # an ID3 tag, or an MPEG audio frame sync (11 bits set)
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"  # EBML: WebM and Matroska
    if head[4:8] == b"ftyp":
        return "m4a"  # ISO base media: M4A, MP4, 3GP
    return None


def _refuse_unknown(head: bytes, label: str) -> VoiceError:
    error = VoiceError(
        "audio-invalid", f"Could not read {label}: it is not a {ACCEPTED} file. {TRY_AGAIN}"
    )
    error.__cause__ = UnknownAudioFormat(f"first bytes {head[:SNIFF_BYTES].hex(' ')}")
    return error


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
    """A local file named by the person running the assistant (the CLI, the voice loop)."""
    if not path.is_file():
        raise VoiceError("audio-invalid", f"Could not read {path.name}: no such file. {TRY_AGAIN}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise VoiceError("audio-invalid", f"Could not read {path.name}. {TRY_AGAIN}") from e
    return _decode(data, path.name, sample_rate, max_seconds)


def _from_bytes(data: bytes, sample_rate: int, max_seconds: float | None) -> np.ndarray:
    if not data:
        raise VoiceError("audio-invalid", f"The upload is empty. {TRY_AGAIN}")
    return _decode(data, "the upload", sample_rate, max_seconds)


def _decode(data: bytes, label: str, sample_rate: int, max_seconds: float | None) -> np.ndarray:
    """Decode file bytes of an accepted format, and nothing but those bytes."""
    # 1. Only known containers reach a decoder (an ffconcat or m3u8 text never does).
    kind = sniff_format(data[:SNIFF_BYTES])
    if kind is None:
        raise _refuse_unknown(data, label)
    demuxer, soundfile_reads = AUDIO_FORMATS[kind]
    # 2. soundfile reads from memory: it opens no other file.
    if soundfile_reads:
        try:
            info = sf.info(io.BytesIO(data))
            if max_seconds is not None and info.duration > max_seconds:
                raise VoiceError(
                    "audio-too-long",
                    f"{label} lasts {info.duration:.0f} s; the limit (asr.max_seconds) is "
                    f"{max_seconds:.0f} s. Keep a request short, or split it into shorter ones.",
                )
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
            return resample(_to_mono_float(samples, label), rate, sample_rate)
        except (sf.LibsndfileError, RuntimeError, TypeError) as e:
            logger.debug("soundfile cannot read %s as %s (%s); trying ffmpeg", label, kind, e)
            return _ffmpeg_decode(data, kind, demuxer, label, sample_rate, max_seconds, cause=e)
    return _ffmpeg_decode(data, kind, demuxer, label, sample_rate, max_seconds, cause=None)


def _ffmpeg_decode(
    data: bytes,
    kind: str,
    demuxer: str,
    label: str,
    sample_rate: int,
    max_seconds: float | None,
    cause: Exception | None,
) -> np.ndarray:
    """Decode ``data`` with ffmpeg's ``demuxer`` only, to mono float32 at ``sample_rate``.

    The bytes go in on stdin with only the pipe protocol allowed. M4A keeps its index at the
    end, which a pipe cannot seek to: it is copied to a private temporary file, read with only
    the file protocol and with external data references (``drefs``) off.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise VoiceError(
            "audio-invalid",
            f"Could not read {label}: reading {kind.upper()} needs ffmpeg, which is not "
            f"installed. {TRY_AGAIN}",
        ) from cause
    with tempfile.TemporaryDirectory(prefix="audio-") as folder:
        # fmt: off
        cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "0"]
        if demuxer == "mov":
            source = Path(folder) / "upload"
            source.write_bytes(data)
            cmd += ["-protocol_whitelist", "file", "-f", demuxer, "-enable_drefs", "0",
                    "-i", f"file:{source}"]
            stdin = b""
        else:
            cmd += ["-protocol_whitelist", "pipe", "-f", demuxer, "-i", "pipe:0"]
            stdin = data
        cmd += ["-vn", "-f", "f32le", "-ac", "1", "-acodec", "pcm_f32le", "-ar", str(sample_rate)]
        # fmt: on
        if max_seconds is not None:
            cmd += ["-t", str(max_seconds + 1.0)]  # decode just enough to know it is too long
        cmd.append("pipe:1")
        try:
            out = subprocess.run(
                cmd, input=stdin, capture_output=True, check=True, timeout=FFMPEG_TIMEOUT_S
            )
        except subprocess.CalledProcessError as e:
            # ffmpeg's own words name files and paths: they go to the log, not to the user.
            logger.info(
                "ffmpeg could not decode %s as %s: %s",
                label,
                kind,
                e.stderr.decode(errors="replace").strip()[-500:],
            )
            raise VoiceError(
                "audio-invalid",
                f"Could not read {label}: it starts like a {kind.upper()} file but its audio "
                f"could not be decoded. {TRY_AGAIN}",
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
