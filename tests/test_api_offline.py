"""The HTTP API as issue 11 asks of it, checked the way a client sees it.

/docs and /redoc work with no network (their assets come from this server); speech defaults
to mp3 like OpenAI's and the stock ``openai`` client decodes it to audible speech; a reply's
speech link still answers after a restart; a session whose picture file was deleted keeps
working and overwrites nothing; a client that leaves mid-turn leaves no reply WAV and no
more work; no server path reaches a client; ``language`` is honoured per request.

Tiny profile (tiny random image model, real Whisper and Piper), served by uvicorn on
loopback as ``tests/test_api.py`` does.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from tests.servers import served
from tests.speech import say
from tests.test_api import read_sse

TIMEOUT_S = 60.0


@contextmanager
def served_url(app):
    """``app`` on a free loopback port, in a background uvicorn; yields its base URL."""
    with served(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def api(tiny_config):
    from assistant.build import build_controller
    from frontends.api import create_app

    controller, _ = build_controller(tiny_config)
    app = create_app(controller)
    with (
        served_url(app) as url,
        httpx.Client(base_url=url, timeout=TIMEOUT_S, trust_env=False) as h,
    ):
        yield SimpleNamespace(url=url, app=app, controller=controller, http=h, config=tiny_config)


def turn(http: httpx.Client, session_id: str, text: str) -> list[dict]:
    response = http.post(f"/v1/sessions/{session_id}/turns", json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()["events"]


def new_session(http: httpx.Client) -> str:
    response = http.post("/v1/sessions")
    assert response.status_code == 201
    return response.json()["session_id"]


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e["data"] for e in events if e["type"] == kind]


# --- 1. /docs offline -----------------------------------------------------------------------
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_this_server(api, page):
    html = api.http.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    refs = [a or b for a, b in ASSET.findall(html.text)]
    assert refs, "the page references no script or style"
    assert not [r for r in refs if urlparse(r).netloc], f"links off this server: {refs}"
    assert "cdn" not in html.text.lower()
    kinds = set()
    for ref in refs:
        if ref.endswith("openapi.json"):
            continue
        asset = api.http.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 1000, ref
        kinds.add(asset.headers["content-type"].split(";")[0])
    assert "text/javascript" in kinds or "application/javascript" in kinds
    if page == "/docs":
        assert "text/css" in kinds


def test_docs_render_the_operations_in_chromium_with_no_network(api):
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def only_this_server(route):
                if route.request.url.startswith(api.url):
                    return route.continue_()
                blocked.append(route.request.url)
                return route.abort()

            page.route("**/*", only_this_server)
            page.goto(f"{api.url}/docs")
            page.wait_for_selector(".opblock", timeout=30000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert not blocked, f"the page asked for: {blocked}"
    flat = [p.replace("\u200b", "") for p in paths]
    assert "/v1/audio/speech" in flat and "/v1/sessions/{session_id}/turns" in flat


# --- 2. speech is mp3 by default --------------------------------------------------------------
def test_speech_defaults_to_mp3_that_decodes_to_speech(api):
    with openai.OpenAI(
        base_url=f"{api.url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=TIMEOUT_S,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    ) as client:
        response = client.audio.speech.create(
            model="tts-1", voice="alloy", input="Paint the red barn and/or the blue boat."
        )
        data = response.content
        assert response.response.headers["content-type"] == "audio/mpeg"
        assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0), data[:4]
        samples, rate = sf.read(io.BytesIO(data), dtype="float32")  # libsndfile decodes MP3
        assert len(samples) / rate > 1.0
        assert np.sqrt(np.mean(samples**2)) > 0.01  # not silence
        # The words sent are the words spoken (a client's text is not rewritten as a reply).
        heard = client.audio.transcriptions.create(
            model="whisper-1", file=("speech.mp3", data, "audio/mpeg"), language="en"
        ).text.lower()
    assert "barn" in heard and "boat" in heard and "outputs" not in heard, heard


# --- 3. speech links survive a restart -------------------------------------------------------
def test_speech_link_answers_the_same_audio_after_a_restart(api):
    from assistant.build import build_controller
    from frontends.api import create_app

    session_id = new_session(api.http)
    events = turn(api.http, session_id, "draw a red barn")
    [ended] = of_type(events, "tts.end")
    link = ended["url"]
    before = api.http.get(link)
    assert before.status_code == 200 and before.headers["content-type"] == "audio/wav"
    path = urlparse(link).path

    controller, _ = build_controller(api.config)  # a new process would build the same
    with (
        served_url(create_app(controller)) as url,
        httpx.Client(base_url=url, timeout=TIMEOUT_S, trust_env=False) as http,
    ):
        after = http.get(path)
        assert after.status_code == 200, after.text
        assert after.content == before.content
        missing = http.get(path.rsplit("/", 1)[0] + "/99")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "file-not-found"


# --- 4. a deleted picture file ---------------------------------------------------------------
def test_a_deleted_picture_file_breaks_nothing_and_overwrites_nothing(api):
    session_id = new_session(api.http)
    turn(api.http, session_id, "draw a red barn")
    turn(api.http, session_id, "draw a blue boat on a lake")
    view = api.http.get(f"/v1/sessions/{session_id}").json()
    first, second = (n["id"] for n in view["nodes"])
    folder = Path(api.controller.output_dir) / session_id
    (folder / f"{first}.png").unlink()
    kept = (folder / f"{second}.png").read_bytes()
    # Files that are no node of this session, where the next pictures would go by count.
    strays = {folder / f"n{i}.png": f"stray {i}".encode() for i in range(3, 7)}
    for stray, data in strays.items():
        if not stray.exists():
            stray.write_bytes(data)
        else:
            strays[stray] = stray.read_bytes()

    edited = turn(api.http, session_id, "make it darker")  # the focus is the second picture
    assert not of_type(edited, "error"), of_type(edited, "error")
    drawn = turn(api.http, session_id, "draw a green tree on a hill")
    assert not of_type(drawn, "error"), of_type(drawn, "error")

    view = api.http.get(f"/v1/sessions/{session_id}").json()
    ids = [n["id"] for n in view["nodes"]]
    assert len(ids) == len(set(ids)) == 4
    assert (folder / f"{second}.png").read_bytes() == kept
    for stray, data in strays.items():
        assert stray.read_bytes() == data, f"{stray.name} was overwritten"
    for node in view["nodes"][2:]:
        image = api.http.get(node["url"])
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.content != kept
    missing = api.http.get(f"/v1/sessions/{session_id}/images/{first}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "node-not-found"


# --- 5. a client that leaves mid-turn ---------------------------------------------------------
class SlowEngine:
    """The tiny engine, but a picture takes up to 30 s of steps unless cancelled."""

    def __init__(self, engine):
        self.engine = engine
        self.started = threading.Event()
        self.cancelled = threading.Event()

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, request, on_progress=None, cancel=None):
        from pipelines.errors import ImageError

        self.started.set()
        for step in range(300):
            if cancel is not None and cancel.is_set():
                self.cancelled.set()
                raise ImageError("image-cancelled", "The image was cancelled.")
            if on_progress is not None:
                on_progress(step, 300)
            time.sleep(0.1)
        return self.engine.generate(request, on_progress=on_progress, cancel=cancel)


@pytest.mark.parametrize("mode", ["sse", "json"])
def test_a_client_that_leaves_mid_turn_leaves_no_reply_and_no_work(api, monkeypatch, mode):
    controller = api.controller
    slow = SlowEngine(controller.image_engine)
    monkeypatch.setattr(controller, "engine_for", lambda session: slow)
    spoken: list[str] = []
    real_stream = controller.tts.stream
    monkeypatch.setattr(
        controller.tts, "stream", lambda text, *a, **k: (spoken.append(text), real_stream(text))[1]
    )
    session_id = new_session(api.http)
    folder = Path(controller.output_dir) / session_id
    if mode == "sse":
        with api.http.stream(
            "POST",
            f"/v1/sessions/{session_id}/turns?stream=true",
            json={"text": "draw a lighthouse at night"},
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line == "event: image.progress":
                    break  # the picture is being drawn: leave
    else:  # a JSON client that gives up waiting (its connection closes)
        timeout = httpx.Timeout(TIMEOUT_S, read=1.5)
        with httpx.Client(base_url=api.url, timeout=timeout, trust_env=False) as impatient:
            with pytest.raises(httpx.ReadTimeout):
                impatient.post(
                    f"/v1/sessions/{session_id}/turns", json={"text": "draw a lighthouse at night"}
                )
        assert slow.started.is_set()
    assert slow.cancelled.wait(10), "the picture was still being drawn after the client left"
    time.sleep(1.0)  # time for the turn to (wrongly) go on to its reply
    assert not list(folder.glob("*.wav")), list(folder.glob("*"))
    assert not list(folder.glob("n*.png"))
    assert spoken == []
    monkeypatch.undo()
    # The session carries on, and its next turn is spoken.
    events = turn(api.http, session_id, "draw a red barn")
    assert of_type(events, "image.done") and of_type(events, "tts.end")
    assert len(list(folder.glob("*.wav"))) == 1


# --- 6. no server path reaches a client -------------------------------------------------------
def test_no_server_path_or_setting_name_reaches_a_client(api, monkeypatch, tmp_path):
    spoken: list[str] = []
    tts = api.controller.tts
    real_stream = tts.stream
    monkeypatch.setattr(
        tts, "stream", lambda text, *a, **k: (spoken.append(text), real_stream(text))[1]
    )
    session_id = new_session(api.http)
    bodies = []
    for text in ("draw a red barn", "make it darker", "undo", "upscale it", "\x00", "x" * 5000):
        response = api.http.post(f"/v1/sessions/{session_id}/turns", json={"text": text})
        bodies.append(response.text)
    with api.http.stream(
        "POST", f"/v1/sessions/{session_id}/turns?stream=true", json={"text": "make it blue"}
    ) as response:
        events = read_sse(response)
        bodies.append(json.dumps(events))
    noise = tmp_path / "noise.wav"
    sf.write(noise, np.random.default_rng(0).normal(0, 0.3, 16000).astype("float32"), 16000)
    with noise.open("rb") as f:
        response = api.http.post(
            f"/v1/sessions/{session_id}/turns", files={"audio": ("noise.wav", f, "audio/wav")}
        )
    bodies.append(response.text)
    assert any('"type":"error"' in b or '"type": "error"' in b for b in bodies)
    bodies.append(api.http.get(f"/v1/sessions/{session_id}").text)
    bodies.append(api.http.get("/health").text)

    secret = [
        str(Path(api.controller.output_dir)),
        str(Path(api.config.data_dir).expanduser().resolve()),
        str(Path(tempfile.gettempdir())) + "/",
        str(Path.home()) + "/",
    ]
    for body in bodies:
        for s in secret:
            assert s not in body, f"{s!r} reached a client: {body[:300]}"
    setting = re.compile(r"\b(asr|rewrite|image|tts|voice|ui|api)\.[a-z_]+\b")
    assert spoken, "no reply was spoken"
    # A shown reply names a setting (the upscale: "(image.upscaler_model)"); none is said.
    assert setting.search(" ".join(bodies)), "no reply named a setting: the check is idle"
    for text in spoken:
        assert not setting.search(text), text
        assert "/" not in text, text


# --- 7. language per request ------------------------------------------------------------------
def test_transcription_honours_language_per_request(api, tmp_path):
    clip = say("Draw a red barn by the sea.", tmp_path / "barn.wav")
    with clip.open("rb") as f:
        audio = f.read()

    def transcribe(language: str) -> httpx.Response:
        return api.http.post(
            "/v1/audio/transcriptions",
            files={"file": ("barn.wav", audio, "audio/wav")},
            data={"language": language, "response_format": "verbose_json"},
        )

    english = transcribe("en")
    assert english.status_code == 200, english.text
    assert english.json()["language"] == "en"
    assert "red barn" in english.json()["text"].lower()
    forced = transcribe("fr")  # honoured, not refused nor ignored: Whisper decodes in French
    assert forced.status_code == 200, forced.text
    assert forced.json()["language"] == "fr"
    bad = transcribe("klingon")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "input-invalid"
    assert bad.json()["error"]["param"] == "language"
    assert transcribe("auto").status_code == 200


def test_a_turn_takes_the_language_the_person_speaks(api, tmp_path):
    clip = say("Draw a red barn by the sea.", tmp_path / "barn.wav").read_bytes()
    session_id = new_session(api.http)

    def spoken_turn(**fields: str) -> httpx.Response:
        return api.http.post(
            f"/v1/sessions/{session_id}/turns",
            files={"audio": ("barn.wav", clip, "audio/wav")},
            data=fields,
        )

    bad = spoken_turn(language="klingon")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "language"
    forced = spoken_turn(language="fr")  # honoured: Whisper hears it as French
    assert forced.status_code == 200, forced.text
    [heard] = of_type(forced.json()["events"], "asr.end")
    assert heard["language"] == "fr", heard
    english = spoken_turn(language="en")
    [heard] = of_type(english.json()["events"], "asr.end")
    assert heard["language"] == "en" and "red barn" in heard["text"].lower(), heard
    kept = spoken_turn()  # the setting stays for the session's later turns
    [heard] = of_type(kept.json()["events"], "asr.end")
    assert heard["language"] == "en", heard
    typed = api.http.post(
        f"/v1/sessions/{session_id}/turns", json={"text": "make it darker", "language": "auto"}
    )
    assert typed.status_code == 200 and of_type(typed.json()["events"], "image.done")
