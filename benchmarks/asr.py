"""`run_asr_bench`: word error rate and speed of each ASR backend, plus Piper TTS speed.

Spoken picture requests are synthesized at run time with two voices (the packaged Piper
Joe voice, natural; espeak-ng en-us, robotic), decoded once to 16 kHz, then transcribed by
each backend. WER is corpus-level (all word errors / all reference words) after
:func:`normalize_words`, computed with ``jiwer`` when installed, else a word Levenshtein.
Latency is the median over clips of ``Transcript.elapsed_s``; RTF = latency / audio length.

Run: ``python -m benchmarks.asr`` (7-10 minutes on 2 busy cores).
"""

from __future__ import annotations

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

from voice.asr import DOMAIN_PROMPT, build_asr, normalize_text
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
# (label, backend, extra constructor kwargs, language, use the domain prompt)
DEFAULT_ROWS = (
    ("openai-whisper", "openai-whisper", {}, "en", False),
    ("faster-whisper int8", "faster-whisper", {"compute_type": "int8"}, "en", False),
    ("faster-whisper float32", "faster-whisper", {"compute_type": "float32"}, "en", False),
    ("faster-whisper int8 + domain prompt", "faster-whisper", {"compute_type": "int8"}, "en", True),
)
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


def _load_row(row: tuple, cache_dir: Path) -> tuple[Any, float]:
    """Build and warm up one backend setting; return it and its load time (s)."""
    _, backend, kwargs, language, prompted = row
    start = time.perf_counter()
    asr = build_asr(
        backend,
        cache_dir=cache_dir,
        language=language,
        initial_prompt=DOMAIN_PROMPT if prompted else None,
        **kwargs,
    )
    load_s = time.perf_counter() - start
    asr.warm_up()
    return asr, load_s


def _measure(
    rows: tuple, clips: dict[str, list[np.ndarray]], requests: tuple[str, ...], cache_dir: Path
) -> list[RowResult]:
    """Transcribe every clip with every row, interleaved clip by clip.

    Interleaving spreads changes in machine load over all rows alike, so their latencies
    stay comparable on shared cores.
    """
    loaded = [_load_row(row, cache_dir) for row in rows]
    results = []
    for voice, voice_clips in clips.items():
        per_row = [
            RowResult(row[0], voice, load_s) for row, (_, load_s) in zip(rows, loaded, strict=True)
        ]
        heard: list[list[str]] = [[] for _ in rows]
        for text, samples in zip(requests, voice_clips, strict=True):
            for r, (asr, _), got in zip(per_row, loaded, heard, strict=True):
                try:
                    t = asr.transcribe(samples)
                    got.append(t.text)
                    r.latencies.append(t.elapsed_s)
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


def run_asr_bench(config: Any = None, rows: tuple = DEFAULT_ROWS, n_requests: int = 0) -> int:
    """Measure every ASR backend setting on spoken requests and print markdown tables.

    Parameters
    ----------
    config:
        An assistant ``Config`` (its ``cache_dir`` is used) or ``None`` for the default
        cache ``~/.cache/voice-image-assistant``.
    rows:
        Backend settings to measure, see :data:`DEFAULT_ROWS`.
    n_requests:
        Use only the first ``n`` requests (0: all of :data:`REQUESTS`).

    Returns
    -------
    Exit code: 0.
    """
    base = getattr(config, "cache_dir", None) or Path("~/.cache/voice-image-assistant")
    cache_dir = Path(base).expanduser() / "whisper"
    requests = REQUESTS[:n_requests] if n_requests else REQUESTS
    print(f"\nASR benchmark: {_machine()}")
    clips = {voice: synthesize_clips(requests, voice) for voice in VOICES}
    results = _measure(rows, clips, requests, cache_dir)
    _, wer_impl = corpus_wer(["a"], ["a"])
    print(f"\n{len(requests)} requests x {len(VOICES)} voices; WER by {wer_impl}\n")
    print("| backend | voice | WER | exact clips | median s/clip | median RTF | load s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        lat = statistics.median(r.latencies) if r.latencies else float("nan")
        rtfs = [t / d for t, d in zip(r.latencies, r.durations, strict=False)]
        rtf = statistics.median(rtfs) if rtfs else float("nan")
        exact = len(requests) - len(r.misses)
        print(
            f"| {r.label} | {r.voice} | {r.wer:.1%} | {exact}/{len(requests)} | {lat:.2f} "
            f"| {rtf:.2f} | {r.load_s:.2f} |"
        )
    print("\nMisheard (first 3 per row):")
    for r in results:
        for ref, heard in r.misses[:3]:
            print(f"- {r.label} / {r.voice}: {ref!r} -> {heard!r}")
    t = bench_tts()
    print("\n| Piper joe, 3-sentence reply | value |\n|---|---|")
    print(f"| load s | {t['load_s']:.2f} |")
    print(f"| time to first audio s | {t['first_audio_s']:.2f} |")
    print(f"| whole reply s ({t['audio_s']:.1f} s of audio) | {t['total_s']:.2f} |")
    print(f"| real-time factor | {t['rtf']:.3f} |")
    print(f"\nDone: {_machine()}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(run_asr_bench())
