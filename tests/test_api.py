"""The HTTP API, driven the way its users drive it: the official ``openai`` client, unchanged,
and plain HTTP for the conversational routes, against the app served by uvicorn on loopback.

Tiny profile (tiny random image model, real Whisper and Piper), one controller and one
server for the module. What is asserted is what a client would check: decodable PNGs of
the requested size that carry their parameters, the spoken words in a transcript, audible
speech, an edit whose parent is the previous image, the event stream, and errors that come
back as typed exceptions with our stable codes while the server carries on.
"""

from __future__ import annotations

import base64
import io
import json
from types import SimpleNamespace

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
from PIL import Image

from pipelines.metadata import read_png_params
from tests.servers import served
from tests.speech import say

API_KEY = "test-key-123"
MAX_UPLOAD_MB = 1.0  # small, so the 413 test sends little
REQUEST_TIMEOUT_S = 60.0
SSE = "text/event-stream"


@pytest.fixture(scope="module")
def api(tiny_config):
    """The app on a free loopback port in a background thread, stopped after the module."""
    from assistant.build import build_controller
    from frontends.api import create_app

    controller, _ = build_controller(tiny_config)
    app = create_app(controller, api_key=API_KEY, max_upload_mb=MAX_UPLOAD_MB)
    with served(app) as port:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", app=app, controller=controller)


