"""The chat window driven the way a browser drives it, through gradio_client."""

from __future__ import annotations

import pytest
from PIL import Image

from assistant.controller import UserInput
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


def send(client, text="", audio=None, upload=None):
    """The Send button: (chat, image, status, speech, details, gallery) once it is answered."""
    out = client.predict(text, audio, upload, api_name="/send")
    return out[:6]


def texts(history) -> list[str]:
    return [" ".join(part.get("text", "") for part in m["content"]) for m in history]


def test_text_then_audio_turn_in_the_chat_window(chat_client, tmp_path):
    history, image, status, speech, details, gallery = send(
        chat_client, "Draw a lighthouse on a cliff at night"
    )
    assert history[-1]["role"] == "assistant" and "lighthouse" in texts(history)[-1]
    assert Image.open(image).size == (64, 64)
    assert "lighthouse on a cliff at night" in read_png_params(image)["prompt"]
    assert "lighthouse" in details and speech  # the reply is spoken
    assert status.startswith("Done in")  # the status line ends
    assert len(gallery["value"]) == 1 and gallery["selected_index"] == 0

    wav = say("Make it darker.", tmp_path / "edit.wav")
    history, image, status, speech, details, gallery = send(
        chat_client, "", chat_client.handle_file(str(wav))
    )
    assert "darker" in texts(history)[-2].lower()  # the transcript is shown
    assert "dark" in read_png_params(image)["prompt"]
    assert "edited from n1" in details and len(gallery["value"]) == 2
    assert gallery["selected_index"] == 1  # the current picture is marked


def test_an_empty_send_says_what_to_do_and_runs_nothing(chat_client):
    history, _, status, _, _, _ = send(chat_client, "   ")
    assert "Type a request" in status
    assert "(spoken request)" not in " ".join(texts(history))


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


def test_a_reopened_session_shows_its_conversation_pictures_and_settings(tiny_config, tmp_path):
    """What a reload after a server restart sees: everything back from the session store."""
    from assistant.build import build_controller
    from frontends.chat_window import ChatSessions, conversation, gallery_items, settings_values

    config = tiny_config.model_copy(deep=True)
    config.output_dir, config.tts.enabled = tmp_path, False
    first, _ = build_controller(config, with_asr=False)
    session = first.new_session()
    first.update_settings(session, steps=3, style="watercolor", speech_language="en")
    for line in ("draw a red barn", "make it darker", "what prompt did you use?"):
        list(first.run_turn(session, UserInput(text=line)))
    first.select(session, "n1")
    before = conversation(ChatSessions(first).get(session.id))
    first.store.close()

    restarted, _ = build_controller(config, with_asr=False)
    tab = ChatSessions(restarted).get(session.id)
    assert conversation(tab) == before and len(before) == 6
    items, selected = gallery_items(tab.session)
    assert len(items) == 2 and selected == 0  # n1 was in focus
    values = settings_values(restarted, tab.session)
    assert values[0] == "3" and values[5] == "watercolor" and values[-1] == "en"
    titles = [s.title for s in restarted.list_sessions()]
    assert "draw a red barn" in titles


def test_only_configured_models_and_voices_can_be_chosen(tiny_config, tmp_path):
    from assistant.build import build_controller
    from assistant.errors import AssistantError

    config = tiny_config.model_copy(deep=True)
    config.output_dir, config.tts.enabled = tmp_path, False
    controller, _ = build_controller(config, with_asr=False)
    session = controller.new_session()
    for bad in ({"image_model": "/etc/passwd"}, {"voice": "piper:/tmp/evil.onnx"}):
        with pytest.raises(AssistantError) as refused:
            controller.update_settings(session, **bad)
        assert refused.value.code == "input-invalid" and "choose from" in refused.value.message
    assert session.settings.image_model is None and session.settings.voice is None
    controller.update_settings(session, image_model=config.image.model)
    assert controller.resume(session.id).settings.image_model == config.image.model


@pytest.mark.parametrize(
    ("host", "share", "auth", "refused"),
    [
        ("127.0.0.1", False, [], False),
        ("0.0.0.0", False, [], True),
        ("127.0.0.1", True, [], True),
        ("0.0.0.0", False, ["ana:secret"], False),
    ],
)
def test_a_window_reachable_from_elsewhere_needs_a_login(tiny_config, host, share, auth, refused):
    from assistant.config import ConfigError
    from frontends.chat_window import check_exposure

    config = tiny_config.model_copy(deep=True)
    config.ui.host, config.ui.auth = host, auth
    if refused:
        with pytest.raises(ConfigError, match="without a login"):
            check_exposure(config, share, environ={})
    else:
        assert check_exposure(config, share, environ={}) in (None, [("ana", "secret")])
    assert check_exposure(config, True, environ={"ASSISTANT_UI_AUTH": "bo:pw"}) == (
        [("ana", "secret")] if auth else [("bo", "pw")]
    )


def test_cancel_is_shown_by_the_turns_own_stream_so_it_always_ends(tiny_config, tmp_path):
    """Cancel's note goes in order with the turn's events: "Cancelled" is the last word.

    (When the Cancel click wrote the status itself, a click answered after the turn ended
    left "Cancelling…" on screen for good; CI saw it on a busy machine.)
    """
    from assistant.build import build_controller
    from assistant.events import Event, EventType, TurnEnded
    from frontends.chat_window import ChatSessions, TurnJob, stream_jobs

    config = tiny_config.model_copy(deep=True)
    config.output_dir, config.tts.enabled = tmp_path, False
    controller, _ = build_controller(config, with_asr=False)
    tab = ChatSessions(controller).new()
    job = TurnJob(UserInput(text="draw a kite"), "draw a kite")
    tab.jobs.append(job)
    assert tab.cancel_current() and not tab.cancel_current()  # a second click adds nothing
    job.events.put(Event(EventType.TURN_END, TurnEnded(False, "image-cancelled", 0.1, "cancelled")))
    job.done = True
    job.events.put(None)
    statuses = [frame[2] for frame in stream_jobs(tab)]
    assert "Cancelling…" in statuses
    assert statuses[-1].startswith("Cancelled") and not tab.jobs
    assert not tab.cancel_current()  # nothing left to cancel: a late click changes nothing
