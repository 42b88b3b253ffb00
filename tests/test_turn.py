"""Whole turns through the controller in the tiny profile: text and audio in, image and speech out.

Real parts: openai-whisper with the packaged weights, Piper speech, diffusers classes (tiny,
random). What is asserted is what a person would check: the picture file and its settings, the
spoken reply, that a seed repeats a picture, that an edit starts from the last picture, that
undo brings it back, and that bad input is refused with a code and costs nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from assistant.controller import UserInput
from assistant.events import EventType
from pipelines.metadata import read_png_params
from tests.speech import say


@pytest.fixture(scope="module")
def controller(tiny_config):
    from assistant.build import build_controller

    controller, report = build_controller(tiny_config)
    assert report.notices and "placeholder" in report.notices[0]
    return controller


def run(controller, session, **kwargs):
    events = list(controller.run_turn(session, UserInput(**kwargs)))
    assert events[0].type == EventType.TURN_START and events[-1].type == EventType.TURN_END
    return events


def of(events, kind):
    return [e.data for e in events if e.type == kind]


def done_image(events):
    (data,) = [d for d in of(events, EventType.IMAGE_DONE) if not d["focus_only"]]
    return data


def assert_spoken_reply(events, rate=24000):  # the default hibari voice's rate
    (end,) = of(events, EventType.TTS_END)
    samples, got_rate = sf.read(end["path"], dtype="float32")
    assert rate is None or got_rate == rate
    assert len(samples) / got_rate > 0.5
    assert np.sqrt(np.mean(samples**2)) > 0.01  # not silence


def test_text_turn_writes_image_with_parameters_and_speaks(controller):
    session = controller.new_session()
    events = run(controller, session, text="Draw a lighthouse on a cliff at night")
    types = [e.type for e in events]
    assert types.index(EventType.PLAN) < types.index(EventType.IMAGE_START)
    assert types.index(EventType.IMAGE_DONE) < types.index(EventType.REPLY)
    assert len(of(events, EventType.IMAGE_PROGRESS)) == 2  # tiny profile: 2 steps
    image = done_image(events)
    params = read_png_params(image["path"])
    assert "lighthouse on a cliff at night" in params["prompt"]
    assert params["seed"] == image["seed"] and params["seed"] >= 0
    assert Image.open(image["path"]).size == (64, 64)
    (reply,) = of(events, EventType.REPLY)
    assert "lighthouse" in reply["text"] and "placeholder" in reply["text"]
    assert of(events, EventType.TURN_END)[0]["ok"]
    assert_spoken_reply(events)


def test_audio_turn_transcribes_then_draws(controller, tmp_path):
    wav = say("Draw a red barn in a snowy field.", tmp_path / "request.wav")
    session = controller.new_session()
    events = run(controller, session, audio=str(wav))
    (heard,) = of(events, EventType.ASR_END)
    for word in ("red", "barn", "snowy", "field"):
        assert word in heard["text"].lower()
    prompt = read_png_params(done_image(events)["path"])["prompt"]
    assert "red barn" in prompt and "snowy field" in prompt
    assert_spoken_reply(events)


def test_same_seed_same_pixels_edit_parent_and_undo(controller):
    session = controller.new_session()
    first = done_image(run(controller, session, text="a blue teapot"))
    again = done_image(run(controller, session, text="again"))
    assert again["prompt"] == first["prompt"] and again["parent_id"] is None

    # The same prompt and seed give the very same pixels.
    session_b = controller.new_session()
    controller.defaults.seed = first["seed"]
    try:
        repeat = done_image(run(controller, session_b, text="a blue teapot"))
    finally:
        controller.defaults.seed = -1
    assert np.array_equal(
        np.asarray(Image.open(repeat["path"])), np.asarray(Image.open(first["path"]))
    )

    edit_events = run(controller, session, text="make it darker")
    (plan,) = of(edit_events, EventType.PLAN)
    assert plan["intent"] == "edit" and plan["operation"] == "img2img"
    edited = done_image(edit_events)
    assert edited["parent_id"] == again["node_id"]
    assert edited["operation"] == "img2img" and "dark" in edited["prompt"]
    assert read_png_params(edited["path"])["parent"] == again["node_id"]

    undo = run(controller, session, text="undo")
    (focus,) = of(undo, EventType.IMAGE_DONE)
    assert focus["focus_only"] and focus["node_id"] == again["node_id"]
    assert session.state.current.path == again["path"]
    assert len(session.state.nodes) == 3  # nothing was deleted
    redo = run(controller, session, text="redo")
    assert of(redo, EventType.IMAGE_DONE)[0]["node_id"] == edited["node_id"]


def error_code(events):
    errors = of(events, EventType.ERROR)
    return errors[0]["code"] if errors else None


def test_bad_input_gets_a_code_and_the_session_goes_on(controller, tmp_path, tiny_config):
    session = controller.new_session()
    done_image(run(controller, session, text="a green apple"))
    before = dict(session.state.nodes)

    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" + bytes(range(256)))
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32000, dtype=np.float32), 16000)
    cases = [
        (dict(audio=str(corrupt)), "audio-invalid"),
        (dict(audio=str(silent)), "asr-no-speech"),
        (dict(text="   "), "input-invalid"),
        (dict(text="x" * 5000), "input-invalid"),
    ]
    for kwargs, code in cases:
        events = run(controller, session, **kwargs)
        assert error_code(events) == code, kwargs
        (reply,) = of(events, EventType.REPLY)
        assert reply["text"]  # the person is told what happened
        assert not of(events, EventType.TURN_END)[0]["ok"]
        assert session.state.nodes == before

    # The next ordinary turn of the same session still works and edits the same picture.
    edit = done_image(run(controller, session, text="make it brighter"))
    assert edit["parent_id"] in before


def test_missing_model_is_a_clear_error(tiny_config):
    from assistant.build import build_image_engine
    from pipelines.errors import ImageError

    config = tiny_config.model_copy(deep=True)
    config.image.model = "/nowhere/stable-diffusion"
    with pytest.raises(ImageError) as info:
        build_image_engine(config, "cpu")
    assert info.value.code == "model-missing" and "image.model" in info.value.message


def test_edit_without_a_picture_asks_back(controller):
    session = controller.new_session()
    events = run(controller, session, text="make it darker")
    (plan,) = of(events, EventType.PLAN)
    assert plan["intent"] == "clarify"
    (reply,) = of(events, EventType.REPLY)
    assert reply["expects_answer"] and "no picture" in reply["text"].lower()
    assert not of(events, EventType.IMAGE_START)


def test_cancel_stops_the_image_and_keeps_the_session(controller):
    import threading

    session = controller.new_session()
    # Enough steps that the picture cannot finish before the first progress event is read,
    # even on a busy machine (with the model's 2 steps it sometimes did).
    controller.update_settings(session, steps=60)
    cancel = threading.Event()
    events = []
    for event in controller.run_turn(session, UserInput(text="a tall tower"), cancel=cancel):
        events.append(event)
        if event.type == EventType.IMAGE_PROGRESS:
            cancel.set()
    assert error_code(events) == "image-cancelled"
    assert not session.state.nodes
    controller.update_settings(session, steps=None)
    assert done_image(run(controller, session, text="a tall tower"))["node_id"] == "n1"


def test_session_settings_fix_the_seed_and_turn_rewriting_off(controller):
    session = controller.new_session()
    session.settings = {"seed": 1234, "raw": True, "steps": 1}
    image = done_image(run(controller, session, text="oil painting of a pear, no table"))
    params = read_png_params(image["path"])
    assert params["seed"] == 1234 and params["steps"] == 1
    assert params["prompt"] == "oil painting of a pear"  # raw: the words as said
    assert "table" in params["negative_prompt"]
    other = controller.new_session()  # settings belong to one session only
    assert (
        read_png_params(done_image(run(controller, other, text="a pear"))["path"])["seed"] != 1234
    )


def test_extend_upscale_and_repaint_by_conversation(controller):
    session = controller.new_session()
    first = done_image(run(controller, session, text="a harbour at dawn"))

    wider = done_image(run(controller, session, text="extend it to the right by 32 pixels"))
    assert wider["operation"] == "outpaint" and wider["parent_id"] == first["node_id"]
    assert Image.open(wider["path"]).size == (96, 64)

    bigger = done_image(run(controller, session, text="make it bigger"))
    assert bigger["operation"] == "upscale"
    assert Image.open(bigger["path"]).size == (192, 128)

    mask = Image.new("L", (192, 128), 0)
    mask.paste(255, (0, 0, 64, 64))  # repaint the top-left corner only
    events = run(controller, session, text="a red lighthouse", mask=mask)
    (plan,) = of(events, EventType.PLAN)
    assert plan["intent"] == "inpaint"
    repainted = done_image(events)
    before = np.asarray(Image.open(bigger["path"]))
    after = np.asarray(Image.open(repainted["path"]))
    assert np.array_equal(before[:, 96:], after[:, 96:])  # far from the mask: untouched
    assert not np.array_equal(before[:48, :48], after[:48, :48])


def test_style_presets_restyle_the_picture_and_apply_to_new_ones(controller):
    session = controller.new_session()
    first = done_image(run(controller, session, text="a fishing village"))
    events = run(controller, session, text="make it watercolor")
    (plan,) = of(events, EventType.PLAN)
    assert plan["intent"] == "style" and plan["style"] == "watercolor"
    styled = done_image(events)
    assert styled["parent_id"] == first["node_id"] and styled["operation"] == "img2img"
    assert styled["prompt"].startswith("watercolor painting of a fishing village")
    assert "photo" in styled["negative_prompt"]

    session.settings = {"style": "pixel art"}  # the chat window's style setting
    new = done_image(run(controller, session, text="a red dragon"))
    assert new["prompt"].startswith("pixel art of a red dragon")


def test_speech_in_another_language_becomes_an_english_prompt(controller):
    from voice.asr import Transcript

    class GermanSpeaker:  # what Whisper gives for "Zeichne einen Leuchtturm bei Nacht"
        def transcribe(self, audio, language=None, task=None):
            text = (
                "Draw a lighthouse at night"
                if task == "translate"
                else "Zeichne einen Leuchtturm bei Nacht"
            )
            return Transcript(text, "de", 0.9, 0.01, 2.0, 0.5)

    real, controller.asr = controller.asr, GermanSpeaker()
    try:
        events = run(controller, controller.new_session(), audio=b"not used by the fake")
    finally:
        controller.asr = real
    (heard,) = of(events, EventType.ASR_END)
    assert heard["language"] == "de" and heard["heard"].startswith("Zeichne")
    assert "lighthouse at night" in done_image(events)["prompt"]


def test_a_session_can_pick_another_image_model_and_voice(controller):
    session = controller.new_session()
    session.settings = {"image_model": "random:small", "voice": "espeak"}
    events = run(controller, session, text="a paper boat")
    assert read_png_params(done_image(events)["path"])["model"] == "random:small"
    (start,) = of(events, EventType.TTS_START)
    assert "espeak" in start["engine"]
    assert_spoken_reply(events, rate=None)

    other = controller.new_session()  # the default model and voice are untouched
    events = run(controller, other, text="a paper boat")
    assert read_png_params(done_image(events)["path"])["model"] == "random:tiny"

    session.settings = {"image_model": "/nowhere/sd-model"}
    events = run(controller, session, text="a paper plane")
    assert error_code(events) == "model-missing"
    assert len(session.state.nodes) == 1  # the earlier picture is still there


def test_keep_the_layout_edits_through_depth_and_says_when_it_could_not(controller, monkeypatch):
    session = controller.new_session()
    first = done_image(run(controller, session, text="a cabin in a forest"))
    events = run(controller, session, text="keep the layout but make it winter")
    (start,) = of(events, EventType.IMAGE_START)
    assert start["operation"] == "depth" and start["parent"] == first["node_id"]
    edited = done_image(events)
    assert edited["operation"] == "depth" and "winter" in edited["prompt"]
    assert read_png_params(edited["path"])["edit_path"] == "depth2img"
    assert np.asarray(Image.open(edited["path"])).std() > 1  # a picture, not NaN cast to grey
    assert "kept its shapes" in of(events, EventType.REPLY)[0]["text"]
    assert "keep" not in edited["prompt"]  # the keep-clause is an instruction, not a subject

    # Outlines ask for a canny ControlNet; with none configured, depth keeps the shapes.
    events = run(controller, session, text="keep the outlines but make it a pencil sketch")
    assert of(events, EventType.IMAGE_START)[0]["operation"] == "controlnet"
    assert done_image(events)["operation"] == "depth"

    # Without a depth model the engine falls back to img2img, and the reply does not pretend.
    monkeypatch.setattr(controller.image_engine, "depth_model", None)
    events = run(controller, session, text="same composition, but at sunset")
    assert done_image(events)["operation"] == "img2img"
    assert "shapes may have moved" in of(events, EventType.REPLY)[0]["text"]


def test_a_part_named_by_position_is_repainted_and_the_rest_kept(controller, monkeypatch):
    session = controller.new_session()
    first = done_image(run(controller, session, text="a lighthouse on a cliff at night"))
    events = run(controller, session, text="add a moon in the top right corner")
    (start,) = of(events, EventType.IMAGE_START)
    assert start["operation"] == "inpaint" and start["region"] == "top right corner"
    edited = done_image(events)
    assert edited["parent_id"] == first["node_id"] and "moon" in edited["prompt"]
    before = np.asarray(Image.open(first["path"]).convert("RGB"), dtype=np.int16)
    after = np.asarray(Image.open(edited["path"]).convert("RGB"), dtype=np.int16)
    assert np.array_equal(before[40:, :24], after[40:, :24])  # far from the corner: untouched
    assert np.abs(before[:32, 32:] - after[:32, 32:]).mean() > 1  # the corner was repainted
    assert of(events, EventType.REPLY)[0]["text"].startswith("I repainted the top right corner")

    # A part named by what it shows needs the segmenter; without one, say so and keep all.
    monkeypatch.setattr(controller, "segmenter", None)
    events = run(controller, session, text="replace the sky with a sunset")
    assert error_code(events) == "input-invalid"
    assert "segmentation model" in of(events, EventType.REPLY)[0]["text"]
    assert len(session.state.nodes) == 2


def test_spoken_replies_say_no_paths_or_setting_names_but_keep_slashed_words():
    from assistant.controller import spoken_text

    assert spoken_text("I saved it to outputs/ab12/n1.png.") == "I saved it to the outputs folder."
    assert "/tmp" not in spoken_text("The file is /tmp/x/reply.wav")
    kept = "a red barn and/or a boat, open 24/7"
    assert spoken_text(kept) == kept
    assert "image.model" not in spoken_text("Set image.model to a model folder.")


def test_every_turn_ends_by_giving_freed_memory_back(controller, monkeypatch):
    """The trim is the controller's, so the API, the voice loop and the CLI all get it."""
    import assistant.controller as controller_module

    calls = []
    monkeypatch.setattr(controller_module, "release_memory_after_turn", lambda: calls.append(1))
    session = controller.new_session()
    run(controller, session, text="draw a red barn")
    run(controller, session, text="hmm")  # a turn without a picture trims too
    assert len(calls) == 2


