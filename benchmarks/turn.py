"""`run_assistant.py bench`: time one spoken turn stage by stage and print a table.

The request is spoken by the configured TTS voice at run time, then run through the real
controller as an audio turn; stage times come from the turn's own event timestamps.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
from pathlib import Path

from assistant.build import build_controller
from assistant.config import Config
from assistant.controller import UserInput
from assistant.events import EventType

REQUEST = "Draw a lighthouse on a cliff at night."

# (stage name, event that starts it, event that ends it)
STAGES = [
    ("ASR", EventType.ASR_START, EventType.ASR_END),
    ("understand + rewrite", EventType.ASR_END, EventType.PLAN),
    ("image", EventType.IMAGE_START, EventType.IMAGE_DONE),
    ("TTS (whole reply)", EventType.TTS_START, EventType.TTS_END),
    ("total turn", EventType.TURN_START, EventType.TURN_END),
]


def stage_times(events) -> dict[str, float]:
    first = {}
    for event in events:
        first.setdefault(event.type, event.timestamp)
    return {
        name: first[end] - first[start]
        for name, start, end in STAGES
        if start in first and end in first
    }


def run_turn_bench(config: Config, repeats: int = 3) -> int:
    controller, report = build_controller(config)
    if controller.tts is None:
        print("bench needs a TTS engine to speak the request (tts.enabled is false)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        speech = controller.tts.synthesize(REQUEST)
        wav = Path(tmp) / "request.wav"
        controller.write_wav(wav, speech.samples, speech.sample_rate)
        session = controller.new_session()
        runs = []
        transcript = ""
        for i in range(repeats + 1):  # the first turn is a warm-up and is not counted
            events = list(controller.run_turn(session, UserInput(audio=str(wav))))
            errors = [e.data for e in events if e.type == EventType.ERROR]
            if errors:
                print(f"turn failed: {errors}")
                return 1
            transcript = next(e.data["text"] for e in events if e.type == EventType.ASR_END)
            if i:
                runs.append(stage_times(events))

    print(
        f"\nOne spoken turn, profile {config.profile!r}, image model {config.image.model!r}, "
        f"{config.image.width}x{config.image.height}; machine: {platform.processor() or ''} "
        f"{platform.machine()}, {_cores()} cores"
    )
    print(f"request: {REQUEST!r}  heard: {transcript!r}\n")
    print(f"| {'stage':<22} | {'median s':>8} | {'min s':>7} |")
    print(f"|{'-' * 24}|{'-' * 10}|{'-' * 9}|")
    for name, _, _ in STAGES:
        values = [r[name] for r in runs if name in r]
        if values:
            print(f"| {name:<22} | {statistics.median(values):8.2f} | {min(values):7.2f} |")
    print("\nload times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items()))
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))
