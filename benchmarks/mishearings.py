"""`bench mishearings`: spoken commands through TTS, the project's Whisper and the router.

Every command phrase is synthesized by the packaged Piper voice (joe) and by espeak-ng, each
at two speeds, transcribed by the configured ASR (``asr.*``: packaged Whisper base by default),
and routed twice: by the router with its mishearing examples and repairs, and by one without
them (``ExampleSet.read(with_misheard=False)``). A transcript counts when the router is
confident and names the phrase's command. Transcripts that are not the phrase are listed:
they are the mishearings worth adding to assistant/intent_examples.yaml.

Run: ``python run_assistant.py bench mishearings`` (3-5 minutes on 2 busy cores).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from assistant.router import IntentRouter, normalise
from benchmarks.understand import machine

logger = logging.getLogger(__name__)

# (what is said, the command it is)
COMMANDS: tuple[tuple[str, str], ...] = (
    ("Undo that.", "undo"),
    ("Undo.", "undo"),
    ("Undo it.", "undo"),
    ("Go back.", "undo"),
    ("Go back two steps.", "undo"),
    ("Redo.", "redo"),
    ("Redo that.", "redo"),
    ("Again.", "again"),
    ("Try again.", "again"),
    ("Three more like that.", "variations"),
    ("Two more.", "variations"),
    ("Never mind.", "cancel"),
    ("Cancel.", "cancel"),
    ("Stop.", "cancel"),
    ("Start over.", "reset"),
    ("Save it.", "save"),
    ("Help.", "help"),
    ("What prompt did you use?", "describe"),
    ("Show me all the pictures.", "history"),
    ("Flip it.", "transform"),
    ("Make it square.", "transform"),
    ("Zoom out.", "outpaint"),
    ("Make it bigger.", "upscale"),
    ("The first one.", "select"),
    ("Thank you.", "chitchat"),
)
VOICES = (("piper", 1.0), ("piper", 1.4), ("espeak", 1.0), ("espeak", 1.4))


def _speak_all(voices=VOICES) -> list[tuple[str, float, str, str, Any]]:
    """(engine, speed, phrase, command, 16 kHz samples) for every voice and phrase."""
    from voice.audio import SAMPLE_RATE, load_audio  # noqa: PLC0415
    from voice.tts import build_tts  # noqa: PLC0415

    clips = []
    for engine, speed in voices:
        tts = build_tts(engine, speed=speed, fallback=False)
        for phrase, command in COMMANDS:
            speech = tts.synthesize(phrase)
            samples = load_audio((speech.sample_rate, speech.samples), SAMPLE_RATE)
            clips.append((engine, speed, phrase, command, samples))
    return clips


def run_mishearings_bench(config: Any = None) -> int:
    """Speak, transcribe and route every command; print the counts and the mishearings."""
    from assistant.build import build_asr  # noqa: PLC0415
    from voice.errors import VoiceError  # noqa: PLC0415

    if config is None:
        from assistant.config import load_config  # noqa: PLC0415

        config = load_config(environ={})
    print(f"\nMishearings benchmark: {machine()}")
    with_examples = IntentRouter.load(cache_dir=None)
    without = IntentRouter.load(cache_dir=None, with_misheard=False)
    asr = build_asr(config, "cpu")
    asr.warm_up()
    clips = _speak_all()
    rows: dict[tuple[str, float], dict[str, int]] = {}
    heard_wrong: list[tuple[str, float, str, str, str, str]] = []
    asr_seconds = []
    for engine, speed, phrase, command, samples in clips:
        try:
            start = time.perf_counter()
            text = asr.transcribe(samples).text
            asr_seconds.append(time.perf_counter() - start)
        except VoiceError as e:
            text = f"<{e.code}>"
        row = rows.setdefault((engine, speed), {"clips": 0, "exact": 0, "with": 0, "without": 0})
        row["clips"] += 1
        row["exact"] += normalise(text) == normalise(phrase)
        routed = with_examples.route(text)
        plain = without.route(text)
        row["with"] += routed.confident and routed.intent == command
        row["without"] += plain.confident and plain.intent == command
        if normalise(text) != normalise(phrase):
            verdict = routed.intent + ("" if routed.confident else "?")
            heard_wrong.append((engine, speed, phrase, text, verdict, plain.intent))
    print(
        f"\n{len(COMMANDS)} command phrases x {len(VOICES)} voices; ASR {config.asr.backend} "
        f"{config.asr.model}, median {sorted(asr_seconds)[len(asr_seconds) // 2]:.2f} s/clip\n"
    )
    print("| voice | speed | heard exactly | routed right, with mishearings | without |")
    print("|---|---|---|---|---|")
    total = {"clips": 0, "exact": 0, "with": 0, "without": 0}
    for (engine, speed), row in rows.items():
        for key in total:
            total[key] += row[key]
        print(
            f"| {engine} | {speed:.1f} | {row['exact']}/{row['clips']} "
            f"| {row['with']}/{row['clips']} | {row['without']}/{row['clips']} |"
        )
    print(
        f"| all | | {total['exact']}/{total['clips']} | {total['with']}/{total['clips']} "
        f"| {total['without']}/{total['clips']} |"
    )
    print(
        "\nHeard otherwise (voice, speed: said -> heard -> routed with / without mishearings;"
        " ? = not confident):"
    )
    for engine, speed, phrase, text, verdict, plain in heard_wrong:
        print(f"- {engine} {speed:.1f}: {phrase!r} -> {text!r} -> {verdict} / {plain}")
    print(f"\nDone: {machine()}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(run_mishearings_bench())
