"""Encode synthesized speech in the formats OpenAI's /v1/audio/speech offers.

libsndfile (through soundfile) writes WAV, FLAC, MP3 and Ogg Opus; ``pcm`` is OpenAI's raw
form (16-bit little-endian mono at 24 kHz, no header). AAC has no encoder here and is
refused with a clear message.
"""

from __future__ import annotations

import io
import logging

import numpy as np

from frontends.api_errors import ApiError
from voice.audio import resample

logger = logging.getLogger(__name__)

PCM_RATE = 24000  # Hz: OpenAI's `pcm` is 24 kHz 16-bit mono, so clients assume it
OPUS_RATE = 48000  # Hz: Opus takes 8/12/16/24/48 kHz only

# format -> (soundfile format, subtype, media type)
CODECS: dict[str, tuple[str, str, str]] = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "opus": ("OGG", "OPUS", "audio/ogg"),
    "pcm": ("RAW", "PCM_16", "audio/pcm"),
}


def encode_speech(samples: np.ndarray, rate: int, fmt: str) -> tuple[bytes, str]:
    """Encode mono float32 speech.

    Parameters
    ----------
    samples: float32 mono in -1..1.
    rate: its sample rate (Hz).
    fmt: wav, flac, mp3, opus or pcm.

    Returns
    -------
    (file bytes, media type). Raises ``ApiError("input-invalid")`` for other formats or
    formats this libsndfile cannot write.
    """
    import soundfile as sf

    if fmt not in CODECS:
        raise ApiError(
            "input-invalid",
            f"`response_format` {fmt!r} is not supported here: use one of {', '.join(CODECS)}.",
            param="response_format",
        )
    container, subtype, media_type = CODECS[fmt]
    if fmt == "pcm":
        samples, rate = resample(samples, rate, PCM_RATE), PCM_RATE
    elif fmt == "opus":
        samples, rate = resample(samples, rate, OPUS_RATE), OPUS_RATE
    buffer = io.BytesIO()
    try:
        sf.write(
            buffer,
            np.clip(samples, -1.0, 1.0),
            rate,
            format=container,
            subtype=subtype,
            **({"endian": "LITTLE"} if fmt == "pcm" else {}),
        )
    except (sf.LibsndfileError, TypeError, ValueError) as e:
        raise ApiError(
            "input-invalid",
            f"This server's libsndfile cannot write {fmt}: {e}. Use wav or flac.",
            param="response_format",
        ) from e
    return buffer.getvalue(), media_type
