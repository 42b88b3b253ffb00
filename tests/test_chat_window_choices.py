"""The chat window offers only what the configuration lists, and is never reachable from
elsewhere without a login. No browser: the built app's components and ``launch`` are read."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def window(tiny_config, tmp_path_factory):
    from assistant.build import build_controller
    from frontends.chat_window import build_app

    config = tiny_config.model_copy(deep=True)
    config.output_dir, config.tts.enabled = tmp_path_factory.mktemp("window"), False
    config.ui.image_models, config.ui.voices = ["random:tiny", "random:small"], ["espeak"]
    controller, report = build_controller(config, with_asr=False)
    return controller, build_app(controller, report.notices)


def dropdown(app, elem_id: str):
    import gradio as gr

    found = [
        block
        for block in app.blocks.values()
        if isinstance(block, gr.Dropdown) and block.elem_id == elem_id
    ]
    assert len(found) == 1, elem_id
    return found[0]


@pytest.mark.parametrize(("elem_id", "configured"), [("image-model", "image"), ("voice", "voice")])
def test_model_and_voice_menus_hold_only_configured_choices(window, elem_id, configured):
    controller, app = window
    menu = dropdown(app, elem_id)
    listed = controller.image_model_choices if configured == "image" else controller.voice_choices
    assert [value for _, value in menu.choices] == ["default", *listed]
    assert not menu.allow_custom_value  # nothing typed: a path cannot be entered
    assert all(not value.startswith(("/", "~", ".")) for _, value in menu.choices)


def test_a_typed_path_sent_past_the_menu_is_refused(window):
    from assistant.errors import AssistantError

    controller, _ = window
    session = controller.new_session()
    for bad in ({"image_model": "/etc/passwd"}, {"voice": "piper:/tmp/voice.onnx"}):
        with pytest.raises(AssistantError) as refused:
            controller.update_settings(session, **bad)
        assert refused.value.code == "input-invalid"
        assert "/etc/passwd" not in str(controller.update_settings(session).model_dump())


@pytest.mark.parametrize(
    ("host", "share"), [("0.0.0.0", False), ("192.168.1.20", False), ("127.0.0.1", True)]
)
def test_launch_refuses_to_listen_beyond_localhost_without_a_login(
    tiny_config, monkeypatch, host, share
):
    import assistant.build
    from frontends import chat_window

    def no_models(*args, **kwargs):
        raise AssertionError("models were loaded before the exposure was checked")

    monkeypatch.setattr(assistant.build, "build_controller", no_models)
    monkeypatch.delenv(chat_window.AUTH_ENV, raising=False)
    config = tiny_config.model_copy(deep=True)
    config.ui.host, config.ui.auth, config.ui.share = host, [], False
    with pytest.raises(SystemExit) as refused:
        chat_window.launch(config, share=share)
    assert "without a login" in str(refused.value.code) and "ui.auth" in str(refused.value.code)


def test_launch_hands_the_configured_logins_to_gradio(tiny_config, monkeypatch):
    import assistant.build
    from frontends import chat_window

    launched = {}

    class FakeApp:
        def queue(self, **kwargs):
            return self

        def launch(self, **kwargs):
            launched.update(kwargs)

    report = type("Report", (), {"notices": []})()
    monkeypatch.setattr(assistant.build, "build_controller", lambda config: (None, report))
    monkeypatch.setattr(chat_window, "build_app", lambda controller, notices: FakeApp())
    config = tiny_config.model_copy(deep=True)
    config.ui.host, config.ui.auth = "0.0.0.0", ["ana:secret"]
    assert chat_window.launch(config) == 0
    assert launched["auth"] == [("ana", "secret")] and launched["server_name"] == "0.0.0.0"
    assert launched["share"] is False
