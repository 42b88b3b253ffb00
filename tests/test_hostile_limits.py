"""What one client can cost the server: time limits on slow connections, full queues, the
session cap, links that ignore the Host header, uploads fitted to the engine, transcriptions
that stop when their caller leaves, and audio decoded from the bytes sent and nothing else.
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi import FastAPI, Request
from PIL import Image

from tests.servers import served
from tests.speech import say

SLOW_S = 0.5  # the time limits under test, in seconds


# --- a real server with short time limits -------------------------------------------------------
@pytest.fixture(scope="module")
def slow_server():
    """A small app behind the gate, served by uvicorn with 0.5 s header/body/keep-alive limits."""

    from frontends.api_errors import install_error_handlers
    from frontends.api_gate import ApiGate
    from frontends.api_server import server_config

    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(ApiGate, api_key=None, max_body_bytes=2**20, body_timeout_s=SLOW_S)

    @app.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    settings = SimpleNamespace(header_timeout_s=SLOW_S, keep_alive_s=1.0)

    def make_config(port: int):
        return server_config(app, "127.0.0.1", port, settings, log_level="warning", lifespan="off")

    with served(app, make_config) as port:
        yield SimpleNamespace(port=port)


def connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.settimeout(5)
    return conn


def closed_within(conn: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within ``seconds``, and what it sent first."""
    conn.settimeout(seconds)
    received = b""
    try:
        while chunk := conn.recv(4096):
            received += chunk
    except TimeoutError:
        return False, received
    return True, received


def get_ping(port: int) -> bytes:
    with connect(port) as conn:
        conn.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return closed_within(conn, 5)[1]


def test_headers_that_never_finish_are_cut_off(slow_server):
    conns = [connect(slow_server.port) for _ in range(20)]
    for conn in conns:
        conn.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")  # ... and nothing more
    started = time.monotonic()
    assert all(closed_within(conn, 5 * SLOW_S)[0] for conn in conns)
    assert time.monotonic() - started < 5 * SLOW_S
    for conn in conns:
        conn.close()
    assert b"200 OK" in get_ping(slow_server.port)  # the server serves others meanwhile


def test_a_connection_that_sends_nothing_is_closed(slow_server):
    with connect(slow_server.port) as conn:
        assert closed_within(conn, 5 * SLOW_S)[0]


def test_a_body_that_never_arrives_is_a_408(slow_server):
    with connect(slow_server.port) as conn:
        conn.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 1000\r\n\r\n" + b"x" * 10
        )
        closed, reply = closed_within(conn, 6 * SLOW_S)
    assert closed and reply.startswith(b"HTTP/1.1 408")
    assert b'"request-timeout"' in reply
    assert b"200 OK" in get_ping(slow_server.port)


def test_idle_kept_alive_connections_are_closed(slow_server):
    with connect(slow_server.port) as conn:
        conn.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in conn.recv(4096)
        assert closed_within(conn, 4.0)[0]  # keep_alive_s = 1 s


def test_a_whole_body_in_time_is_served(slow_server):
    with connect(slow_server.port) as conn:
        conn.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
        )
        assert b'{"bytes":5}' in closed_within(conn, 5)[1]


# --- the API's own limits ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def controller(tiny_config):
    from assistant.build import build_controller

    return build_controller(tiny_config)[0]


def api_client(controller, tiny_config, **api_settings):
    from fastapi.testclient import TestClient

    from frontends.api import create_app

    settings = tiny_config.api.model_copy(update=api_settings)
    return TestClient(create_app(controller, settings=settings))


SMALL_IMAGE = {"prompt": "a barn", "size": "64x64", "steps": 1}


def test_a_full_image_queue_answers_429_with_retry_after(controller, tiny_config):
    with api_client(controller, tiny_config, max_queued=2) as client:
        queue = client.app.state.limits.queue("image")
        queue.enter()
        queue.enter()  # both places taken, as by two long pictures
        busy = client.post("/v1/images/generations", json=SMALL_IMAGE)
        assert busy.status_code == 429 and busy.json()["error"]["code"] == "server-busy"
        assert int(busy.headers["retry-after"]) >= 1
        assert busy.headers["x-should-retry"] == "true"
        assert client.get("/health").status_code == 200  # cheap requests still answered
        queue.leave()
        assert client.post("/v1/images/generations", json=SMALL_IMAGE).status_code == 200
        assert queue.admitted == 1  # the finished job gave its place back