def openai_client(api, key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{api.url}/v1",
        api_key=key,
        max_retries=0,
        timeout=REQUEST_TIMEOUT_S,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


@pytest.fixture(scope="module")
def client(api):
    with openai_client(api) as c:
        yield c


@pytest.fixture(scope="module")
def http(api):
    with httpx.Client(
        base_url=api.url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=REQUEST_TIMEOUT_S,
        trust_env=False,
    ) as c:
        yield c


def png_bytes(size=(64, 64), color=(200, 30, 30), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(b64: str) -> tuple[Image.Image, dict]:
    data = base64.b64decode(b64)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image, read_png_params(io.BytesIO(data))


# --- images ---------------------------------------------------------------------------------
def test_images_generate_returns_pngs_with_their_parameters(client, http):
    result = client.images.generate(
        prompt="a red barn in a snowy field",
        n=2,
        size="64x64",
        response_format="b64_json",
        extra_body={"seed": 41},
    )
    assert len(result.data) == 2 and result.size == "64x64"
    assert result.model_extra["model"] == "random:tiny" and result.model_extra["placeholder"]
    seeds = []
    for item in result.data:
        image, params = decode_png(item.b64_json)
        assert image.size == (64, 64)
        assert "red barn in a snowy field" in params["prompt"]  # rewritten, words kept
        assert item.revised_prompt == params["prompt"] and params["operation"] == "generate"
        assert params["seed"] == item.model_extra["seed"]
        seeds.append(params["seed"])
    assert seeds == [41, 42]  # each image its own seed

    # `url` links to the same kind of PNG on this server (behind the same key).
    linked = client.images.generate(
        prompt="a red barn",
        size="64x64",
        response_format="url",
        extra_body={"raw": True, "seed": 41},
    )
    (item,) = linked.data
    assert item.url.startswith(str(http.base_url.join("/v1/files/")))
    download = http.get(item.url)
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    params = read_png_params(io.BytesIO(download.content))
    assert params["prompt"] == item.revised_prompt == "a red barn"  # raw: no rewriting


def test_images_edit_redraws_the_upload_or_inpaints_the_masked_area(client):
    result = client.images.edit(
        image=("barn.png", png_bytes(), "image/png"), prompt="a darker barn at dusk", size="64x64"
    )
    image, params = decode_png(result.data[0].b64_json)
    assert image.size == (64, 64) and params["operation"] == "img2img"
    assert "darker barn at dusk" in params["prompt"] and params["strength"] == 0.6
    assert result.model_extra["notice"] is None

    # OpenAI's mask: transparent where to paint. Here: the left half only.
    mask = Image.new("RGBA", (72, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 36, 64))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    original = png_bytes((72, 64))
    masked = client.images.edit(
        image=("barn.png", original, "image/png"),
        mask=("mask.png", buffer.getvalue(), "image/png"),
        prompt="a barn",
    )
    image, params = decode_png(masked.data[0].b64_json)
    assert params["operation"] == "inpaint" and image.size == (72, 64)
    before = np.asarray(Image.open(io.BytesIO(original)).convert("RGB"))
    after = np.asarray(image.convert("RGB"))
    assert np.array_equal(before[:, 56:], after[:, 56:])  # far from the mask: kept exactly

    with pytest.raises(openai.BadRequestError) as info:
        client.images.edit(
            image=("barn.png", png_bytes(), "image/png"),
            mask=("mask.png", png_bytes((32, 32)), "image/png"),
            prompt="a barn",
        )
    assert info.value.code == "input-invalid" and "mask" in info.value.message


def test_bad_image_requests_get_input_invalid_and_the_next_one_works(client):
    for kwargs in (
        dict(prompt=""),
        dict(prompt="   "),
        dict(prompt="a cat", n=9),
        dict(prompt="a cat", size="65x64"),
        dict(prompt="a cat", size="big"),
    ):
        with pytest.raises(openai.BadRequestError) as info:
            client.images.generate(**kwargs)
        assert info.value.status_code == 400 and info.value.code == "input-invalid", kwargs
        assert info.value.body["type"] == "invalid_request_error" and info.value.message
    result = client.images.generate(prompt="a cat", size="64x64")
    assert decode_png(result.data[0].b64_json)[0].size == (64, 64)


# --- audio ----------------------------------------------------------------------------------
def test_transcription_hears_the_spoken_words(client, tmp_path):
    wav = say("Draw a lighthouse on a cliff at night.", tmp_path / "request.wav")
    result = client.audio.transcriptions.create(model="whisper-1", file=wav)
    for word in ("lighthouse", "cliff", "night"):
        assert word in result.text.lower()
    assert result.model_extra["language"] == "en" and result.usage.seconds > 1.0

    text = client.audio.transcriptions.create(model="whisper-1", file=wav, response_format="text")
    assert isinstance(text, str) and "lighthouse" in text.lower()


def test_corrupt_or_oversized_audio_is_refused_with_a_code(client):
    corrupt = b"RIFF\x10\x00\x00\x00WAVEfmt garbage" + bytes(range(256))
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=("bad.wav", corrupt))
    assert info.value.code == "audio-invalid"

    too_big = bytes(int(MAX_UPLOAD_MB * 2**20) + 1024)
    with pytest.raises(openai.APIStatusError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", too_big))
    assert info.value.status_code == 413 and info.value.code == "upload-too-large"


def test_speech_is_audible_wav(client):
    response = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Here is your red barn.", response_format="wav"
    )
    assert response.response.headers["content-type"] == "audio/wav"
    samples, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 24000 and len(samples) / rate > 0.5  # the default hibari voice
    assert np.sqrt(np.mean(samples**2)) > 0.01  # not silence

    for kwargs, param in (
        (dict(response_format="aac"), "response_format"),
        (dict(speed=2.0), "speed"),
    ):
        with pytest.raises(openai.BadRequestError) as info:
            client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", **kwargs)
        assert info.value.code == "input-invalid" and info.value.param == param


# --- the conversational turn ----------------------------------------------------------------
def read_sse(response: httpx.Response) -> list[dict]:
    """Parse a text/event-stream into the events' JSON, checking `event:` matches the type."""
    events, name, data = [], None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        elif not line and data:
            event = json.loads("\n".join(data))
            assert event["type"] == name
            events.append(event)
            name, data = None, []
    return events


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def images_done(events: list[dict]) -> list[dict]:
    return [e["data"] for e in events if e["type"] == "image.done"]


def test_conversation_draws_then_edits_and_streams_the_same_events(api, http):
    session_id = http.post("/v1/sessions").json()["session_id"]
    turns = f"/v1/sessions/{session_id}/turns"
    first = http.post(turns, json={"text": "draw a red barn"})
    assert first.status_code == 200
    events = first.json()["events"]
    assert types(events)[0] == "turn.start" and types(events)[-1] == "turn.end"
    assert events[-1]["data"]["ok"]
    (barn,) = images_done(events)
    picture = http.get(barn["url"])
    assert Image.open(io.BytesIO(picture.content)).size == (64, 64)
    assert "red barn" in read_png_params(io.BytesIO(picture.content))["prompt"]
    (speech_end,) = [e["data"] for e in events if e["type"] == "tts.end"]
    samples, rate = sf.read(io.BytesIO(http.get(speech_end["url"]).content))
    assert len(samples) / rate > 0.5

    # The edit, streamed as Server-Sent Events (?stream=true), starts from the first picture.
    with http.stream(
        "POST", turns, params={"stream": "true"}, json={"text": "make it darker"}
    ) as response:
        assert response.headers["content-type"].startswith(SSE)
        streamed = read_sse(response)
    assert types(streamed)[-1] == "turn.end" and streamed[-1]["data"]["ok"]
    (darker,) = images_done(streamed)
    assert darker["parent_id"] == barn["node_id"] and darker["operation"] == "img2img"

    # The same kind of turn answered as JSON has the same event types, in the same order.
    answered = http.post(turns, json={"text": "make it brighter"}).json()["events"]
    assert types(answered) == types(streamed)
    (brighter,) = images_done(answered)
    assert brighter["parent_id"] == darker["node_id"]

    # A multipart turn with a picture: the upload becomes a node and the request edits it.
    uploaded = http.post(
        turns,
        data={"text": "make it darker"},
        files={"image": ("mine.png", png_bytes((80, 64)), "image/png")},
    )
    upload, edited = images_done(uploaded.json()["events"])
    assert upload["focus_only"] and edited["parent_id"] == upload["node_id"]
    assert (edited["width"], edited["height"]) == (80, 64)

    tree = http.get(f"/v1/sessions/{session_id}").json()
    assert tree["focus"] == edited["node_id"] and tree["turns"] == 4
    nodes = {n["id"]: n for n in tree["nodes"]}
    assert len(nodes) == 5 and nodes[darker["node_id"]]["parent_id"] == barn["node_id"]
    assert [x["user"] for x in tree["history"]][:2] == ["draw a red barn", "make it darker"]

    # A new app on the same session store resumes the session (a server process killed and
    # started again: tests/test_persistence.py).
    from fastapi.testclient import TestClient

    from frontends.api import create_app

    with TestClient(create_app(api.controller, api_key=API_KEY)) as restarted:
        resumed = restarted.get(f"/v1/sessions/{session_id}", headers=http.headers).json()
    assert resumed["focus"] == tree["focus"]
    assert [n["prompt"] for n in resumed["nodes"]] == [n["prompt"] for n in tree["nodes"]]


def test_turn_errors_are_events_and_unknown_sessions_are_404(http):
    session_id = http.post("/v1/sessions").json()["session_id"]
    turns = f"/v1/sessions/{session_id}/turns"
    events = http.post(turns, json={"text": "  "}).json()["events"]
    (error,) = [e["data"] for e in events if e["type"] == "error"]
    assert error["code"] == "input-invalid" and not events[-1]["data"]["ok"]
    # Streamed because the client accepts text/event-stream: the same events.
    with http.stream("POST", turns, json={"text": "  "}, headers={"Accept": SSE}) as response:
        assert types(read_sse(response)) == types(events)

    corrupt = b"RIFF\x10\x00\x00\x00WAVEfmt garbage" + bytes(range(256))
    spoken = http.post(turns, files={"audio": ("bad.wav", corrupt, "audio/wav")}).json()
    (error,) = [e["data"] for e in spoken["events"] if e["type"] == "error"]
    assert error["code"] == "audio-invalid"
    assert http.get(f"/v1/sessions/{session_id}").json()["nodes"] == []  # nothing lost

    for body in ({"words": "hi"}, {}):
        bad_shape = http.post(turns, json=body)
        assert bad_shape.status_code == 400
        assert bad_shape.json()["error"]["code"] == "input-invalid"
    for path in ("/v1/sessions/nope", "/v1/sessions/nope/images/n1"):
        missing = http.get(path)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "session-not-found"
    missing = http.post("/v1/sessions/nope/turns", json={"text": "a cat"})
    assert missing.json()["error"]["code"] == "session-not-found"


# --- the gate, and the description ----------------------------------------------------------
def test_api_key_is_required_on_v1_routes_only(api):
    with httpx.Client(base_url=api.url, timeout=REQUEST_TIMEOUT_S, trust_env=False) as anon:
        refused = anon.post("/v1/sessions")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        health = anon.get("/health").json()
        assert health["placeholder"] and health["models"]["image"] == "random:tiny"
        assert health["auth"] and health["models"]["tts"]
        ok = anon.post("/v1/sessions", headers={"Authorization": f"Bearer {API_KEY}"})
        assert ok.status_code == 201
    with (
        openai_client(api, key="wrong") as wrong,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        wrong.images.generate(prompt="a cat")
    assert info.value.code == "unauthorized"


ROUTES = {  # every route the API offers: (method, path)
    ("post", "/v1/images/generations"),
    ("post", "/v1/images/edits"),
    ("get", "/v1/files/{name}"),
    ("post", "/v1/audio/transcriptions"),
    ("post", "/v1/audio/speech"),
    ("post", "/v1/sessions"),
    ("post", "/v1/sessions/{session_id}/turns"),
    ("get", "/v1/sessions/{session_id}"),
    ("get", "/v1/sessions/{session_id}/images/{node_id}"),
    ("get", "/v1/sessions/{session_id}/speech/{turn}"),
    ("get", "/health"),
}


def test_openapi_describes_every_route(api, http):
    spec = httpx.get(f"{api.url}/openapi.json", trust_env=False).json()
    described = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert described == ROUTES
    for method, path in ROUTES:
        operation = spec["paths"][path][method]
        assert operation["summary"] and operation["description"], path
        assert {"200", "201"} & set(operation["responses"]), path
        assert "422" not in operation["responses"], path  # validation errors are 400s
        if path.startswith("/v1/"):
            assert operation["security"] == [{"bearer": []}], path
            assert "401" in operation["responses"], path
    assert "ErrorResponse" in spec["components"]["schemas"]
    # The spec is not just words: each described route answers (here: unknown ids -> 404).
    for method, path in ROUTES:
        concrete = path.format(name="0" * 32 + ".png", session_id="nope", node_id="n1", turn=1)
        answer = http.request(method.upper(), concrete)
        assert answer.status_code != 405 and (
            answer.status_code != 404 or answer.json()["error"]["code"] != "not-found"
        )
    unknown = http.get("/v1/no-such-route")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not-found"
