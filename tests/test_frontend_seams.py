"""Front ends talk to the controller only through its verbs, never into its engines (issue 11).

The API is driven route by route (health, transcription, speech, image generation and
editing, a drawn and an edited turn) against a controller that refuses, and records, every
reach for an engine; the other front ends are checked in their source. Tiny profile (tiny
random image model, real Whisper and Piper), through FastAPI's TestClient.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import soundfile as sf
from PIL import Image

from tests.speech import say

ROOT = Path(__file__).resolve().parent.parent
# What the controller owns and a front end must not touch: the engines it was handed and the
# helpers that pick or write with them.
ENGINES = frozenset(
    {
        "image_engine",
        "rewriter",
        "asr",
        "tts",
        "save_png",
        "write_wav",
        "voice_for",
        "engine_for",
        "image_models",
        "voices",
        "planner",
        "router",
        "translator",
        "segmenter",
        "store",
    }
)
# Front ends whose source scan is skipped (none: every one is on the verbs).
NOT_YET_SEALED: set[str] = set()


class SealedController:
    """The controller as a front end may see it: verbs and settings, never an engine.

    A reach for an engine (or a private name) raises AttributeError and is recorded, so a
    ``getattr(controller, "tts", None)`` that swallows the error still fails the test.
    """

    def __init__(self, controller):
        object.__setattr__(self, "_controller", controller)
        object.__setattr__(self, "reached", [])

    def __getattr__(self, name: str):
        if name in ENGINES or (name.startswith("_") and not name.startswith("__")):
            self.reached.append(name)
            raise AttributeError(f"a front end reached past the controller into .{name}")
        return getattr(self._controller, name)

    def __setattr__(self, name: str, value) -> None:
        self.reached.append(f"{name}=")
        raise AttributeError(f"a front end set controller.{name}")


def png_bytes(size=(64, 64), color=(200, 30, 30), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def sealed(tiny_config):
    from assistant.build import build_controller

    controller, _ = build_controller(tiny_config)
    return SealedController(controller)


@pytest.fixture(scope="module")
def client(sealed):
    from fastapi.testclient import TestClient

    from frontends.api import create_app

    with TestClient(create_app(sealed)) as c:
        yield c


def test_the_api_serves_every_route_without_touching_an_engine(sealed, client, tmp_path):
    health = client.get("/health").json()
    assert health["models"] == {
        "image": "random:tiny",
        "rewriter": "rules",
        "asr": "whisper",
        "tts": health["models"]["tts"],
    }
    assert health["models"]["tts"] and health["placeholder"] and health["device"] == "cpu"

    wav = say("Draw a lighthouse on a cliff.", tmp_path / "request.wav")
    heard = client.post(
        "/v1/audio/transcriptions",
        files={"file": ("request.wav", wav.read_bytes(), "audio/wav")},
        data={"response_format": "verbose_json", "language": "en"},
    )
    assert heard.status_code == 200, heard.text
    assert "lighthouse" in heard.json()["text"].lower() and heard.json()["task"] == "transcribe"

    spoken = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "Here is your barn.", "response_format": "wav"},
    )
    assert spoken.status_code == 200, spoken.text
    assert spoken.headers["x-tts-voice"] == health["models"]["tts"]
    samples, rate = sf.read(io.BytesIO(spoken.content), dtype="float32")
    assert len(samples) / rate > 0.3

    drawn = client.post(
        "/v1/images/generations", json={"prompt": "a red barn", "size": "64x64", "seed": 7}
    )
    assert drawn.status_code == 200, drawn.text
    assert "red barn" in drawn.json()["data"][0]["revised_prompt"]  # the rewriter's prompt
    assert drawn.json()["model"] == "random:tiny"
    over = client.post(
        "/v1/images/generations", json={"prompt": "a barn", "size": "2048x2048", "n": 4}
    )
    assert over.status_code == 400 and over.json()["error"]["code"] == "budget-exceeded"

    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))  # transparent: repaint
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    edited = client.post(
        "/v1/images/edits",
        data={"prompt": "a blue door", "size": "64x64"},
        files={"image": ("in.png", png_bytes(), "image/png"), "mask": ("m.png", buffer.getvalue())},
    )
    assert edited.status_code == 200, edited.text

    session_id = client.post("/v1/sessions").json()["session_id"]
    turns = f"/v1/sessions/{session_id}/turns"
    first = client.post(turns, json={"text": "draw a red barn", "language": "en"}).json()
    second = client.post(turns, json={"text": "make it darker"}).json()
    [barn] = [e["data"] for e in first["events"] if e["type"] == "image.done"]
    [darker] = [e["data"] for e in second["events"] if e["type"] == "image.done"]
    assert darker["parent_id"] == barn["node_id"] and second["events"][-1]["data"]["ok"]

    assert sealed.reached == [], f"front ends reached into the controller's {sealed.reached}"


def test_speech_routes_say_model_missing_when_the_controller_has_none(tiny_config):
    """With ASR and TTS off the routes refuse with the stable code, asking only the verbs."""
    from fastapi.testclient import TestClient

    from assistant.build import build_controller
    from frontends.api import create_app

    config = tiny_config.model_copy(deep=True)
    config.tts.enabled = False
    controller, _ = build_controller(config, with_asr=False, with_tts=False)
    sealed = SealedController(controller)
    with TestClient(create_app(sealed)) as client:
        heard = client.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"RIFF")})
        spoken = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello."})
        health = client.get("/health").json()
    for response in (heard, spoken):
        assert response.status_code == 503 and response.json()["error"]["code"] == "model-missing"
    assert health["models"]["asr"] is None and health["models"]["tts"] is None
    assert sealed.reached == []


_REACHED = "|".join(sorted(ENGINES - {"store"})) + r"|_\w+"  # an engine or a private name
# ``controller.asr``, ``self.controller._transcribe(...)``, ``getattr(self.controller, "tts")``.
REACH = re.compile(
    rf"controller\.(?:{_REACHED})\b"
    rf"|(?:get|set|has)attr\(\s*[\w.]*controller\s*,\s*[\"'](?:{_REACHED})[\"']"
)


def test_the_source_scan_catches_the_ways_a_front_end_reached_in():
    """The accesses voice_loop.py had before it moved onto the verbs, and a fine use."""
    reached = [
        "self.controller.asr = self._speculative",
        'asr = getattr(self.controller, "asr", None)',
        'tts = getattr(self.controller, "tts", None)',
        "voice = self.controller.voice_for(self.session)",
        "heard = self.controller._transcribe(audio, None)",
        'if controller.asr is not None and hasattr(controller.asr, "warm_up"):',
        'player = Player(sink, sample_rate=getattr(controller.tts, "sample_rate", 22050))',
    ]
    assert [line for line in reached if not REACH.search(line)] == []
    assert not REACH.search("rate = self.controller.speech_sample_rate or 22050")


@pytest.mark.parametrize(
    "module",
    sorted(p.name for p in (ROOT / "frontends").glob("*.py") if p.name not in NOT_YET_SEALED),
)
def test_no_front_end_names_an_engine_of_the_controller(module):
    source = (ROOT / "frontends" / module).read_text()
    reaches = [
        f"{module}:{source.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for m in REACH.finditer(source)
    ]
    assert reaches == [], "use a Controller verb instead: " + "; ".join(reaches)


def test_the_voice_loop_listens_and_answers_without_touching_an_engine(sealed, tmp_path):
    """A spoken request through the loop (speculative recognition on), against the sealed
    controller: heard, drawn, "On it." and the reply played; the recognizer put back."""
    from frontends.voice_loop import VoiceLoopSettings, run_voice_loop
    from voice.audio import load_audio
    from voice.microphone import FakeSource
    from voice.playback import FakeSink, Player
    from voice.vad import SAMPLE_RATE

    loaded = sealed._controller.asr
    request = load_audio(str(say("Draw a red barn.", tmp_path / "r.wav")), SAMPLE_RATE)
    source = FakeSource([0.5, request, 1.5], realtime=True, noise_dbfs=-70)
    player = Player(FakeSink(speed=8.0), sample_rate=sealed.speech_sample_rate)
    settings = VoiceLoopSettings()
    assert settings.endpoint.pause_ms  # the loop wraps the recognizer: the verb is used
    try:
        result = run_voice_loop(sealed, source, player, settings=settings, on_line=lambda _: 0)
    finally:
        player.close()

    (turn,) = result.turns
    assert "barn" in turn.transcript.lower() and turn.ok and turn.image_path
    assert [c.label for c in player.history][0] == "ack" and len(player.history) >= 2
    assert result.speculated >= 1
    assert sealed._controller.asr is loaded  # the controller has its own recognizer back
    assert sealed.reached == [], f"the voice loop reached into the controller's {sealed.reached}"
