"""The chat window driven the way a browser drives it, through gradio_client."""

from __future__ import annotations

import pytest
from PIL import Image

from pipelines.metadata import read_png_params
from tests.speech import say


@pytest.fixture(scope="module")
def chat_client(tiny_config, tmp_path_factory, monkeypatch_module):
    from gradio_client import Client, handle_file

    from assistant.build import build_controller
    from frontends.chat_window import build_app

    monkeypatch_module.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
    controller, report = build_controller(tiny_config)
    app = build_app(controller, report.notices)
    app.queue().launch(
        server_name="127.0.0.1",
        server_port=None,
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(tiny_config.output_dir)],
    )
    try:
        client = Client(app.local_url, verbose=False)
        client.handle_file = handle_file
        yield client
    finally:
        app.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_text_then_audio_turn_in_the_chat_window(chat_client, tmp_path):
    history, image, status, speech, details, gallery = chat_client.predict(
        "Draw a lighthouse on a cliff at night", None, None, [], api_name="/send"
    )
    assert history[-1]["role"] == "assistant" and "lighthouse" in str(history[-1]["content"])
    assert Image.open(image).size == (64, 64)
    assert "lighthouse on a cliff at night" in read_png_params(image)["prompt"]
    assert "lighthouse" in details and speech  # the reply is spoken
    assert len(gallery) == 1

    wav = say("Make it darker.", tmp_path / "edit.wav")
    history, image, status, speech, details, gallery = chat_client.predict(
        "", chat_client.handle_file(str(wav)), None, history, api_name="/send"
    )
    assert "darker" in str(history[-2]["content"]).lower()  # the transcript is shown
    assert "darker" in read_png_params(image)["prompt"]
    assert "edited from n1" in details and len(gallery) == 2


def test_voice_demo_goes_straight_from_speech_to_image(chat_client, tmp_path):
    wav = say("A red kite over a green hill.", tmp_path / "demo.wav")
    transcript, english, picture, prompt_used = chat_client.predict(
        chat_client.handle_file(str(wav)), "Straight to image", api_name="/demo_listen"
    )
    assert transcript.startswith("[en]") and "kite" in transcript.lower()
    assert "kite" in english.lower()
    assert "red kite" in read_png_params(picture)["prompt"]
    assert "red kite" in prompt_used


def test_voice_demo_checks_the_transcript_first(chat_client, tmp_path):
    wav = say("A yellow submarine.", tmp_path / "check.wav")
    transcript, english, picture, _ = chat_client.predict(
        chat_client.handle_file(str(wav)), "Check the transcript first", api_name="/demo_listen"
    )
    assert "submarine" in english.lower() and picture is None  # nothing drawn yet
    picture, prompt_used = chat_client.predict(
        "A yellow submarine under the ice", api_name="/demo_generate"
    )
    assert "under the ice" in read_png_params(picture)["prompt"]
