"""The speech recognition contract every backend keeps, and the guard they share.

A backend turns 16 kHz samples into a :class:`Recognition` (what the model heard);
:func:`recognize_checked` decodes the input, refuses silence before the model runs, and
refuses Whisper's loops and well-known hallucinations ("Thanks for watching!") after it,
as ``VoiceError("asr-no-speech")``, so they never become requests. What comes out is a
:class:`Transcript`. Backends: :mod:`voice.asr_whisper` (openai-whisper, torch) and
:mod:`voice.asr_faster` (faster-whisper, CTranslate2); :func:`voice.asr.load_asr` picks one.
"""

from __future__ import annotations

import logging
import math
import time
import unicodedata
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from voice.audio import SAMPLE_RATE, AudioSource, load_audio, rms_dbfs
from voice.errors import VoiceError

logger = logging.getLogger(__name__)

COMPRESSION_RATIO_MAX = 2.4  # gzip ratio of the text above which Whisper is looping
WARM_UP_SECONDS = 1.0  # s of audio decoded by warm_up()
# Token budget per second of audio (fast speech is ~6 tokens/s): stops a repetition loop
# on a 2 s clip after ~36 tokens instead of Whisper's 224, i.e. seconds sooner on a CPU.
TOKENS_PER_SECOND_MAX = 10
TOKENS_MIN = 16
TASKS = ("transcribe", "translate")

# Primes Whisper's vocabulary toward picture and command words (``initial_prompt``).
DOMAIN_PROMPT = (
    "Draw, paint, sketch, picture, image, photo, undo, redo, again, make it darker, brighter, "
    "bigger, lighthouse, watercolor, oil painting, cyberpunk, neon, sunset."
)
# Off by default. benchmarks/asr.py (22 requests x 2 voices, faster-whisper int8): WER
# 4.3% -> 3.3% (Piper) and 24.5% -> 22.8% (espeak), i.e. 1-2 words, within noise; but on
# 3 s of white noise (-45..-25 dBFS) Whisper echoed the prompt ("Draw, paint, sketch,
# picture,") as a request, where without it the noise was refused as asr-no-speech.
DEFAULT_INITIAL_PROMPT: str | None = None

NO_SPEECH_MESSAGE = (
    "I didn't hear any speech. Speak closer to the microphone, or type your request."
)


