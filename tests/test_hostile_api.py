"""The bad-input corpus, through the HTTP API: each case gets its status and stable code, and
the next ordinary request of the same kind still works.

One controller (tiny profile) and two apps (without and with an API key) for the module,
driven in process with Starlette's TestClient. Cases are data (:data:`CASES`); each names the
request, what must come back, and which ordinary request follows it.
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.speech import say

API_KEY = "hostile-key-1"
SECRET_WORDS = ("lighthouse", "cliff")  # spoken in a file the client never uploads


# --- payloads ---------------------------------------------------------------------------------
def png(size=(64, 64), mode="RGB", color=0) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def image_bytes(fmt: str, size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def wav(seconds: float = 1.0, rate: int = 16000, amplitude: float = 0.0, frames=None) -> bytes:
    samples = np.zeros(int(seconds * rate) if frames is None else frames, dtype=np.int16)
    if amplitude:
        t = np.arange(samples.size) / rate
        samples = (amplitude * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def float_wav_with_nan() -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    samples = np.full(1600, np.nan, dtype=np.float32)
    sf.write(buffer, samples, 16000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def secret_wav(tmp_path_factory) -> str:
    """A spoken WAV on the server's disk that no client sends: playlists aim at it."""
    folder = tmp_path_factory.mktemp("secret")
    return str(say("Draw a lighthouse on a cliff at night.", folder / "secret.wav"))


PLAYLISTS: dict[str, Callable[[str], bytes]] = {
    "ffconcat-absolute": lambda p: f"ffconcat version 1.0\nfile '{p}'\n".encode(),
    "ffconcat-relative": lambda p: b"ffconcat version 1.0\nfile ../secret/secret.wav\n",
    "ffconcat-file-url": lambda p: f"ffconcat version 1.0\nfile 'file:{p}'\n".encode(),
    "hls-m3u8": lambda p: f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3,\n{p}\n".encode(),
    "hls-m3u8-file-url": lambda p: f"#EXTM3U\n#EXTINF:3,\nfile://{p}\n#EXT-X-ENDLIST\n".encode(),
    "pls-playlist": lambda p: f"[playlist]\nFile1={p}\nNumberOfEntries=1\n".encode(),
    "concat-protocol": lambda p: f"concat:{p}|{p}".encode(),
    "sdp-session": lambda p: (
        b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 0\n"
    ),
    "ffmetadata": lambda p: b";FFMETADATA1\ntitle=x\n",
    "wav-header-then-playlist": lambda p: (
        b"RIFF\x24\x00\x00\x00WAVE" + f"\nffconcat version 1.0\nfile '{p}'\n".encode()
    ),
    "ftyp-then-playlist": lambda p: (
        b"\x00\x00\x00\x18ftypM4A " + f"\n#EXTM3U\n#EXTINF:3,\n{p}\n".encode()
    ),
    "ebml-then-playlist": lambda p: b"\x1a\x45\xdf\xa3" + f"\n#EXTM3U\n{p}\n".encode(),
}


# --- the cases --------------------------------------------------------------------------------
@dataclass
class Case:
    """One bad request: how to send it, and what must come back."""

    name: str
    method: str
    path: str  # may hold {session}
    status: int
    code: str | None  # the error's stable code (None: a success status)
    follow: str  # the ordinary request that must work afterwards: a key of FOLLOW_UPS
    json: Any = None
    content: bytes | None = None
    files: Any = None  # dict, or a callable(secret_wav) -> dict
    data: dict | None = None
    headers: dict = field(default_factory=dict)
    authed: bool = False  # sent to the app that needs the API key
    turn_error: str | None = None  # a turn's error event code (the request itself is 200)
    message_has: str | None = None  # a phrase the message must hold


