"""`run_assistant.py bench tts`: the offline voices side by side on the assistant's own replies.

Each voice speaks the same replies, interleaved reply by reply (the order alternates), so
changes in machine load fall on every voice alike. Per voice:

- load: seconds to build the engine (including its own warm-up);
- first audio: from ``stream(reply)`` to its first chunk (what a listener waits for);
- RTF: rendering time / audio length over the whole reply;
- round-trip WER: the project's ASR (``asr.*`` settings) transcribes the synthesized audio,
  compared with the reply text (corpus-level, :func:`benchmarks.asr.corpus_wer`).

Run: ``python run_assistant.py bench tts`` (about a minute on 2 busy cores).
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks.asr import _machine, corpus_wer, normalize_words
from voice.audio import SAMPLE_RATE, load_audio
from voice.tts import build_tts

logger = logging.getLogger(__name__)

# What the assistant says after a turn (assistant/replies.py), plus two longer answers.
REPLIES = (
    "Here is your lighthouse on a cliff at night. Want any changes?",
    "Done, I've changed it. Want another change, or undo?",
    "Here's another version. Like this one better?",
    "Here are three more versions. Say the first one, or the last one, to pick.",
    "Here it is as watercolor. Another style, or undo?",
    "I repainted the sky. Keep it, or undo?",
    "Back to the previous picture: a red barn in a snowy field.",
    "I used the prompt: a castle on a hill at sunset, dramatic sky, golden hour.",
    "There's nothing to undo. Ask me to draw something first.",
    "Tell me what to draw, like: draw a lighthouse on a cliff at night. Then change it: "
    "make it darker. Say undo to go back, again for a new version, or ask what prompt I used.",
)
VOICES = ("hibari", "piper")  # the packaged offline voices: hibari heart, Piper joe


@dataclass
class VoiceResult:
    """What one voice did on every reply."""

    name: str
    load_s: float
    first_audio_s: list[float] = field(default_factory=list)
    rtf: list[float] = field(default_factory=list)
    audio_s: list[float] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    misses: list[tuple[str, str]] = field(default_factory=list)


def speak_timed(tts, text: str):
    """Stream ``text``; return (seconds to the first chunk, render seconds, joined 16 kHz audio)."""
    start = time.perf_counter()
    first_s, chunks, rate = None, [], None
    for chunk in tts.stream(text):
        first_s = time.perf_counter() - start if first_s is None else first_s
        chunks.append(chunk.samples)
        rate = chunk.sample_rate
    render_s = time.perf_counter() - start
    return first_s, render_s, np.concatenate(chunks), rate


def measure(voices: tuple[str, ...], replies: tuple[str, ...], asr) -> list[VoiceResult]:
    """Load each voice, warm it, then speak and transcribe every reply, interleaved."""
    engines, results = [], []
    for name in voices:
        start = time.perf_counter()
        tts = build_tts(name, fallback=False)
        results.append(VoiceResult(tts.name, time.perf_counter() - start))
        tts.synthesize("Warm up.")  # onnxruntime's first call allocates; not a reply's cost
        engines.append(tts)
    for index, reply in enumerate(replies):
        order = list(range(len(engines)))
        if index % 2:
            order.reverse()
        for k in order:
            first_s, render_s, samples, rate = speak_timed(engines[k], reply)
            audio_s = samples.size / rate
            r = results[k]
            r.first_audio_s.append(first_s)
            r.rtf.append(render_s / audio_s)
            r.audio_s.append(audio_s)
            heard = asr.transcribe(load_audio((rate, samples), SAMPLE_RATE)).text
            r.heard.append(heard)
            if normalize_words(reply) != normalize_words(heard):
                r.misses.append((reply, heard))
    return results


def run_tts_bench(config, voices: tuple[str, ...] = VOICES, replies: tuple = REPLIES) -> int:
    """Print the voice comparison as a markdown table; return the exit code (0)."""
    from assistant.build import build_asr, resolve_device  # noqa: PLC0415

    print(f"\nTTS benchmark: {_machine()}")
    asr = build_asr(config, resolve_device(config.device))
    asr.warm_up()
    results = measure(voices, replies, asr)
    print(f"\n{len(replies)} replies, interleaved; round trip through {config.asr.backend} "
          f"{config.asr.model}\n")  # fmt: skip
    print("| voice | load s | first audio s (median / max) | RTF (median) | audio s | "
          "round-trip WER | exact |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in results:
        wer, _ = corpus_wer(list(replies), r.heard)
        print(
            f"| {r.name} | {r.load_s:.2f} | {statistics.median(r.first_audio_s):.3f} / "
            f"{max(r.first_audio_s):.3f} | {statistics.median(r.rtf):.3f} | "
            f"{sum(r.audio_s):.1f} | {wer:.1%} | {len(replies) - len(r.misses)}/{len(replies)} |"
        )
    print("\nMisheard:")
    for r in results:
        for ref, heard in r.misses:
            print(f"- {r.name}: {ref!r} -> {heard!r}")
    print(f"\nDone: {_machine()}")
    return 0
