"""Synthesized speech as a value: float32 mono samples plus their rate, and WAV conversion."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INT16_FULL_SCALE = 32768.0  # int16 spans -32768..32767; dividing by 32768 maps it into [-1, 1)
INT16_MAX = 32767
PCM16_WIDTH_BYTES = 2


@dataclass(frozen=True, eq=False)
class SpeechAudio:
    """A piece of synthesized speech.

    Parameters
    ----------
    samples:
        1-D float32 samples in [-1, 1] (mono).
    sample_rate:
        Samples per second, in Hertz.
    """

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or self.samples.dtype != np.float32:
            raise ValueError(
                f"SpeechAudio wants 1-D float32 samples, got {self.samples.dtype} "
                f"with shape {self.samples.shape}; use SpeechAudio.from_float()"
            )
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    @classmethod
    def from_float(cls, samples: np.ndarray | Sequence[float], sample_rate: int) -> SpeechAudio:
        """Build from any float samples: flattened to mono, cast to float32, clipped to [-1, 1].

        Parameters
        ----------
        samples:
            Float samples (array, list or tensor converted by numpy).
        sample_rate:
            Samples per second, in Hertz.

        Returns
        -------
        SpeechAudio
        """
        array = np.asarray(samples, dtype=np.float32).reshape(-1)
        return cls(np.clip(array, -1.0, 1.0), int(sample_rate))

    @classmethod
    def from_int16(cls, samples: np.ndarray, sample_rate: int) -> SpeechAudio:
        """Build from 16-bit PCM samples, scaled by 1/32768 so full scale maps into [-1, 1).

        Parameters
        ----------
        samples:
            int16 samples (mono).
        sample_rate:
            Samples per second, in Hertz.

        Returns
        -------
        SpeechAudio
        """
        array = np.asarray(samples, dtype=np.int16).reshape(-1)
        return cls(array.astype(np.float32) / INT16_FULL_SCALE, int(sample_rate))

    @classmethod
    def silence(cls, seconds: float, sample_rate: int) -> SpeechAudio:
        """Return ``seconds`` of digital silence at ``sample_rate`` Hertz."""
        return cls(np.zeros(round(seconds * sample_rate), dtype=np.float32), int(sample_rate))

    @classmethod
    def concatenate(cls, chunks: Sequence[SpeechAudio]) -> SpeechAudio:
        """Join chunks of one sample rate end to end.

        Parameters
        ----------
        chunks:
            At least one chunk; all must share a sample rate.

        Returns
        -------
        SpeechAudio
        """
        if not chunks:
            raise ValueError("nothing to concatenate")
        rates = {chunk.sample_rate for chunk in chunks}
        if len(rates) != 1:
            raise ValueError(f"chunks have different sample rates: {sorted(rates)}")
        return cls(np.concatenate([chunk.samples for chunk in chunks]), chunks[0].sample_rate)

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return len(self.samples) / self.sample_rate

    @property
    def num_samples(self) -> int:
        """Number of samples."""
        return len(self.samples)

    def to_int16(self) -> np.ndarray:
        """Return the samples as int16 PCM (scaled by 32767 and rounded, so ±1.0 stays in range)."""
        return np.round(np.clip(self.samples, -1.0, 1.0) * INT16_MAX).astype(np.int16)

    def to_wav_bytes(self) -> bytes:
        """Return a 16-bit PCM mono WAV file as bytes."""
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(PCM16_WIDTH_BYTES)
            wav.setframerate(self.sample_rate)
            wav.writeframes(self.to_int16().tobytes())
        return buffer.getvalue()

    def write_wav(self, path: str | Path) -> Path:
        """Write a 16-bit PCM mono WAV file.

        Parameters
        ----------
        path:
            Where to write; the parent folder must exist.

        Returns
        -------
        Path
            The path written.
        """
        target = Path(path)
        target.write_bytes(self.to_wav_bytes())
        return target


def decode_wav_pcm16(data: bytes) -> SpeechAudio:
    """Decode a 16-bit PCM WAV, also one written to a pipe whose header sizes are placeholders.

    ``espeak-ng --stdout`` cannot seek back to fill in the RIFF and data sizes,
    so it writes 0x7FFFFFFF-style values; the data chunk is then read to the end
    of the bytes. Stereo input is mixed down to mono.

    Parameters
    ----------
    data:
        The WAV file's bytes.

    Returns
    -------
    SpeechAudio

    Raises
    ------
    ValueError
        If the bytes are not a 16-bit PCM WAV.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    offset = 12
    channels = sample_rate = bits = None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (chunk_size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        body = offset + 8
        if chunk_id == b"fmt ":
            audio_format, channels, sample_rate, _, _, bits = struct.unpack(
                "<HHIIHH", data[body : body + 16]
            )
            if audio_format != 1 or bits != 16:
                raise ValueError(f"want 16-bit PCM, got format {audio_format} with {bits} bits")
        elif chunk_id == b"data":
            if channels is None or sample_rate is None:
                raise ValueError("WAV data chunk comes before its fmt chunk")
            end = min(body + chunk_size, len(data))
            end -= (end - body) % (PCM16_WIDTH_BYTES * channels)
            pcm = np.frombuffer(data[body:end], dtype="<i2").reshape(-1, channels)
            mono = pcm.astype(np.float32).mean(axis=1) / INT16_FULL_SCALE
            return SpeechAudio(mono.astype(np.float32), sample_rate)
        offset = body + chunk_size + (chunk_size & 1)
    raise ValueError("WAV has no data chunk")