def audio_case(name, payload, code="audio-invalid", status=400, filename="a.wav", **kw) -> Case:
    return Case(
        name,
        "POST",
        "/v1/audio/transcriptions",
        status,
        code,
        "transcription",
        files=lambda secret: {"file": (filename, _resolve(payload, secret), "audio/wav")},
        data={"model": "whisper-1"},
        **kw,
    )


def _resolve(payload, secret):
    return payload(secret) if callable(payload) else payload


def edit_case(name, image, code, status=400, data=None, mask=None, **kw) -> Case:
    files = {"image": ("in.png", image, "image/png")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return Case(
        f"edit-{name}",
        "POST",
        "/v1/images/edits",
        status,
        code,
        "image",
        files=files,
        data={"prompt": "a red barn", **(data or {})},
        **kw,
    )


def gen_case(name, body, code="input-invalid", status=400, **kw) -> Case:
    return Case(
        f"gen-{name}", "POST", "/v1/images/generations", status, code, "image", json=body, **kw
    )


def speech_case(name, body, code="input-invalid", status=400) -> Case:
    return Case(name, "POST", "/v1/audio/speech", status, code, "speech", json=body)


def turn_case(name, status=200, code=None, turn_error=None, **kw) -> Case:
    return Case(
        name,
        "POST",
        "/v1/sessions/{session}/turns",
        status,
        code,
        "session",
        turn_error=turn_error,
        **kw,
    )


def get_case(name, path, status, code, follow="session", **kw) -> Case:
    return Case(name, "GET", path, status, code, follow, **kw)


BOMB = png((10000, 10000), "L")  # ~100 kB of zeros that would decode to 100 MB


def gif_header_bomb() -> bytes:
    """A 4x4 GIF whose screen and frame say 65535x65535 (4.3 gigapixels)."""
    data = bytearray(image_bytes("GIF", (4, 4)))
    data[6:10] = b"\xff\xff\xff\xff"
    frame = data.find(b",")
    data[frame + 5 : frame + 9] = b"\xff\xff\xff\xff"
    return bytes(data)


GIF_HEADER_BOMB = gif_header_bomb()
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>'
GOOD_PNG = png()

AUDIO_CASES = [
    *(
        audio_case(f"playlist-{name}", builder, message_has="not a WAV")
        for name, builder in PLAYLISTS.items()
        if not name.endswith("then-playlist")
    ),
    *(
        audio_case(f"playlist-{name}", builder, message_has="could not be decoded")
        for name, builder in PLAYLISTS.items()
        if name.endswith("then-playlist")
    ),
    audio_case("empty", b""),
    audio_case("one-byte", b"\x00"),
    audio_case("random-bytes", np.random.default_rng(0).bytes(4000)),
    audio_case("text", b"hello, this is not audio"),
    audio_case("html", b"<html><body>hi</body></html>"),
    audio_case("json", b'{"audio": "file:///etc/passwd"}'),
    audio_case("file-url", b"file:///etc/passwd"),
    audio_case("png-as-audio", GOOD_PNG),
    audio_case("riff-truncated", wav()[:30]),
    audio_case("riff-garbage", b"RIFF\x10\x00\x00\x00WAVEfmt garbage" + bytes(range(256))),
    audio_case("riff-not-wave", b"RIFF\x10\x00\x00\x00AVI LIST" + bytes(64)),
    audio_case("flac-garbage", b"fLaC" + bytes(200)),
    audio_case("ogg-garbage", b"OggS" + bytes(200)),
    audio_case("id3-garbage", b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(200)),
    audio_case("ebml-garbage", b"\x1a\x45\xdf\xa3" + bytes(200)),
    audio_case("ftyp-garbage", b"\x00\x00\x00\x18ftypM4A " + bytes(200)),
    audio_case("aiff-garbage", b"FORM\x00\x00\x00\x20AIFF" + bytes(64)),
    audio_case("wav-no-frames", wav(frames=0)),
    audio_case("wav-nan", float_wav_with_nan()),
    audio_case("wav-silence", wav(1.0), code="asr-no-speech"),
    audio_case("wav-too-long", wav(121.0, rate=8000), code="audio-too-long"),
    audio_case(
        "filename-5000-chars",
        wav(0.5, amplitude=0.2),
        code="input-invalid",
        filename="a" * 5000 + ".wav",
        message_has="shorter file name",
    ),
    audio_case("filename-traversal", b"not audio", filename="../../etc/passwd"),
    audio_case("filename-control-chars", b"not audio", filename="a\x1b[31m.wav"),
    Case(
        "transcription-srt",
        "POST",
        "/v1/audio/transcriptions",
        400,
        "input-invalid",
        "transcription",
        files={"file": ("a.wav", wav(0.5), "audio/wav")},
        data={"model": "whisper-1", "response_format": "srt"},
    ),
    Case(
        "transcription-no-file",
        "POST",
        "/v1/audio/transcriptions",
        400,
        "input-invalid",
        "transcription",
        data={"model": "whisper-1"},
    ),
    Case(
        "transcription-json-body",
        "POST",
        "/v1/audio/transcriptions",
        400,
        "input-invalid",
        "transcription",
        json={"file": "/etc/passwd"},
    ),
    Case(
        "transcription-file-as-field",
        "POST",
        "/v1/audio/transcriptions",
        400,
        "input-invalid",
        "transcription",
        files={"model": (None, "whisper-1")},
        data={"file": "/etc/passwd"},
    ),
]

IMAGE_CASES = [
    edit_case("bomb-png-10000", BOMB, "image-too-large", message_has="50 megapixels"),
    edit_case("bomb-png-wide", png((60000, 1000), "L"), "image-too-large"),
    edit_case("bomb-gif-header", GIF_HEADER_BOMB, "image-too-large"),
    edit_case("bomb-mask", GOOD_PNG, "image-too-large", mask=BOMB),
    edit_case("empty-image", b"", "input-invalid"),
    edit_case("garbage-image", np.random.default_rng(1).bytes(3000), "input-invalid"),
    edit_case("truncated-png", GOOD_PNG[:40], "input-invalid"),
    edit_case("truncated-jpeg", image_bytes("JPEG")[:100], "input-invalid"),
    edit_case("eps-not-run", EPS, "input-invalid"),
    edit_case("svg", SVG, "input-invalid"),
    edit_case("tiff-not-accepted", image_bytes("TIFF"), "input-invalid"),
    edit_case("ico-not-accepted", image_bytes("ICO"), "input-invalid"),
    edit_case("text-as-image", b"hello", "input-invalid"),
    edit_case("wav-as-image", wav(0.1), "input-invalid"),
    edit_case("mask-size-mismatch", GOOD_PNG, "input-invalid", mask=png((32, 32))),
    edit_case("mask-garbage", GOOD_PNG, "input-invalid", mask=b"garbage"),
    edit_case("size-not-a-size", GOOD_PNG, "input-invalid", data={"size": "big"}),
    edit_case("size-out-of-range", GOOD_PNG, "input-invalid", data={"size": "4096x4096"}),
    edit_case("size-not-multiple-of-8", GOOD_PNG, "input-invalid", data={"size": "65x64"}),
    edit_case("n-too-many", GOOD_PNG, "input-invalid", data={"n": "9"}),
    edit_case("n-zero", GOOD_PNG, "input-invalid", data={"n": "0"}),
    edit_case("steps-zero", GOOD_PNG, "input-invalid", data={"steps": "0"}),
    edit_case("steps-huge", GOOD_PNG, "input-invalid", data={"steps": "100000"}),
    edit_case("strength-zero", GOOD_PNG, "input-invalid", data={"strength": "0"}),
    edit_case("strength-above-one", GOOD_PNG, "input-invalid", data={"strength": "1.5"}),
    edit_case("guidance-negative", GOOD_PNG, "input-invalid", data={"guidance": "-1"}),
    edit_case("seed-huge", GOOD_PNG, "input-invalid", data={"seed": str(2**70)}),
    edit_case("seed-text", GOOD_PNG, "input-invalid", data={"seed": "abc"}),
    edit_case("prompt-nul", GOOD_PNG, "input-invalid", data={"prompt": "a\x00barn"}),
    edit_case("prompt-empty", GOOD_PNG, "input-invalid", data={"prompt": " "}),
    edit_case("prompt-too-long", GOOD_PNG, "input-invalid", data={"prompt": "a" * 5000}),
    edit_case("negative-nul", GOOD_PNG, "input-invalid", data={"negative_prompt": "\x00"}),
    edit_case(
        "budget-edit",
        GOOD_PNG,
        "budget-exceeded",
        data={"size": "2048x2048", "steps": "150", "n": "4"},
        message_has="api.cost_budget",
    ),
    Case(
        "edit-two-images",
        "POST",
        "/v1/images/edits",
        400,
        "input-invalid",
        "image",
        files=[("image", ("a.png", GOOD_PNG, "image/png")), ("image[]", ("b.png", GOOD_PNG))],
        data={"prompt": "a barn"},
    ),
    Case(
        "edit-no-image",
        "POST",
        "/v1/images/edits",
        400,
        "input-invalid",
        "image",
        data={"prompt": "a barn"},
    ),
    edit_case("tiny-1x1-edit-is-fitted", png((1, 1)), None, status=200, data={"steps": "1"}),
]

JSON_CASES = [
    gen_case("not-json", None, content=b"{not json"),
    gen_case("json-array", [1, 2]),
    gen_case("json-null", None, content=b"null"),
    gen_case("json-string", "a barn"),
    gen_case("json-deep-nesting", None, content=b"[" * 20000 + b"]" * 20000),
    gen_case("prompt-missing", {}),
    gen_case("prompt-number", {"prompt": 42}),
    gen_case("prompt-object", {"prompt": {"$gt": ""}}),
    gen_case("prompt-empty", {"prompt": ""}),
    gen_case("prompt-spaces", {"prompt": "   "}),
    gen_case("prompt-only-controls", {"prompt": "\x01\x02\x1b"}),
    gen_case("prompt-nul", {"prompt": "a red\x00barn"}),
    gen_case("prompt-too-long", {"prompt": "a" * 2001}),
    gen_case("negative-nul", {"prompt": "a barn", "negative_prompt": "x\x00"}),
    gen_case("n-zero", {"prompt": "a barn", "n": 0}),
    gen_case("n-five", {"prompt": "a barn", "n": 5}),
    gen_case("n-text", {"prompt": "a barn", "n": "many"}),
    gen_case("n-float-huge", None, content=b'{"prompt": "a barn", "n": 1e400}'),
    gen_case("size-word", {"prompt": "a barn", "size": "huge"}),
    gen_case("size-negative", {"prompt": "a barn", "size": "-64x64"}),
    gen_case("size-too-small", {"prompt": "a barn", "size": "8x8"}),
    gen_case("size-too-big", {"prompt": "a barn", "size": "99999x99999"}),
    gen_case("size-odd", {"prompt": "a barn", "size": "100x100"}),
    gen_case("steps-zero", {"prompt": "a barn", "steps": 0}),
    gen_case("steps-151", {"prompt": "a barn", "steps": 151}),
    gen_case("guidance-31", {"prompt": "a barn", "guidance": 31}),
    gen_case("guidance-nan", None, content=b'{"prompt": "a barn", "guidance": NaN}'),
    gen_case("seed-minus-two", {"prompt": "a barn", "seed": -2}),
    gen_case("seed-2-64", {"prompt": "a barn", "seed": 2**64}),
    gen_case("format-gif", {"prompt": "a barn", "response_format": "gif"}),
    gen_case("output-jpeg", {"prompt": "a barn", "output_format": "jpeg"}),
    gen_case("stream-true", {"prompt": "a barn", "stream": True}),
    gen_case(
        "budget-max-everything",
        {"prompt": "a barn", "size": "2048x2048", "steps": 150, "n": 4},
        code="budget-exceeded",
        message_has="at most",
    ),
    gen_case(
        "budget-1024-50-steps",
        {"prompt": "a barn", "size": "1024x1024", "steps": 50},
        code="budget-exceeded",
    ),
    gen_case(
        "budget-512-4-images",
        {"prompt": "a barn", "size": "512x512", "steps": 40, "n": 4},
        "budget-exceeded",
    ),
    gen_case(
        "control-chars-stripped",
        {"prompt": "a red\x1b[31m barn\x07", "size": "64x64", "steps": 1},
        code=None,
        status=200,
    ),
    speech_case("speech-empty", {"model": "tts-1", "input": ""}),
    speech_case("speech-only-controls", {"model": "tts-1", "input": "\x01\x02"}),
    speech_case("speech-nul", {"model": "tts-1", "input": "hello\x00world"}),
    speech_case("speech-too-long", {"model": "tts-1", "input": "a" * 4097}),
    speech_case("speech-no-model", {"input": "hello"}),
    speech_case("speech-speed", {"model": "tts-1", "input": "hi", "speed": 2.0}),
    speech_case("speech-speed-range", {"model": "tts-1", "input": "hi", "speed": 40}),
    speech_case("speech-format-aac", {"model": "tts-1", "input": "hi", "response_format": "aac"}),
    speech_case("speech-format-exe", {"model": "tts-1", "input": "hi", "response_format": "exe"}),
    speech_case("speech-input-list", {"model": "tts-1", "input": ["a", "b"]}),
]

TURN_CASES = [
    turn_case("turn-nul", json={"text": "draw a\x00 barn"}, turn_error="input-invalid"),
    turn_case("turn-empty", json={"text": ""}, turn_error="input-invalid"),
    turn_case("turn-controls-only", json={"text": "\x01\x02\x03"}, turn_error="input-invalid"),
    turn_case("turn-too-long", json={"text": "draw " * 1000}, turn_error="input-invalid"),
    turn_case("turn-extra-field", status=400, code="input-invalid", json={"text": "a", "x": 1}),
    turn_case("turn-text-number", status=400, code="input-invalid", json={"text": 5}),
    turn_case("turn-no-text", status=400, code="input-invalid", json={}),
    turn_case("turn-not-json", status=400, code="input-invalid", content=b"{{{"),
    turn_case(
        "turn-text-and-audio",
        status=400,
        code="input-invalid",
        data={"text": "a barn"},
        files={"audio": ("a.wav", wav(0.5), "audio/wav")},
    ),
    turn_case(
        "turn-text-as-file",
        status=400,
        code="input-invalid",
        files={"text": ("t.txt", b"draw a barn", "text/plain")},
    ),
    turn_case(
        "turn-too-many-fields",
        status=400,
        code="input-invalid",
        data={"text": "a", "a": "1", "b": "2", "c": "3", "d": "4"},
    ),
    turn_case(
        "turn-audio-playlist",
        files=lambda secret: {"audio": ("a.wav", PLAYLISTS["ffconcat-absolute"](secret))},
        turn_error="audio-invalid",
    ),
    turn_case(
        "turn-audio-hls",
        files=lambda secret: {"audio": ("a.m3u8", PLAYLISTS["hls-m3u8"](secret))},
        turn_error="audio-invalid",
    ),
    turn_case(
        "turn-image-bomb",
        status=400,
        code="image-too-large",
        data={"text": "make it darker"},
        files={"image": ("b.png", BOMB, "image/png")},
    ),
    turn_case(
        "turn-image-garbage",
        status=400,
        code="input-invalid",
        data={"text": "make it darker"},
        files={"image": ("b.png", b"garbage", "image/png")},
    ),
    turn_case(
        "turn-image-1x1",
        data={"text": "make it darker"},
        files={"image": ("one.png", png((1, 1)), "image/png")},
        turn_error="input-invalid",
        message_has="too small",
    ),
    turn_case(
        "turn-image-too-thin",
        data={"text": "make it darker"},
        files={"image": ("thin.png", png((5000, 20)), "image/png")},
        turn_error="input-invalid",
    ),
    turn_case(
        "turn-filename-5000",
        status=400,
        code="input-invalid",
        data={"text": "make it darker"},
        files={"image": ("p" * 5000 + ".png", GOOD_PNG, "image/png")},
        message_has="shorter file name",
    ),
]

SESSION_ID_CASES = [
    get_case("id-unknown-hex", "/v1/sessions/" + "0" * 12, 404, "session-not-found"),
    get_case("id-hex-64", "/v1/sessions/" + "f" * 64, 404, "session-not-found"),
    get_case("id-hex-65", "/v1/sessions/" + "f" * 65, 404, "session-not-found"),
    get_case("id-uppercase", "/v1/sessions/ABCDEF", 404, "session-not-found"),
    get_case("id-word", "/v1/sessions/nope", 404, "session-not-found"),
    get_case("id-dots", "/v1/sessions/..", 404, "not-found"),
    get_case("id-traversal", "/v1/sessions/../../etc/passwd", 404, "not-found"),
    get_case("id-encoded-traversal", "/v1/sessions/..%2F..%2Fetc%2Fpasswd", 404, "not-found"),
    get_case("id-encoded-dots", "/v1/sessions/%2e%2e", 404, "session-not-found"),
    get_case("id-nul", "/v1/sessions/abc%00def", 404, "session-not-found"),
    get_case("id-sql", "/v1/sessions/'%20OR%201=1%20--", 404, "session-not-found"),
    get_case("id-unicode", "/v1/sessions/%C3%A9t%C3%A9", 404, "session-not-found"),
    get_case("id-5000", "/v1/sessions/" + "a" * 5000, 404, "session-not-found"),
    get_case("id-glob", "/v1/sessions/*", 404, "session-not-found"),
    get_case("node-unknown", "/v1/sessions/{session}/images/n999", 404, "node-not-found"),
    get_case("node-traversal", "/v1/sessions/{session}/images/..%2F..%2Fx", 404, "not-found"),
    get_case("node-of-unknown-session", "/v1/sessions/nope/images/n1", 404, "session-not-found"),
    get_case("speech-turn-word", "/v1/sessions/{session}/speech/abc", 400, "input-invalid"),
    get_case("speech-turn-negative", "/v1/sessions/{session}/speech/-1", 404, "file-not-found"),
    get_case(
        "speech-turn-huge", "/v1/sessions/{session}/speech/" + "9" * 40, 404, "file-not-found"
    ),
    Case(
        "turn-unknown-session",
        "POST",
        "/v1/sessions/nope/turns",
        404,
        "session-not-found",
        "session",
        json={"text": "a cat"},
    ),
    Case(
        "turn-unknown-hex-session",
        "POST",
        "/v1/sessions/" + "0" * 12 + "/turns",
        404,
        "session-not-found",
        "session",
        json={"text": "a cat"},
    ),
    get_case("file-unknown", "/v1/files/" + "0" * 32 + ".png", 404, "file-not-found"),
    get_case("file-traversal", "/v1/files/..%2F..%2Fconfig.yaml", 404, "not-found"),
    get_case("file-config", "/v1/files/config.yaml", 404, "file-not-found"),
    get_case("file-dotdot", "/v1/files/..", 404, "not-found"),
    get_case("unknown-route", "/v1/nothing", 404, "not-found"),
    Case("wrong-method", "DELETE", "/v1/sessions/{session}", 405, "method-not-allowed", "session"),
    Case(
        "too-large-declared",
        "POST",
        "/v1/images/generations",
        413,
        "upload-too-large",
        "image",
        content=b"{}",
        headers={"content-length": str(26 * 2**20)},
    ),
]


def auth_case(name, headers, status=401, code="unauthorized", path="/v1/sessions/{session}"):
    return Case(name, "GET", path, status, code, "authed", headers=headers, authed=True)


AUTH_CASES = [
    auth_case("auth-missing", {}),
    auth_case("auth-wrong-key", {"Authorization": "Bearer wrong"}),
    auth_case("auth-empty-bearer", {"Authorization": "Bearer "}),
    auth_case("auth-scheme-only", {"Authorization": "Bearer"}),
    auth_case("auth-basic", {"Authorization": f"Basic {API_KEY}"}),
    auth_case("auth-key-without-scheme", {"Authorization": API_KEY}),
    auth_case("auth-prefix-of-key", {"Authorization": f"Bearer {API_KEY[:-1]}"}),
    auth_case("auth-key-plus-more", {"Authorization": f"Bearer {API_KEY}x"}),
    auth_case("auth-key-twice", {"Authorization": f"Bearer {API_KEY} {API_KEY}"}),
    auth_case("auth-huge", {"Authorization": "Bearer " + "k" * 20000}),
    auth_case("auth-latin1", {"Authorization": "Bearer cl\xe9".encode("latin-1")}),
    auth_case("auth-x-api-key-header", {"X-API-Key": API_KEY}),
    auth_case("auth-key-in-query", {}, path="/v1/sessions/{session}?api_key=" + API_KEY),
    auth_case("auth-on-images", {}, path="/v1/files/" + "0" * 32 + ".png"),
    auth_case("auth-lowercase-scheme-ok", {"Authorization": f"bearer {API_KEY}"}, 200, None),
    auth_case("auth-health-open", {}, 200, None, path="/health"),
    auth_case("auth-openapi-open", {}, 200, None, path="/openapi.json"),
    Case(
        "auth-post-without-key",
        "POST",
        "/v1/images/generations",
        401,
        "unauthorized",
        "authed",
        json={"prompt": "a barn"},
        authed=True,
    ),
    Case(
        "auth-upload-without-key",
        "POST",
        "/v1/audio/transcriptions",
        401,
        "unauthorized",
        "authed",
        files={"file": ("a.wav", wav(0.5))},
        authed=True,
    ),
    Case(
        "auth-new-session-without-key",
        "POST",
        "/v1/sessions",
        401,
        "unauthorized",
        "authed",
        authed=True,
    ),
]

CASES = AUDIO_CASES + IMAGE_CASES + JSON_CASES + TURN_CASES + SESSION_ID_CASES + AUTH_CASES


def test_the_corpus_is_large_and_names_are_unique():
    assert len(CASES) >= 150
    assert len({c.name for c in CASES}) == len(CASES)


# --- the apps -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def apps(tiny_config):
    from fastapi.testclient import TestClient

    from assistant.build import build_controller
    from frontends.api import create_app

    controller, _ = build_controller(tiny_config)
    open_app = create_app(controller, settings=tiny_config.api)
    keyed_app = create_app(controller, api_key=API_KEY, settings=tiny_config.api)
    with TestClient(open_app) as client, TestClient(keyed_app) as keyed:
        session = client.post("/v1/sessions").json()["session_id"]
        keyed_session = keyed.post(
            "/v1/sessions", headers={"Authorization": f"Bearer {API_KEY}"}
        ).json()["session_id"]
        yield {"open": client, "keyed": keyed, "session": session, "keyed_session": keyed_session}


FOLLOW_UPS: dict[str, Callable[[dict], tuple[int, Any]]] = {}


def _follow(name):
    def register(fn):
        FOLLOW_UPS[name] = fn
        return fn

    return register


@_follow("image")
def _ordinary_image(apps):
    r = apps["open"].post(
        "/v1/images/generations", json={"prompt": "a barn", "size": "64x64", "steps": 1}
    )
    return r.status_code, r.json()


@_follow("transcription")
def _ordinary_transcription(apps):
    # A readable WAV of a quiet tone: decoded, then refused as no speech (Whisper not run).
    r = apps["open"].post(
        "/v1/audio/transcriptions",
        files={"file": ("tone.wav", wav(0.5, amplitude=0.0005), "audio/wav")},
        data={"model": "whisper-1"},
    )
    return (200 if r.json()["error"]["code"] == "asr-no-speech" else r.status_code), r.json()


@_follow("speech")
def _ordinary_speech(apps):
    r = apps["open"].post("/v1/audio/speech", json={"model": "tts-1", "input": "Hi."})
    return r.status_code, r.headers.get("content-type")


@_follow("session")
def _ordinary_session(apps):
    r = apps["open"].get(f"/v1/sessions/{apps['session']}")
    return r.status_code, r.json()


@_follow("authed")
def _ordinary_authed(apps):
    r = apps["keyed"].get(
        f"/v1/sessions/{apps['keyed_session']}", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    return r.status_code, r.json()


def send(apps, case: Case, secret: str):
    client = apps["keyed"] if case.authed else apps["open"]
    session = apps["keyed_session"] if case.authed else apps["session"]
    kwargs: dict[str, Any] = {"headers": case.headers}
    if case.json is not None:
        kwargs["content"] = json.dumps(case.json).encode()
        kwargs["headers"] = {"content-type": "application/json", **case.headers}
    elif case.content is not None:
        kwargs["content"] = case.content
        kwargs["headers"] = {"content-type": "application/json", **case.headers}
    if case.files is not None:
        kwargs["files"] = case.files(secret) if callable(case.files) else case.files
    if case.data is not None:
        kwargs["data"] = case.data
    return client.request(case.method, case.path.format(session=session), **kwargs)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_code_and_the_next_request_works(apps, secret_wav, case):
    response = send(apps, case, secret_wav)
    assert response.status_code == case.status, response.text
    body = response.json() if "json" in response.headers.get("content-type", "") else None
    text = response.text
    if case.code is not None:
        error = body["error"]
        assert error["code"] == case.code, error
        assert error["message"] and "Traceback" not in error["message"]
        if case.message_has:
            assert case.message_has in error["message"]
    if case.turn_error is not None:
        errors = [e["data"] for e in body["events"] if e["type"] == "error"]
        assert [e["code"] for e in errors] == [case.turn_error], errors
        assert body["events"][-1]["type"] == "turn.end"
        if case.message_has:
            assert case.message_has in errors[0]["message"]
    # Nothing the client did not send comes back: no words of the server's own file, no path.
    for word in SECRET_WORDS:
        assert word not in text.lower()
    assert secret_wav not in text and "No such file" not in text
    status, _ = FOLLOW_UPS[case.follow](apps)
    assert status == 200, f"the next {case.follow} request failed after {case.name}"


def test_control_characters_never_reach_the_picture_or_the_reply(apps):
    from pipelines.metadata import read_png_params

    client, session = apps["open"], apps["session"]
    r = client.post(
        "/v1/images/generations",
        json={"prompt": "a red\x1b[31m barn\x07\x7f", "size": "64x64", "steps": 1, "raw": True},
    )
    assert r.json()["data"][0]["revised_prompt"] == "a red[31m barn"
    import base64

    params = read_png_params(io.BytesIO(base64.b64decode(r.json()["data"][0]["b64_json"])))
    assert not any(ch < " " for ch in params["prompt"])
    events = client.post(f"/v1/sessions/{session}/turns", json={"text": "draw a\x1b barn\x08"})
    plan = [e["data"] for e in events.json()["events"] if e["type"] == "plan"]
    assert plan and "\x1b" not in json.dumps(plan) and "\\u001b" not in json.dumps(plan)