def test_after_a_turn_the_planner_is_handed_the_new_session_to_prepare(tiny_config):
    """With a planner, the session's new state is evaluated ahead of the next request."""
    import threading

    from assistant.build import build_controller

    controller, _ = build_controller(tiny_config, with_asr=False, with_tts=False)
    prepared = threading.Event()
    seen = []

    class Planner:
        def plan(self, request, context=None):
            return None

        def prepare_for(self, context):
            seen.append(context)
            prepared.set()

    controller.planner, controller.prepare_plans = Planner(), True
    session = controller.new_session()
    run(controller, session, text="draw a red barn")
    assert prepared.wait(10)
    assert seen[-1].current == session.state.focus_id and "red barn" in seen[-1].pictures[-1][1]


def test_only_one_head_start_runs_at_a_time(tiny_config):
    """Many turns at once (the API) never queue head starts in front of real requests."""
    import threading

    from assistant.build import build_controller

    controller, _ = build_controller(tiny_config, with_asr=False, with_tts=False)
    release, calls = threading.Event(), []

    class SlowPlanner:
        def plan(self, request, context=None):
            return None

        def prepare_for(self, context):
            calls.append(context)
            release.wait(10)

    controller.planner, controller.prepare_plans = SlowPlanner(), True
    for said in ("draw a red barn", "draw a blue boat", "draw a green frog"):
        run(controller, controller.new_session(), text=said)
    release.set()
    controller._preparing.join(10)
    assert len(calls) == 1