def normalize_text(text: str) -> str:
    """Casefold, turn punctuation and symbols into spaces, squeeze spaces.

    Parameters
    ----------
    text:
        Any transcript.

    Returns
    -------
    e.g. ``"[BLANK_AUDIO]"`` -> ``"blank audio"``, ``"Thanks for watching!"`` ->
    ``"thanks for watching"``, ``"♪"`` -> ``""``.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(kept.split())


# What Whisper writes for silence, music or noise (learnt from subtitled videos). Whole
# transcripts equal to one of these, after normalize_text, are not speech. Kept out on
# purpose: "thank you" and "bye", which a person may really say to the assistant.
HALLUCINATIONS = frozenset(
    normalize_text(t)
    for t in (
        "you",
        "Thank you for watching",
        "Thanks for watching!",
        "Thank you so much for watching",
        "Thank you for watching and see you next time",
        "Thanks for watching and see you in the next video",
        "Please subscribe",
        "Like and subscribe",
        "Don't forget to like and subscribe",
        "Please subscribe to my channel",
        "[BLANK_AUDIO]",
        "[Music]",
        "(music)",
        "[Applause]",
        "[Silence]",
        "[no speech]",
        "♪",
        "...",
    )
)
# Transcripts starting with one of these (after normalize_text) are subtitle credits.
HALLUCINATION_PREFIXES = tuple(
    normalize_text(t)
    for t in (
        "Subtitles by",
        "Subtitled by",
        "Captions by",
        "Closed captioning by",
        "Transcription by",
        "Transcribed by",
        "Sous-titres réalisés par",
        "Sous-titrage",
        "Untertitel der Amara.org-Community",
        "Untertitel im Auftrag",
    )
)


def is_hallucination(text: str) -> bool:
    """True when ``text`` is empty or only one of Whisper's known hallucinations.

    Parameters
    ----------
    text:
        A transcript.

    Returns
    -------
    Whether it must not be treated as a request.
    """
    norm = normalize_text(text)
    return not norm or norm in HALLUCINATIONS or norm.startswith(HALLUCINATION_PREFIXES)


@dataclass(frozen=True)
class Transcript:
    """What was said, and how sure Whisper is.

    Parameters
    ----------
    text:
        The recognized (or, with task="translate", English) text, stripped.
    language:
        Language code Whisper detected or was told, e.g. ``"en"``.
    confidence:
        0..1, ``exp`` of the mean token log probability.
    no_speech_prob:
        0..1, Whisper's probability that the audio holds no speech.
    duration_s:
        Length of the audio in seconds.
    elapsed_s:
        Seconds spent decoding and recognizing it.
    """

    text: str
    language: str
    confidence: float
    no_speech_prob: float
    duration_s: float
    elapsed_s: float


@dataclass(frozen=True)
class Recognition:
    """What a backend heard, before the silence/hallucination guard.

    Parameters
    ----------
    text:
        The decoded text, stripped.
    language:
        Language code used or detected.
    avg_logprob:
        Mean token log probability (weighted over segments).
    no_speech_prob:
        0..1, the model's probability that the audio holds no speech.
    compression_ratio:
        gzip ratio of the text; high means a repetition loop.
    """

    text: str
    language: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


@runtime_checkable
class SpeechRecognizer(Protocol):
    """What every ASR backend offers (see :func:`voice.asr.load_asr`)."""

    def transcribe(
        self, audio: AudioSource, language: str | None = None, task: str | None = None
    ) -> Transcript:
        """Recognize speech; see :meth:`voice.asr_whisper.WhisperASR.transcribe`."""
        ...

    def warm_up(self) -> None:
        """Run one small decode so the first request is not slower."""
        ...


def call_overrides(language: str | None, task: str | None) -> dict[str, str]:
    """The per-call ``language`` / ``task`` overrides that are set, checked.

    Parameters
    ----------
    language, task:
        ``None`` means "keep the backend's default".

    Returns
    -------
    Keyword arguments for a backend's ``_recognize`` (empty when nothing is overridden).

    Raises
    ------
    VoiceError
        ``input-invalid`` for a task other than ``transcribe`` / ``translate``.
    """
    if task is not None and task not in TASKS:
        raise VoiceError("input-invalid", f"task must be one of {TASKS}, not {task!r}.")
    given = (("language", language), ("task", task))
    return {key: value for key, value in given if value is not None}


def check_recognition(
    result: Recognition, no_speech_threshold: float, logprob_threshold: float
) -> None:
    """The silence / loop / hallucination guard every backend applies to its result.

    Parameters
    ----------
    result:
        What the backend heard.
    no_speech_threshold, logprob_threshold:
        Silence when ``no_speech_prob > no_speech_threshold`` and
        ``avg_logprob < logprob_threshold`` (Whisper's own rule).

    Raises
    ------
    VoiceError
        ``asr-no-speech`` when the result is silence, a repetition loop, or a known
        hallucination; nothing otherwise.
    """
    silent = result.no_speech_prob > no_speech_threshold and result.avg_logprob < logprob_threshold
    looping = result.compression_ratio > COMPRESSION_RATIO_MAX
    if silent or looping or is_hallucination(result.text):
        logger.info(
            "no speech: %r (no_speech_prob %.2f, avg_logprob %.2f, compression %.1f)",
            result.text,
            result.no_speech_prob,
            result.avg_logprob,
            result.compression_ratio,
        )
        raise VoiceError("asr-no-speech", NO_SPEECH_MESSAGE)


def recognize_checked(
    audio: AudioSource,
    recognize: Callable[[np.ndarray], Recognition],
    *,
    max_seconds: float,
    min_rms_dbfs: float,
    no_speech_threshold: float,
    logprob_threshold: float,
    engine: str,
) -> Transcript:
    """Decode audio, run one backend's ``recognize`` on it, guard and package the result.

    Shared by every backend, so they refuse the same silence and hallucinations.

    Parameters
    ----------
    audio:
        Any :data:`voice.audio.AudioSource`.
    recognize:
        The backend's decoder: 16 kHz mono float32 samples -> :class:`Recognition`.
    max_seconds:
        Longest audio accepted (s).
    min_rms_dbfs:
        Audio quieter than this (dBFS) is silence, without running ``recognize``.
    no_speech_threshold, logprob_threshold:
        See :func:`check_recognition`.
    engine:
        Name for log lines, e.g. ``"faster-whisper"``.

    Returns
    -------
    The :class:`Transcript`.

    Raises
    ------
    VoiceError
        ``audio-invalid`` / ``audio-too-long`` for unusable audio, ``asr-no-speech`` for
        silence or a known hallucination, ``asr-failed`` when ``recognize`` fails.
    """
    start = time.perf_counter()
    # 1. Decode the input to 16 kHz mono float32.
    samples = load_audio(audio, SAMPLE_RATE, max_seconds=max_seconds)
    duration_s = samples.size / SAMPLE_RATE
    # 2. Too quiet to hold speech: do not ask the model (it would invent some).
    level = rms_dbfs(samples)
    if level < min_rms_dbfs:
        logger.info("no speech: level %.1f dBFS < %.1f dBFS", level, min_rms_dbfs)
        raise VoiceError("asr-no-speech", NO_SPEECH_MESSAGE)
    # 3. Recognize.
    try:
        result = recognize(samples)
    except VoiceError:
        raise
    except Exception as e:
        logger.exception("%s failed on %.1f s of audio", engine, duration_s)
        raise VoiceError(
            "asr-failed",
            f"Speech recognition failed ({type(e).__name__}: {e}). "
            "Try again, or type your request.",
        ) from e
    elapsed_s = time.perf_counter() - start
    # 4. Silence, loops and hallucinations are not requests.
    check_recognition(result, no_speech_threshold, logprob_threshold)
    transcript = Transcript(
        text=result.text,
        language=result.language,
        confidence=float(min(1.0, math.exp(result.avg_logprob))),
        no_speech_prob=float(result.no_speech_prob),
        duration_s=duration_s,
        elapsed_s=elapsed_s,
    )
    logger.info(
        "%s heard %r (%s, %.1f s audio in %.2f s)",
        engine,
        transcript.text,
        transcript.language,
        duration_s,
        elapsed_s,
    )
    return transcript


def pick_device(device: str) -> str:
    """The ASR device: :func:`common.devices.pick_device` (the one place that decides), except
    that ``"auto"`` means CUDA or the CPU, never MPS (CTranslate2 has no MPS, and Whisper's
    sparse alignment-head buffer does not move there). An unavailable GPU falls back to the
    CPU with a warning; an unknown name raises ``ValueError`` naming ``device``."""
    from common.devices import has_cuda  # noqa: PLC0415 (imports torch only when asked)
    from common.devices import pick_device as pick_torch_device  # noqa: PLC0415

    if (device or "auto").strip().lower() == "auto":
        return "cuda" if has_cuda() else "cpu"
    return pick_torch_device(device)


class GuardedRecognizer:
    """``transcribe`` as every backend has it: the call's overrides, one recognition at a time,
    and the silence / hallucination guard (:func:`recognize_checked`) around it.

    A backend sets ``ENGINE`` (its name in errors), the guard's thresholds (``max_seconds``,
    ``min_rms_dbfs``, ``no_speech_threshold``, ``logprob_threshold``) and ``_lock``, and
    implements ``_recognize(samples, language=None, task=None) -> Recognition``.
    """

    ENGINE: ClassVar[str]

    def _one_at_a_time(self) -> AbstractContextManager:
        """Held around each recognition (a backend may add its own inference context)."""
        return self._lock

    def transcribe(
        self, audio: AudioSource, language: str | None = None, task: str | None = None
    ) -> Transcript:
        """Recognize speech.

        Parameters
        ----------
        audio:
            A file path, file bytes, a ``(sample_rate, samples)`` tuple (gradio), an
            ``AudioClip``, or float32 samples at 16 kHz.
        language, task:
            Overrides of the constructor's ``language`` / ``task`` for this call only;
            ``None`` keeps the constructor's value.

        Returns
        -------
        The :class:`Transcript`.

        Raises
        ------
        VoiceError
            ``audio-invalid`` / ``audio-too-long`` for unusable audio, ``asr-no-speech``
            for silence or a known hallucination, ``asr-failed`` when recognition fails.
        """
        overrides = call_overrides(language, task)

        def recognize(samples: np.ndarray) -> Recognition:
            with self._one_at_a_time():
                return self._recognize(samples, **overrides)

        return recognize_checked(
            audio,
            recognize,
            max_seconds=self.max_seconds,
            min_rms_dbfs=self.min_rms_dbfs,
            no_speech_threshold=self.no_speech_threshold,
            logprob_threshold=self.logprob_threshold,
            engine=self.ENGINE,
        )
