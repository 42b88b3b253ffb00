"""`run_asr_bench`: word error rate and speed of each ASR backend, plus Piper TTS speed.

Spoken picture requests are synthesized at run time with two voices (the packaged Piper
Joe voice, natural; espeak-ng en-us, robotic), decoded once to 16 kHz, then transcribed by
each backend. WER is corpus-level (all word errors / all reference words) after
:func:`normalize_words`, computed with ``jiwer`` when installed, else a word Levenshtein.
Latency is the median over clips of ``Transcript.elapsed_s``; RTF = latency / audio length.

Run: ``python -m benchmarks.asr`` (7-10 minutes on 2 busy cores).
"""

from __future__ import annotations

import copy
import datetime
import logging
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voice.asr import build_asr, normalize_text
from voice.audio import SAMPLE_RATE, load_audio
from voice.errors import VoiceError
from voice.tts import build_tts

logger = logging.getLogger(__name__)

# Picture requests and follow-up commands, as people say them (the reference transcripts).
REQUESTS = (
    "Draw a lighthouse on a cliff at night.",
    "Can you paint me a picture of a forest with no people?",
    "A cat wearing a tiny wizard hat, please.",
    "Make an image of two dogs playing in the snow.",
    "Show me a red sports car in the rain.",
    "Draw a castle on a hill at sunset.",
    "I'd like a watercolor of a fox in autumn leaves.",
    "A bowl of ramen with no chopsticks.",
    "Generate a cyberpunk city street with neon signs.",
    "Sketch an old man reading a newspaper on a bench.",
    "Paint a bowl of fruit in the style of Van Gogh.",
    "A spaceship landing in a desert without any clouds.",
    "Make it darker.",
    "Now make the sky brighter and add some stars.",
    "Undo that.",
    "Try again with a bigger moon.",
    "Draw three sailboats on a calm blue lake.",
    "A portrait of a woman with green eyes in oil paint.",
    "Put a small dragon on top of the castle.",
    "Show me a cozy kitchen in the morning light.",
    "Make the picture look like a pencil drawing.",
    "A snowy mountain village with warm windows at dusk.",
)
VOICES = ("piper", "espeak")  # tts engines that speak the requests
PLAIN_WHISPER = "plain whisper.transcribe"  # openai-whisper's defaults, on our weights
PLAIN_FASTER = "plain faster-whisper transcribe"  # faster-whisper's defaults, on our weights
# (label, backend or plain path, extra constructor kwargs, language); rows sharing a
# backend share its weights. Each "ours" row is compared with its backend's plain row.
DEFAULT_ROWS = (
    (PLAIN_WHISPER, PLAIN_WHISPER, {}, None),
    ("openai-whisper 30 s window (before)", "openai-whisper", {"short_context": False}, None),
    ("openai-whisper short context (ours)", "openai-whisper", {}, None),
    ("openai-whisper short context, en (ours)", "openai-whisper", {}, "en"),
    (PLAIN_FASTER, PLAIN_FASTER, {}, None),
    ("faster-whisper int8 short context (ours)", "faster-whisper", {}, None),
    ("faster-whisper int8 short context, en (ours)", "faster-whisper", {}, "en"),
)
PLAIN_OF = {"openai-whisper": PLAIN_WHISPER, "faster-whisper": PLAIN_FASTER}
TTS_REPLY = (
    "Here is your lighthouse on a cliff at night. I made the sky dark blue with a few stars. "
    "Say make it brighter, or ask for something new."
)
TTS_REPEATS = 3  # runs of the reply; medians reported

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(n: int) -> str:
    """0..999 as English words (larger numbers are kept as digits)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + _number_words(rest))
    return str(n)


def normalize_words(text: str) -> list[str]:
    """Lowercase, strip punctuation, spell numbers as words, join "I'd" -> "id".

    Parameters
    ----------
    text:
        A reference or a transcript.

    Returns
    -------
    The words to compare.
    """
    text = text.replace("'", "").replace("\u2019", "")
    words = []
    for word in normalize_text(text).split():
        words.extend(_number_words(int(word)).split() if word.isdigit() else [word])
    return words


def _levenshtein(ref: list[str], hyp: list[str]) -> int:
    """Word edit distance (substitutions + deletions + insertions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def corpus_wer(refs: list[str], hyps: list[str]) -> tuple[float, str]:
    """Word error rate over all clips.

    Parameters
    ----------
    refs, hyps:
        Reference texts and transcripts, pairwise.

    Returns
    -------
    (WER in 0..inf, name of the implementation used).
    """
    ref_words = [" ".join(normalize_words(t)) or "<empty>" for t in refs]
    hyp_words = [" ".join(normalize_words(t)) for t in hyps]
    try:
        import jiwer  # noqa: PLC0415 (optional)

        return float(jiwer.wer(ref_words, hyp_words)), "jiwer"
    except ImportError:
        errors = sum(
            _levenshtein(r.split(), h.split()) for r, h in zip(ref_words, hyp_words, strict=True)
        )
        return errors / sum(len(r.split()) for r in ref_words), "word Levenshtein"


@dataclass
class RowResult:
    """Measurements of one backend setting on one voice."""

    label: str
    voice: str
    load_s: float
    wer: float = 0.0
    latencies: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    misses: list[tuple[str, str]] = field(default_factory=list)  # (reference, heard)


def synthesize_clips(requests: tuple[str, ...], voice: str) -> list[np.ndarray]:
    """Speak each request with a TTS engine and decode it to 16 kHz float32."""
    tts = build_tts(voice, fallback=False)
    clips = []
    for text in requests:
        speech = tts.synthesize(text)
        clips.append(load_audio((speech.sample_rate, speech.samples), SAMPLE_RATE))
    return clips


class PlainWhisper:
    """The reference path: ``whisper.transcribe`` with its defaults, on the same weights."""

    def __init__(self, model: Any, fp16: bool):
        self.model, self.fp16 = model, fp16

    def run(self, samples: np.ndarray) -> tuple[str, float]:
        import whisper  # noqa: PLC0415

        start = time.perf_counter()
        text = whisper.transcribe(self.model, samples, fp16=self.fp16)["text"]
        return text.strip(), time.perf_counter() - start


class PlainFaster:
    """The reference path: faster-whisper's ``transcribe`` with its defaults (beam 5)."""

    def __init__(self, model: Any):
        self.model = model

    def run(self, samples: np.ndarray) -> tuple[str, float]:
        start = time.perf_counter()
        segments, _ = self.model.transcribe(samples)
        text = "".join(s.text for s in segments)  # the generator decodes lazily
        return text.strip(), time.perf_counter() - start


class Ours:
    """One of our recognizers, timed as the voice loop sees it (``Transcript.elapsed_s``)."""

    def __init__(self, asr: Any):
        self.asr = asr

    def run(self, samples: np.ndarray) -> tuple[str, float]:
        t = self.asr.transcribe(samples)
        return t.text, t.elapsed_s


VARIANT_KEYS = {"short_context", "context_margin_frames"}  # settable on a loaded recognizer


def _load_rows(rows: tuple, cache_dir: Path) -> list[tuple[Any, float]]:
    """Build every row, loading each backend's weights once; return (runner, load s) pairs.

    Rows of one backend that differ only in language or :data:`VARIANT_KEYS` are shallow
    copies of one loaded recognizer (same weights, same lock), so the comparison is of
    decoding paths, not of model copies.
    """
    base: dict[str, Any] = {}
    load_s: dict[str, float] = {}

    def backend_asr(backend: str) -> Any:
        if backend not in base:
            start = time.perf_counter()
            base[backend] = build_asr(backend, cache_dir=cache_dir, initial_prompt=None)
            load_s[backend] = time.perf_counter() - start
        return base[backend]

    loaded = []
    for _, backend, kwargs, language in rows:
        if backend == PLAIN_WHISPER:
            asr = backend_asr("openai-whisper")
            runner, backend = PlainWhisper(asr.model, asr.fp16), "openai-whisper"
        elif backend == PLAIN_FASTER:
            runner, backend = PlainFaster(backend_asr("faster-whisper").model), "faster-whisper"
        elif set(kwargs) <= VARIANT_KEYS:
            asr = copy.copy(backend_asr(backend))
            for key, value in {**kwargs, "language": language}.items():
                setattr(asr, key, value)
            runner = Ours(asr)
        else:
            runner = Ours(build_asr(backend, cache_dir=cache_dir, language=language, **kwargs))
        loaded.append((runner, load_s.get(backend, 0.0)))
    warm_up = np.random.default_rng(0).normal(0, 0.05, SAMPLE_RATE).astype(np.float32)
    for runner, _ in loaded:  # the first decode of each path initialises its kernels
        try:
            runner.run(warm_up)
        except VoiceError:
            pass  # noise is refused as no speech: the decode ran all the same
    return loaded


def _measure(
    rows: tuple, clips: dict[str, list[np.ndarray]], requests: tuple[str, ...], cache_dir: Path
) -> list[RowResult]:
    """Transcribe every clip with every row, interleaved clip by clip.

    Interleaving spreads changes in machine load over all rows alike, so their latencies
    stay comparable on shared cores.
    """
    loaded = _load_rows(rows, cache_dir)
    results = []
    for voice, voice_clips in clips.items():
        per_row = [
            RowResult(row[0], voice, load_s) for row, (_, load_s) in zip(rows, loaded, strict=True)
        ]
        heard: list[list[str]] = [[] for _ in rows]
        for text, samples in zip(requests, voice_clips, strict=True):
            for r, (runner, _), got in zip(per_row, loaded, heard, strict=True):
                try:
                    said, elapsed = runner.run(samples)
                    got.append(said)
                    r.latencies.append(elapsed)
                except VoiceError as e:
                    got.append("")
                    logger.warning("%s / %s: %r -> %s", r.label, voice, text, e.code)
                r.durations.append(samples.size / SAMPLE_RATE)
                if normalize_words(text) != normalize_words(got[-1]):
                    r.misses.append((text, got[-1]))
        for r, got in zip(per_row, heard, strict=True):
            r.wer, _ = corpus_wer(list(requests), got)
        results.extend(per_row)
        print(f"  measured {voice} ({_machine()})", flush=True)
    return results


def _machine() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        load = f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min)"
    except OSError:
        load = "load unknown"
    now = datetime.datetime.now().astimezone().isoformat(timespec="minutes")
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {load}, {now}"


