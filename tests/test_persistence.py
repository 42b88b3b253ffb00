"""Sessions survive a restart (of the API server process too), and a process killed
mid-generation loses nothing finished."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

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


# --- a real restart: the API server process is killed and started again --------------------
SERVER_START_S = 180.0  # loading the tiny profile on a busy 2-core machine
HTTP_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _api_server(out: Path, data: Path, log: Path) -> Iterator[httpx.Client]:
    """``run_assistant.py serve`` (tiny profile, no speech output) in its own process on
    ``out``; yields a client once /health answers; the process is killed with -9 on exit."""
    port = _free_port()
    command = [
        sys.executable,
        str(ROOT / "run_assistant.py"),
        "serve",
        "--profile",
        "tiny",
        "--set",
        f"output_dir={out}",
        "--set",
        f"data_dir={data}",
        "--set",
        "tts.enabled=false",
        "--port",
        str(port),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("ASSISTANT_API_KEY", None)
    with log.open("ab") as sink:
        server = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT_S, trust_env=False
        ) as http:
            deadline = time.monotonic() + SERVER_START_S
            while True:
                assert server.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"no /health:\n{log.read_text()[-3000:]}"
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
            yield http
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)  # no clean shutdown: what is stored is all
        server.wait(timeout=30)


def _images_done(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert events[-1]["type"] == "turn.end" and events[-1]["data"]["ok"], events
    return [e["data"] for e in events if e["type"] == "image.done" and not e["data"]["focus_only"]]


def test_a_killed_api_server_resumes_the_session_in_a_new_process(tmp_path, data_dir):
    """Draw through HTTP, kill the server, start another on the same folder: the history,
    the settings and the current picture are back, and "make it darker" edits that picture."""
    out, log = tmp_path / "outputs", tmp_path / "server.log"
    with _api_server(out, data_dir, log) as http:
        session_id = http.post("/v1/sessions").json()["session_id"]
        turns = f"/v1/sessions/{session_id}/turns"
        # `language` is a session setting (the spoken language), persisted with the session.
        (barn,) = _images_done(http.post(turns, json={"text": "draw a red barn", "language": "de"}))
        before = http.get(f"/v1/sessions/{session_id}").json()
        picture = http.get(barn["url"]).content
    assert before["focus"] == barn["node_id"]

    with _api_server(out, data_dir, log) as http:
        after = http.get(f"/v1/sessions/{session_id}").json()
        assert after["focus"] == barn["node_id"] and after["turns"] == 1
        assert [(x["user"], x["reply"]) for x in after["history"]] == [
            (x["user"], x["reply"]) for x in before["history"]
        ]
        assert [n["prompt"] for n in after["nodes"]] == [n["prompt"] for n in before["nodes"]]
        (node,) = after["nodes"]
        assert http.get(node["url"]).content == picture  # the same picture, served again

        (darker,) = _images_done(http.post(turns, json={"text": "make it darker"}))
        assert darker["parent_id"] == barn["node_id"] and darker["operation"] == "img2img"
        assert "red barn" in darker["prompt"]
        assert http.get(f"/v1/sessions/{session_id}").json()["focus"] == darker["node_id"]

    # The settings came back with the session: the edit turn saved them again, unchanged.
    store = SessionStore(out / "sessions.sqlite3")
    _, state, extra = store.load(session_id)
    store.close()
    assert extra["settings"].get("speech_language") == "de"
    assert [x.user for x in state.history] == ["draw a red barn", "make it darker"]
