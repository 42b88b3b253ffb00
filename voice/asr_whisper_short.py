"""openai-whisper on a bounded audio context: encode only the frames that hold the audio.

Whisper's ``AudioEncoder`` insists on 1500 frames (30 s). :func:`encode_bounded` runs the
same layers on fewer frames, with the positional embedding sliced to match (whisper.cpp's
``audio_ctx``); the text decoder cross-attends to any number of frames as it is.
:class:`ShortContextDecoding` is whisper's own ``DecodingTask`` (same token rules, greedy)
fed those features, detecting the language from them too, and stopping when the tail of
the text repeats (:func:`voice.asr_context.repeated_tail_start`).

Example::

    result = decode_short(model, samples, whisper.DecodingOptions(language="en", fp16=False))
    print(result.text)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import whisper
from torch import Tensor
from torch.nn import functional as F
from whisper.audio import HOP_LENGTH
from whisper.decoding import DecodingOptions, DecodingResult, DecodingTask, LogitFilter
from whisper.model import AudioEncoder, Whisper
from whisper.tokenizer import Tokenizer
from whisper.utils import compression_ratio

from voice.asr_context import (
    CONTEXT_MARGIN_FRAMES,
    CONTEXT_MIN_FRAMES,
    FULL_CONTEXT_FRAMES,
    MEL_FRAMES_PER_FRAME,
    audio_context_frames,
    cut_repetition,
    needs_full_window,
    repeated_tail_start,
)
from voice.audio import SAMPLE_RATE

SAMPLES_PER_FRAME = HOP_LENGTH * MEL_FRAMES_PER_FRAME  # 320 samples per 20 ms encoder frame


def bounded_mel(samples: np.ndarray, n_frames: int, n_mels: int, device: str) -> Tensor:
    """Log-mel spectrogram of ``samples`` padded (or cut) to ``n_frames`` encoder frames.

    Returns
    -------
    Tensor of shape ``(n_mels, 2 * n_frames)``; the same values as the first columns of
    whisper's 30 s mel (its normalisation clamps to ``max - 8`` either way).
    """
    padded = whisper.pad_or_trim(samples, n_frames * SAMPLES_PER_FRAME)
    return whisper.log_mel_spectrogram(padded, n_mels, device=device)


def encode_bounded(encoder: AudioEncoder, mel: Tensor) -> Tensor:
    """``AudioEncoder.forward`` for any number of frames up to 1500.

    Parameters
    ----------
    encoder:
        A Whisper model's encoder.
    mel:
        ``(batch, n_mels, 2 * n_frames)``.

    Returns
    -------
    Audio features ``(batch, n_frames, n_audio_state)``.
    """
    x = F.gelu(encoder.conv1(mel))
    x = F.gelu(encoder.conv2(x))
    x = x.permute(0, 2, 1)
    x = (x + encoder.positional_embedding[: x.shape[1]]).to(x.dtype)
    for block in encoder.blocks:
        x = block(x)
    return encoder.ln_post(x)


def detect_language_from_features(
    model: Whisper, tokenizer: Tokenizer, features: Tensor
) -> tuple[Tensor, list[str]]:
    """Most probable language token and code per item, from already encoded features.

    (``whisper.detect_language`` re-encodes anything that is not 1500 frames long.)
    """
    sot = torch.tensor([[tokenizer.sot]] * features.shape[0], device=features.device)
    logits = model.logits(sot, features)[:, 0]
    keep = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    keep[list(tokenizer.all_language_tokens)] = True
    logits[:, ~keep] = -np.inf
    best = logits.argmax(dim=-1)
    code_of = dict(zip(tokenizer.all_language_tokens, tokenizer.all_language_codes, strict=True))
    return best, [code_of[int(t)] for t in best]


class StopOnRepeat(LogitFilter):
    """Forces end-of-text once the sampled text ends in a loop."""

    def __init__(self, eot: int, sample_begin: int):
        self.eot = eot
        self.sample_begin = sample_begin

    def apply(self, logits: Tensor, tokens: Tensor) -> None:
        for i in range(tokens.shape[0]):
            if repeated_tail_start(tokens[i, self.sample_begin :].tolist()) is not None:
                logits[i, :] = -np.inf
                logits[i, self.eot] = 0.0


class ShortContextDecoding(DecodingTask):
    """whisper's ``DecodingTask`` on a bounded context, with the repetition stop."""

    def __init__(self, model: Whisper, options: DecodingOptions):
        super().__init__(model, options)
        self.logit_filters.append(StopOnRepeat(self.tokenizer.eot, self.sample_begin))

    def _get_audio_features(self, mel: Tensor) -> Tensor:
        if self.options.fp16:
            mel = mel.half()
        return encode_bounded(self.model.encoder, mel)

    def _detect_language(self, audio_features: Tensor, tokens: Tensor):
        if self.options.language is not None:
            return [self.options.language] * audio_features.shape[0], None
        best, languages = detect_language_from_features(self.model, self.tokenizer, audio_features)
        tokens[:, self.sot_index + 1] = best  # the language token of the start sequence
        return languages, None


@torch.no_grad()
def decode_short(
    model: Whisper,
    samples: np.ndarray,
    options: DecodingOptions,
    margin: int = CONTEXT_MARGIN_FRAMES,
    minimum: int = CONTEXT_MIN_FRAMES,
) -> DecodingResult:
    """Decode up to 30 s of 16 kHz audio, encoding only its frames plus ``margin``.

    Parameters
    ----------
    model:
        A loaded Whisper model.
    samples:
        float32 mono samples at 16 kHz.
    options:
        whisper's decoding options (greedy: ``temperature=0``, ``beam_size=None``).
    margin, minimum:
        See :func:`voice.asr_context.audio_context_frames`.

    Returns
    -------
    whisper's ``DecodingResult``, with a looping tail's extra copies removed; from the
    full 30 s window when the short one was unsure (:func:`voice.asr_context.needs_full_window`).
    """
    n_frames = audio_context_frames(samples.size / SAMPLE_RATE, margin, minimum)
    mel = bounded_mel(samples, n_frames, model.dims.n_mels, str(model.device))
    task = ShortContextDecoding(model, options)
    result = task.run(mel.unsqueeze(0))[0]
    if needs_full_window(result.avg_logprob, n_frames):
        return decode_short(model, samples, options, margin, FULL_CONTEXT_FRAMES)
    tokens = cut_repetition(list(result.tokens))
    if len(tokens) == len(result.tokens):
        return result
    text = task.tokenizer.decode(tokens).strip()
    return dataclasses.replace(
        result, tokens=tokens, text=text, compression_ratio=compression_ratio(text)
    )
