"""Sessions survive a restart, and a process killed mid-generation loses nothing finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from assistant.controller import UserInput
from assistant.events import EventType
from assistant.store import SessionStore
from pipelines.metadata import read_png_params

ROOT = Path(__file__).resolve().parent.parent

# A child process: one finished image, then a long generation that the test kills with -9.
CHILD = textwrap.dedent("""
    import sys
    from assistant.build import build_controller
    from assistant.config import load_config
    from assistant.controller import UserInput
    out, data = sys.argv[1], sys.argv[2]
    config = load_config(profile="tiny", environ={}, overrides=[
        ("output_dir", out), ("data_dir", data), ("tts.enabled", False)])
    controller, _ = build_controller(config, with_asr=False)
    session = controller.new_session()
    for event in controller.run_turn(session, UserInput(text="a red kite over a beach")):
        pass
    print("FINISHED", session.id, flush=True)
    controller.defaults.steps, controller.defaults.width, controller.defaults.height = 150, 512, 512
    for event in controller.run_turn(session, UserInput(text="a green kite over a field")):
        if event.type == "image.progress":
            print("PROGRESS", event.data["step"], flush=True)
""")


def test_kill_mid_generation_then_resume(tmp_path, data_dir):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    session_id = None
    deadline = time.time() + 240
    try:
        for line in child.stdout:
            if line.startswith("FINISHED"):
                session_id = line.split()[1]
            if line.startswith("PROGRESS"):
                break  # the second image is half made: pull the plug
            assert time.time() < deadline
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert session_id, "the child never finished its first image"

    store = SessionStore(tmp_path / "sessions.sqlite3")
    folder, state, _ = store.load(session_id)
    assert list(state.nodes) == ["n1"]  # the finished image, nothing half-made
    node = state.nodes["n1"]
    assert state.current is node and "red kite" in read_png_params(node.path)["prompt"]
    assert [x.user for x in state.history] == ["a red kite over a beach"]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no torn files

    exported = store.export(session_id, tmp_path / "export")
    tree = json.loads((exported / "session.json").read_text())
    assert tree["focus"] == "n1" and (exported / "n1.png").exists()


def test_restarted_controller_resumes_and_edits(tiny_config, tmp_path):
    from assistant.build import build_controller

    config = tiny_config.model_copy(deep=True)
    config.output_dir = tmp_path
    config.tts.enabled = False
    controller, _ = build_controller(config, with_asr=False)
    session = controller.new_session()
    list(controller.run_turn(session, UserInput(text="a wooden boat")))
    list(controller.run_turn(session, UserInput(text="make it stormier")))
    list(controller.run_turn(session, UserInput(text="undo")))
    controller.store.close()

    again, _ = build_controller(config, with_asr=False)  # a fresh process would do the same
    resumed = again.resume(session.id)
    assert resumed.state.focus_id == "n1" and set(resumed.state.nodes) == {"n1", "n2"}
    assert resumed.state.can_redo
    events = list(again.run_turn(resumed, UserInput(text="make it sunnier")))
    (done,) = [e.data for e in events if e.type == EventType.IMAGE_DONE]
    assert done["node_id"] == "n3" and done["parent_id"] == "n1"
