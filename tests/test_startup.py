"""Start-up: front ends are ready before the heavy models load, and nothing heavy is imported
until something needs it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.pool import BackgroundLoader, Preloading, is_ready, resident_mb, resolve
from voice.errors import VoiceError

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "diffusers", "transformers", "whisper", "gradio", "cyllama", "onnxruntime")
WAIT_S = 30.0  # generous bound for a background job on a busy machine


class Engine:
    name = "engine"
    depth_model = "dpt"

    def speak(self, text: str) -> str:
        return f"said {text}"


def test_importing_the_builder_the_controller_and_the_chat_window_loads_no_model_library():
    code = (
        "import sys, assistant.build, assistant.controller, frontends.chat_window, voice.tts; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_background_jobs_wait_for_start_then_run_in_order():
    ran: list[str] = []
    loader = BackgroundLoader()
    first = loader.load("first", lambda: ran.append("first") or Engine())
    loader.submit("second", lambda: ran.append("second"))
    time.sleep(0.2)
    assert ran == [] and not is_ready(first)  # the foreground gets the cores first

    loader.start()
    assert loader.wait(WAIT_S)
    assert ran == ["first", "second"] and is_ready(first)


def test_a_preloading_engine_is_used_like_the_engine_and_a_use_before_start_does_not_hang():
    loader = BackgroundLoader()
    engine = loader.load("engine", Engine)
    assert isinstance(engine, Preloading)

    assert engine.speak("hi") == "said hi"  # starts the loader itself, then waits
    engine.depth_model = None  # writes reach the engine (monkeypatch in tests does this)
    assert resolve(engine).depth_model is None and engine.name == "engine"
    assert "ready" in repr(engine)


def test_a_failed_background_load_raises_its_own_error_where_the_engine_is_used():
    def broken():
        raise VoiceError("model-missing", "no weights: set asr.model")

    loader = BackgroundLoader()
    asr = loader.load("asr", broken)
    loader.start()
    loader.wait(WAIT_S)
    assert not is_ready(asr)
    for _ in range(2):  # every use says so, not only the first
        with pytest.raises(VoiceError) as caught:
            asr.transcribe("request.wav")
        assert caught.value.code == "model-missing"


def test_the_controller_is_built_before_the_image_model_and_a_turn_waits_for_it(
    tiny_config, monkeypatch
):
    import assistant.build as build
    from assistant.controller import UserInput
    from assistant.events import EventType

    release = threading.Event()
    real_build = build.build_image_engine

    def slow_image_engine(config, device):
        release.wait(WAIT_S)
        return real_build(config, device)

    monkeypatch.setattr(build, "build_image_engine", slow_image_engine)
    config = tiny_config.model_copy(deep=True)
    config.load_in_background = True

    controller, report = build.build_controller(config, with_asr=False)
    assert report.background is not None and not is_ready(controller.image_engine)
    assert report.notices and "placeholder" in report.notices[0]  # known without loading

    threading.Timer(0.5, release.set).start()
    events = list(controller.run_turn(controller.new_session(), UserInput(text="a red barn")))
    assert [e.data for e in events if e.type == EventType.ERROR] == []
    assert any(e.type == EventType.IMAGE_DONE for e in events)
    assert report.background.wait(WAIT_S) and "image" in report.seconds
    assert report.rss_mb["image"] > 0


def test_resident_memory_is_reported_in_megabytes():
    assert 10 < resident_mb() < 64_000


# ~200 MB in malloc-sized blocks, freed but for every 50th (so the heap cannot just shrink
# from its top): what a turn's image buffers leave behind, then the turn-end trim.
FREED_BUT_KEPT = """
import json
from assistant.pool import release_memory_after_turn, resident_mb
blocks = [bytearray(1000) for _ in range(200_000)]
kept = blocks[::50]
del blocks
before = resident_mb()
trimmed = release_memory_after_turn()
print(json.dumps({"trimmed": trimmed, "before": before, "after": resident_mb()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_a_turns_end_hands_freed_memory_back_to_the_system():
    done = subprocess.run(
        [sys.executable, "-c", FREED_BUT_KEPT], cwd=REPO, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    import json

    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["trimmed"] is True
    assert figures["before"] - figures["after"] > 100  # MB: most of the ~190 MB freed


def test_a_turn_ending_while_another_trims_does_not_wait_for_it():
    import assistant.pool as pool

    with pool._trimming:  # another turn's end is trimming
        assert pool.release_memory_after_turn() is False
    assert pool.release_memory_after_turn() is True
