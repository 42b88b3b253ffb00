"""`run_assistant.py once`: run requests as turns of one session, print the events, write files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from assistant.build import build_controller
from assistant.config import Config
from assistant.controller import UserInput
from assistant.events import Event, EventType


def describe(event: Event) -> str | None:
    """One human line for an event (None for the chatty ones)."""
    d = event.data
    match event.type:
        case EventType.TURN_START:
            return f"── turn {d['turn']} ({d['input']})"
        case EventType.ASR_END:
            return (
                f"heard: {d['text']!r} [{d['language']}, confidence {d['confidence']:.2f}, "
                f"{d['seconds']:.2f} s]"
            )
        case EventType.TRANSLATION:
            return f"read as: {d['text']!r} [{d['language']} → en, by {d['via']}]"
        case EventType.PLAN:
            line = f"plan: {d['intent']}"
            if d.get("prompt"):
                line += f" | prompt: {d['prompt']} | negative: {d['negative_prompt']}"
                line += f" | by {d['rewriter']}"
            return line
        case EventType.IMAGE_PROGRESS:
            return None
        case EventType.IMAGE_DONE:
            if d.get("focus_only"):
                return f"now showing: {d.get('node_id') or 'nothing'}"
            return (
                f"image: {d['path']} (seed {d['seed']}, {d['steps']} steps, "
                f"{d.get('seconds', 0):.2f} s)"
            )
        case EventType.REPLY:
            return f"reply: {d['text']}"
        case EventType.TTS_END:
            return f"speech: {d['path']} ({d['seconds']:.1f} s of audio)" if d["path"] else None
        case EventType.ERROR:
            return f"error [{d['code']}]: {d['message']}"
        case EventType.TURN_END:
            return f"── done in {d['seconds']:.2f} s" + ("" if d["ok"] else f" ({d['code']})")
    return None


def run_once(
    config: Config,
    texts: list[str],
    audio: list[Path],
    out: Path | None = None,
    as_json: bool = False,
    speak: bool = True,
) -> int:
    """Run every request in order as one session; returns 0 if every turn succeeded."""
    if not texts and not audio:
        print('error: give a request, e.g. once "draw a lighthouse", or --audio FILE')
        return 2
    if out is not None:
        config.output_dir = out
    controller, report = build_controller(config, with_asr=bool(audio), with_tts=speak)
    for notice in report.notices:
        print(f"note: {notice}")
    session = controller.new_session()
    inputs = [UserInput(audio=str(a)) for a in audio] + [UserInput(text=t) for t in texts]
    all_ok = True
    for user_input in inputs:
        last_image = reply = None
        for event in controller.run_turn(session, user_input):
            line = json.dumps(event.to_json()) if as_json else describe(event)
            if line:
                print(line, flush=True)
            if event.type == EventType.IMAGE_DONE and event.data.get("path"):
                last_image = event.data["path"]
            if event.type == EventType.REPLY:
                reply = event.data["text"]
            if event.type == EventType.TURN_END:
                all_ok = all_ok and event.data["ok"]
        _write_latest(session.folder, last_image, reply)
    if not as_json:
        print(f"files: {session.folder}")
    return 0 if all_ok else 1


def _write_latest(folder: Path, image: str | None, reply: str | None) -> None:
    """Keep latest.png / reply.txt beside the numbered files, for scripts that want one name."""
    folder.mkdir(parents=True, exist_ok=True)
    if image:
        shutil.copyfile(image, folder / "latest.png")
    if reply is not None:
        (folder / "reply.txt").write_text(reply + "\n")