def test_a_full_turn_queue_refuses_before_the_turn_starts(controller, tiny_config):
    with api_client(controller, tiny_config, max_queued=1) as client:
        session = client.post("/v1/sessions").json()["session_id"]
        queue = client.app.state.limits.queue("turn")
        queue.enter()
        busy = client.post(f"/v1/sessions/{session}/turns", json={"text": "draw a barn"})
        assert busy.status_code == 429 and busy.headers["retry-after"]
        assert client.get(f"/v1/sessions/{session}").json()["turns"] == 0  # nothing ran
        queue.leave()
        done = client.post(f"/v1/sessions/{session}/turns", json={"text": "draw a barn"})
        assert done.json()["events"][-1]["data"]["ok"] and queue.admitted == 0


def test_sessions_are_capped_and_unused_ones_expire(controller, tiny_config):
    with api_client(controller, tiny_config, max_sessions=3, session_idle_s=0.3) as client:
        ids = [client.post("/v1/sessions").json()["session_id"] for _ in range(3)]
        full = client.post("/v1/sessions")
        assert full.status_code == 429 and full.json()["error"]["code"] == "too-many-sessions"
        assert "api.max_sessions" in full.json()["error"]["message"]
        assert int(full.headers["retry-after"]) >= 1
        time.sleep(0.4)
        assert client.post("/v1/sessions").status_code == 201  # the idle ones left memory
        assert client.get(f"/v1/sessions/{ids[0]}").status_code == 200  # ... not the store


def test_links_come_from_public_url_not_the_host_header(controller, tiny_config):
    body = {**SMALL_IMAGE, "response_format": "url"}
    evil = {"Host": "evil.example"}
    with api_client(controller, tiny_config) as client:
        url = client.post("/v1/images/generations", json=body, headers=evil).json()
        assert url["data"][0]["url"].startswith("http://testserver/v1/files/")
    public = "https://pictures.example.org/assistant"
    with api_client(controller, tiny_config, public_url=public) as client:
        url = client.post("/v1/images/generations", json=body, headers=evil).json()
        assert url["data"][0]["url"].startswith(public + "/v1/files/")
        session = client.post("/v1/sessions").json()["session_id"]
        events = client.post(
            f"/v1/sessions/{session}/turns", json={"text": "draw a barn"}, headers=evil
        ).json()["events"]
        links = [e["data"]["url"] for e in events if "url" in e["data"]]
        assert links and all(link.startswith(public + "/v1/sessions/") for link in links)
        assert "evil.example" not in str(events)


def test_a_phone_photo_in_a_turn_becomes_an_editable_picture_of_its_real_size(
    controller, tiny_config
):
    buffer = io.BytesIO()
    Image.new("RGB", (4032, 3024), (90, 120, 200)).save(buffer, format="JPEG")
    with api_client(controller, tiny_config) as client:
        session = client.post("/v1/sessions").json()["session_id"]
        turns = f"/v1/sessions/{session}/turns"
        first = client.post(
            turns,
            data={"text": "make it darker"},
            files={"image": ("photo.jpg", buffer.getvalue(), "image/jpeg")},
        ).json()["events"]
        assert first[-1]["data"]["ok"], [e for e in first if e["type"] == "error"]
        upload, edited = client.get(f"/v1/sessions/{session}").json()["nodes"]
        assert upload["operation"] == "upload"
        assert (upload["width"], upload["height"]) == (2048, 1536)
        stored = Image.open(io.BytesIO(client.get(f"{turns[:-6]}/images/{upload['id']}").content))
        assert stored.size == (2048, 1536)  # the recorded size is the real one
        # ... so the edit of it worked (before, a node that said 2048x2048 failed every edit).
        assert edited["parent_id"] == upload["id"]
        assert (edited["width"], edited["height"]) == (2048, 1536)


def test_transcription_stops_when_its_caller_leaves(controller, tmp_path):
    from voice.asr_cancel import cancellable
    from voice.errors import VoiceError

    asr = controller.asr
    long_request = " ".join(["Draw a lighthouse on a cliff at night, with waves below."] * 6)
    audio = say(long_request, tmp_path / "long.wav").read_bytes()
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.perf_counter()
    with pytest.raises(VoiceError) as err, cancellable(asr, cancel):
        asr.transcribe(audio)
    stopped_after = time.perf_counter() - started
    assert err.value.code == "asr-cancelled"
    # Uncancelled, this decode takes several seconds on a CPU; it stopped within one token.
    assert stopped_after < 2.0, stopped_after
    short = say("Draw a lighthouse.", tmp_path / "short.wav").read_bytes()
    with cancellable(asr, threading.Event()):  # the next caller is not affected
        heard = asr.transcribe(short).text.lower().replace(" ", "")  # or "light house"
        assert "lighthouse" in heard