def bench_tts(repeats: int = TTS_REPEATS) -> dict[str, float]:
    """Piper time to first audio and real-time factor for a 3-sentence reply (medians)."""
    start = time.perf_counter()
    tts = build_tts("piper", fallback=False)
    load_s = time.perf_counter() - start
    first, rtf, total = [], [], []
    for _ in range(repeats + 1):  # the first run warms onnxruntime up and is not counted
        start = time.perf_counter()
        first_s, audio_s = None, 0.0
        for chunk in tts.stream(TTS_REPLY):
            first_s = first_s if first_s is not None else time.perf_counter() - start
            audio_s += chunk.samples.size / chunk.sample_rate
        elapsed = time.perf_counter() - start
        first.append(first_s)
        total.append(elapsed)
        rtf.append(elapsed / audio_s)
    return {
        "load_s": load_s,
        "first_audio_s": statistics.median(first[1:]),
        "total_s": statistics.median(total[1:]),
        "rtf": statistics.median(rtf[1:]),
        "audio_s": audio_s,
    }


def _backend_of(row: tuple) -> str:
    """``openai-whisper`` or ``faster-whisper``: whose plain row a row is compared with."""
    backend = row[1]
    return {PLAIN_WHISPER: "openai-whisper", PLAIN_FASTER: "faster-whisper"}.get(backend, backend)


