"""`run_assistant.py bench` / `bench turn`: one spoken turn, stage by stage, beside plain paths.

The request is spoken by the configured voice at run time and run through the real controller
as an audio turn (a fresh session each time, so every turn draws a new picture); stage times
come from the turn's own event timestamps. After each turn, in the same run (interleaved, so
machine load falls on both alike), the plain references are timed on the same weights:

- ASR: the backend's own transcribe on the same model: ``whisper.transcribe(model, audio)`` as
  openai-whisper's README calls it, or faster-whisper's ``model.transcribe`` with its defaults;
- planning: the local grammar alone (no router, no LLM);
- image: the pipeline's own ``__call__`` (plain diffusers) with the turn's prompt and settings;
- first audio: the turn's first reply chunk, against rendering the whole reply before playing.

"first audio (acknowledgement)" is when the voice loop says "On it." for a picture: at the
plan, pre-rendered at start, so the person hears the assistant while the picture is drawn.
Times count from the end of speech (the turn's start; the voice loop adds its silence window).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from assistant.build import build_controller
from assistant.config import Config
from assistant.controller import UserInput
from assistant.events import EventType
from assistant.pool import resident_mb, resolve

REQUEST = "Draw a lighthouse on a cliff at night."
TARGET_S = 2.0  # end of speech to first audio, on a quiet CPU (issue 13)

# (row, event that starts it, event that ends it); times from the turn's events
STAGES = [
    ("ASR", EventType.ASR_START, EventType.ASR_END),
    ("planning (understand + rewrite)", EventType.ASR_END, EventType.PLAN),
    ("image", EventType.IMAGE_START, EventType.IMAGE_DONE),
    ("first audio (acknowledgement)", EventType.TURN_START, EventType.PLAN),
    ("first reply audio", EventType.TURN_START, EventType.TTS_CHUNK),
    ("TTS first chunk", EventType.TTS_START, EventType.TTS_CHUNK),
    ("total turn", EventType.TURN_START, EventType.TURN_END),
]


def stage_times(events) -> dict[str, float]:
    """Seconds per row of :data:`STAGES`, from the first event of each type."""
    first = {}
    for event in events:
        first.setdefault(event.type, event.timestamp)
    return {
        name: first[end] - first[start]
        for name, start, end in STAGES
        if start in first and end in first
    }


def _timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def plain_asr(controller, samples):
    """The backend's own ``transcribe`` on the recognizer's model (openai-whisper's, or
    faster-whisper's with its defaults), or None for others."""
    model = getattr(resolve(controller.asr), "model", None)
    if model is None or not hasattr(model, "transcribe"):
        return None
    if type(model).__module__.startswith("faster_whisper"):
        from benchmarks.asr import PlainFaster  # noqa: PLC0415

        return lambda: PlainFaster(model).run(samples)
    return lambda: model.transcribe(samples, fp16=False)


def plain_planning(controller, text: str):
    """The grammar alone: no router, no LLM planner, the deterministic rewriter only."""
    from assistant.rewrite import PromptRewriter  # noqa: PLC0415
    from assistant.state import DialogueState  # noqa: PLC0415
    from assistant.understand import understand  # noqa: PLC0415

    rw = controller.rewriter
    rules_only = PromptRewriter(rw.rules, None, rw.max_prompt_words, styles=rw.styles)
    return lambda: understand(text, DialogueState(), rules_only)


def plain_image(controller, done: dict):
    """The pipeline's own call with the turn's prompt, size, steps and guidance."""
    import torch  # noqa: PLC0415

    pipe = resolve(controller.image_engine).pipe
    return lambda: pipe(
        prompt=done["prompt"],
        negative_prompt=done.get("negative_prompt") or None,
        num_inference_steps=int(done["steps"]),
        guidance_scale=float(done["guidance"]),
        width=int(done["width"]),
        height=int(done["height"]),
        generator=torch.Generator("cpu").manual_seed(int(done["seed"])),
    ).images[0]


def run_turn_bench(config: Config, repeats: int = 3) -> int:
    load_before = os.getloadavg()
    controller, report = build_controller(config)
    if report.background is not None:
        report.background.wait()  # a warm assistant: start-up is `bench startup`'s job
    if controller.tts is None:
        print("bench needs a TTS engine to speak the request (tts.enabled is false)")
        return 2
    from voice.audio import SAMPLE_RATE, load_audio  # noqa: PLC0415

    ours: dict[str, list[float]] = {}
    plain: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        speech = controller.tts.synthesize(REQUEST)
        wav = Path(tmp) / "request.wav"
        controller.write_wav(wav, speech.samples, speech.sample_rate)
        samples = load_audio(str(wav), SAMPLE_RATE)
        transcript = ""
        for i in range(repeats + 1):  # the first round is a warm-up and is not counted
            events = list(controller.run_turn(controller.new_session(), UserInput(audio=str(wav))))
            errors = [e.data for e in events if e.type == EventType.ERROR]
            if errors:
                print(f"turn failed: {errors}")
                return 1
            transcript = next(e.data["text"] for e in events if e.type == EventType.ASR_END)
            done = next(
                e.data
                for e in events
                if e.type == EventType.IMAGE_DONE and not e.data.get("focus_only")
            )
            tts_end = next(e for e in events if e.type == EventType.TTS_END)
            tts_start = next(e for e in events if e.type == EventType.TTS_START)
            references = {
                "ASR": plain_asr(controller, samples),
                "planning (understand + rewrite)": plain_planning(controller, transcript),
                "image": plain_image(controller, done),
            }
            if not i:
                for call in references.values():
                    if call is not None:
                        call()  # warm the plain paths too
                continue
            for name, value in stage_times(events).items():
                ours.setdefault(name, []).append(value)
            for name, call in references.items():
                if call is not None:
                    plain.setdefault(name, []).append(_timed(call)[0])
            plain.setdefault("TTS first chunk", []).append(tts_end.timestamp - tts_start.timestamp)
    load_after = os.getloadavg()
    _print_table(config, controller, report, transcript, ours, plain, load_before, load_after)
    return 0


def _print_table(config, controller, report, transcript, ours, plain, load_before, load_after):
    def med(values):
        return f"{statistics.median(values):.2f}" if values else "-"

    print(
        f"\nOne spoken turn, profile {config.profile!r}: ASR {config.asr.backend} "
        f"{config.asr.model}, LLM {config.rewrite.llm}, image {config.image.model!r} "
        f"{config.image.width}x{config.image.height}, voice {getattr(controller.tts, 'name', '')}"
    )
    print(
        f"machine: {len(os.sched_getaffinity(0))} cores, load average "
        f"{load_before[0]:.2f} before / {load_after[0]:.2f} after; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; RSS {resident_mb():.0f} MB"
    )
    print(f"request: {REQUEST!r}  heard: {transcript!r}\n")
    print("| stage | ours median s | min s | plain reference median s |")
    print("|---|---|---|---|")
    faster = type(getattr(resolve(controller.asr), "model", None)).__module__.startswith("faster")
    reference_names = {
        "ASR": "faster-whisper transcribe" if faster else "whisper.transcribe",
        "planning (understand + rewrite)": "grammar only",
        "image": "pipeline call",
        "TTS first chunk": "whole reply first",
    }
    for name, _, _ in STAGES:
        values = ours.get(name, [])
        if not values:
            continue
        ref = f"{med(plain[name])} ({reference_names[name]})" if plain.get(name) else "-"
        print(f"| {name} | {med(values)} | {min(values):.2f} | {ref} |")
    first = ours.get("first audio (acknowledgement)", [])
    if first:
        verdict = "meets" if statistics.median(first) < TARGET_S else "misses"
        print(f"\nend of speech to first audio {med(first)} s: {verdict} the {TARGET_S} s target")
    print("load times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items()))