# --- audio: only the bytes sent ------------------------------------------------------------------
def test_a_playlist_upload_never_reads_the_file_it_names(controller, tmp_path):
    """The attack works against a plain ``ffmpeg -i``; our decoder refuses the playlist, and
    the named file's own bytes still transcribe (so the words could have come back)."""
    from voice.audio import load_audio
    from voice.errors import VoiceError

    secret = say("Draw a lighthouse on a cliff at night.", tmp_path / "secret.wav")
    playlist = tmp_path / "upload.bin"
    playlist.write_bytes(b"ffconcat version 1.0\nfile secret.wav\n")  # beside the upload
    if shutil.which("ffmpeg"):
        plain = subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(playlist), "-f", "f32le", "-"],
            capture_output=True,
            timeout=60,
        )
        assert len(plain.stdout) > 16000  # a plain ffmpeg -i decodes the other file
    for source in (playlist, playlist.read_bytes()):
        with pytest.raises(VoiceError) as err:
            load_audio(source)
        assert err.value.code == "audio-invalid" and "secret" not in err.value.message
    assert "lighthouse" in controller.asr.transcribe(secret.read_bytes()).text.lower()


@pytest.mark.parametrize("codec", [("libmp3lame", "mp3"), ("libopus", "webm"), ("aac", "m4a")])
def test_accepted_formats_decode_from_their_bytes(tmp_path, codec):
    from voice.audio import load_audio

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    encoder, suffix = codec
    path = tmp_path / f"tone.{suffix}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "sine=frequency=440:duration=40", "-c:a", encoder, str(path)],
        check=True,
        timeout=60,
    )  # fmt: skip
    samples = load_audio(path.read_bytes())
    assert abs(samples.size / 16000 - 40.0) < 0.2  # M4A's index at the end: read in full
    assert np.sqrt(np.mean(samples**2)) > 0.05  # lavfi sine: amplitude 1/8


def test_control_characters_are_removed_and_nul_refused():
    from common.text import TextInputError, clean_text

    assert clean_text("a\x1b[31mred\x07 barn\r\nok\x7f\x9b\tend") == "a[31mred barn\nok\tend"
    with pytest.raises(TextInputError) as err:
        clean_text("draw\x00", "prompt")
    assert err.value.code == "input-invalid" and "`prompt`" in err.value.message


# --- sessions expire from disk, live ones never --------------------------------------------------
def _age(store, session_id: str, seconds: float) -> None:
    """Make a stored session look unchanged for ``seconds``."""
    store._db.execute(
        "UPDATE sessions SET updated = ? WHERE id = ?", (time.time() - seconds, session_id)
    )