def _print_table(rows: tuple, results: list[RowResult], voices: tuple[str, ...]) -> None:
    """One markdown row per setting over the clips of ``voices``, with its speed-up."""
    merged = []
    for row in rows:
        own = [r for r in results if r.label == row[0] and r.voice in voices]
        lat = [t for r in own for t in r.latencies]
        dur = [d for r in own for d in r.durations]
        wer = statistics.fmean(r.wer for r in own) if own else float("nan")
        merged.append((row, lat, dur, wer, sum(len(r.misses) for r in own)))
    median_of = {m[0][0]: statistics.median(m[1]) if m[1] else float("nan") for m in merged}
    print("| path | WER | exact clips | median s/clip | x faster than plain | median RTF |")
    print("|---|---|---|---|---|---|")
    for row, lat, dur, wer, misses in merged:
        med = median_of[row[0]]
        plain = median_of.get(PLAIN_OF[_backend_of(row)], float("nan"))
        rtf = statistics.median(t / d for t, d in zip(lat, dur, strict=True)) if lat else 0.0
        print(
            f"| {row[0]} | {wer:.1%} | {len(dur) - misses}/{len(dur)} | {med:.2f} "
            f"| {plain / med:.2f} | {rtf:.2f} |"
        )


def run_asr_bench(
    config: Any = None,
    rows: tuple = DEFAULT_ROWS,
    n_requests: int = 0,
    endpointing: bool = True,
) -> int:
    """Measure the plain and our ASR paths on spoken requests and print markdown tables.

    Parameters
    ----------
    config:
        An assistant ``Config`` (its ``cache_dir`` is used) or ``None`` for the default
        cache ``~/.cache/voice-image-assistant``.
    rows:
        Paths to measure, see :data:`DEFAULT_ROWS`.
    n_requests:
        Use only the first ``n`` requests (0: all of :data:`REQUESTS`).
    endpointing:
        Also measure the voice loop's silence window and end of speech to transcript
        (:mod:`benchmarks.asr_endpointing`).

    Returns
    -------
    Exit code: 0.
    """
    base = getattr(config, "cache_dir", None) or Path("~/.cache/voice-image-assistant")
    cache_dir = Path(base).expanduser() / "whisper"
    requests = REQUESTS[:n_requests] if n_requests else REQUESTS
    print(f"\nASR benchmark: {_machine()}")
    clips = {voice: synthesize_clips(requests, voice) for voice in VOICES}
    seconds = [c.size / SAMPLE_RATE for v in clips.values() for c in v]
    results = _measure(rows, clips, requests, cache_dir)
    _, wer_impl = corpus_wer(["a"], ["a"])
    print(
        f"\n{len(requests)} requests x {len(VOICES)} voices, {min(seconds):.1f}-"
        f"{max(seconds):.1f} s (median {statistics.median(seconds):.1f} s); WER by "
        f"{wer_impl}; time = median over clips, interleaved clip by clip\n"
    )
    for voice in VOICES:
        print(f"\n{voice}:\n")
        _print_table(rows, results, (voice,))
    print("\nboth voices (WER: mean of the two):\n")
    _print_table(rows, results, VOICES)
    print("\nMisheard (first 3 per row):")
    for r in results:
        for ref, heard in r.misses[:3]:
            print(f"- {r.label} / {r.voice}: {ref!r} -> {heard!r}")
    if endpointing:
        from benchmarks.asr_endpointing import run_endpointing_bench  # noqa: PLC0415

        run_endpointing_bench(cache_dir)
    print(f"\nDone: {_machine()}")
    return 0


if __name__ == "__main__":
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(description="ASR paths: plain vs ours, WER and time.")
    parser.add_argument("--requests", type=int, default=0, help="first N requests only")
    parser.add_argument("--no-endpointing", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(run_asr_bench(n_requests=args.requests, endpointing=not args.no_endpointing))