def test_expired_sessions_lose_their_files_and_live_ones_keep_every_picture(
    controller, tiny_config, monkeypatch
):
    import os

    import frontends.api_sessions as api_sessions

    monkeypatch.setattr(api_sessions, "SWEEP_EVERY_S", 0.0)  # look on every new session
    keep_s, idle_s = 3600.0, 0.5
    api_files = controller.output_dir / "api"
    with api_client(
        controller, tiny_config, session_keep_s=keep_s, session_idle_s=idle_s
    ) as client:
        ids = []
        for _ in range(2):
            session = client.post("/v1/sessions").json()["session_id"]
            events = client.post(f"/v1/sessions/{session}/turns", json={"text": "draw a barn"})
            assert events.json()["events"][-1]["data"]["ok"]
            ids.append(session)
        old, live = ids
        old_folder, live_folder = (controller.output_dir / i for i in ids)
        assert any(old_folder.glob("*.png")) and any(old_folder.glob("turn-*-reply.wav"))
        live_node = client.get(f"/v1/sessions/{live}").json()["nodes"][0]
        live_files = sorted(p.name for p in live_folder.iterdir())
        stale_file, fresh_file = api_files / "stale.png", api_files / "fresh.png"
        for path in (stale_file, fresh_file):
            path.write_bytes(b"png")
        os.utime(stale_file, (time.time() - 2 * keep_s,) * 2)
        for session in ids:  # both unchanged for two hours...
            _age(controller.store, session, 2 * keep_s)
        time.sleep(idle_s + 0.1)
        client.get(f"/v1/sessions/{live}")  # ... but this one is in use
        assert client.post("/v1/sessions").status_code == 201  # the sweep runs here
        assert not old_folder.exists()  # pictures and spoken replies gone with the row
        gone = client.get(f"/v1/sessions/{old}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "session-not-found"
        picture = client.get(f"/v1/sessions/{live}/images/{live_node['id']}")
        assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
        assert sorted(p.name for p in live_folder.iterdir()) == live_files  # nothing went
        assert not stale_file.exists() and fresh_file.exists()
        next_turn = client.post(f"/v1/sessions/{live}/turns", json={"text": "make it darker"})
        assert next_turn.json()["events"][-1]["data"]["ok"]  # the live session goes on
    fresh_file.unlink()


def test_expiry_never_deletes_a_folder_that_is_not_the_sessions_own(tmp_path):
    from assistant.expiry import expire_sessions
    from assistant.state import DialogueState
    from assistant.store import SessionStore

    outputs = tmp_path / "outputs"
    own, shared = outputs / "a1b2c3", tmp_path / "elsewhere"
    for folder in (own, shared):
        folder.mkdir(parents=True)
        (folder / "n1.png").write_bytes(b"png")
    store = SessionStore(outputs / "sessions.sqlite3")
    store.save_state("a1b2c3", own, DialogueState())
    store.save_state("d4e5f6", shared, DialogueState())  # a row naming another folder
    store.save_state("0a0b0c", outputs, DialogueState())  # ... or the outputs folder itself
    store.save_state("fresh1", outputs / "fresh1", DialogueState())
    for session in ("a1b2c3", "d4e5f6", "0a0b0c"):
        _age(store, session, 100.0)
    deleted = expire_sessions(store, outputs, older_than_s=50.0, keep={"0a0b0c"})
    assert sorted(deleted) == ["a1b2c3", "d4e5f6"]
    assert not own.exists()
    assert (shared / "n1.png").exists() and outputs.is_dir()  # rows gone, files kept
    assert sorted(store.session_ids()) == ["0a0b0c", "fresh1"]


# --- what one turn may cost ----------------------------------------------------------------------
def _turn(controller, session, text: str) -> list:
    from assistant.controller import UserInput

    return list(controller.run_turn(session, UserInput(text=text)))


def test_a_turn_over_the_budget_is_refused_with_what_would_fit(controller):
    from assistant.events import EventType

    session = controller.new_session()
    controller.update_settings(session, width=2048, height=2048, steps=150)
    events = _turn(controller, session, "draw a red barn in the snow")
    errors = [e.data for e in events if e.type == EventType.ERROR]
    assert [e["code"] for e in errors] == ["budget-exceeded"]
    assert "api.cost_budget" in errors[0]["message"] and "at most 6 steps" in errors[0]["message"]
    assert not any(e.type == EventType.IMAGE_START for e in events)  # refused before drawing
    assert not session.state.nodes and not list(session.folder.glob("*.png"))
    reply = next(e.payload for e in events if e.type == EventType.REPLY)
    assert "megapixel-steps" in reply.text
    controller.update_settings(session, steps=None, width=None, height=None)
    again = _turn(controller, session, "draw a red barn in the snow")
    assert again[-1].payload.ok and len(session.state.nodes) == 1  # the next turn works


def test_a_turn_that_asks_for_several_pictures_counts_them_all(controller):
    from assistant.events import EventType

    budget = controller.budget.megapixel_steps
    session = controller.new_session()
    # One 512x512 picture fits; four of them at these steps do not.
    steps = int(budget * 1e6 / (512 * 512 * 4)) + 1
    controller.update_settings(session, width=512, height=512, steps=steps)
    assert _turn(controller, session, "draw a red barn")[-1].payload.ok
    events = _turn(controller, session, "show me 4 variations")
    plan = next(e.payload.plan for e in events if e.type == EventType.PLAN)
    assert plan.count == 4
    codes = [e.data["code"] for e in events if e.type == EventType.ERROR]
    assert codes == ["budget-exceeded"] and len(session.state.nodes) == 1
    assert _turn(controller, session, "show me a variation")[-1].payload.ok
