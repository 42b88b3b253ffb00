"""New kinds of request carried out through whole turns (tiny profile): what a person sees."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from assistant.controller import UserInput
from assistant.events import EventType
from pipelines.metadata import read_png_params


@pytest.fixture(scope="module")
def controller(tiny_config):
    from assistant.build import build_controller

    controller, _ = build_controller(tiny_config)
    controller.tts = None  # text replies: these tests are about pictures and words
    return controller


def turn(controller, session, text):
    events = list(controller.run_turn(session, UserInput(text=text)))
    assert events[-1].type == EventType.TURN_END
    (reply,) = [e.data["text"] for e in events if e.type == EventType.REPLY]
    return events, reply


def test_flip_and_crop_are_exact_and_said_plainly(controller):
    session = controller.new_session()
    turn(controller, session, "draw a lighthouse on a cliff at night")
    first = session.state.current
    _, reply = turn(controller, session, "flip it horizontally")
    flipped = session.state.current
    assert flipped.parent_id == first.id and flipped.operation == "transform"
    assert flipped.prompt == first.prompt  # the scene did not change
    before, after = np.asarray(Image.open(first.path)), np.asarray(Image.open(flipped.path))
    assert np.array_equal(after, before[:, ::-1])
    assert "flipped it left to right" in reply and f"now {first.width} by" in reply

    _, reply = turn(controller, session, "make it a portrait version")
    portrait = session.state.current
    assert portrait.height > portrait.width and portrait.width % 8 == 0
    assert f"now {portrait.width} by {portrait.height}" in reply
    assert read_png_params(portrait.path)["operation"] == "transform"


def test_an_edit_records_the_new_scene_and_removed_things_in_the_negative(controller):
    session = controller.new_session()
    turn(controller, session, "a dog and a cat playing in a garden next to a lake with a boat")
    _, reply = turn(controller, session, "lose the boat")
    node = session.state.current
    assert "boat" not in node.prompt.split() and "garden" in node.prompt
    assert "boat" in node.negative_prompt
    assert "took out the boat" in reply


def test_start_over_history_and_go_back_two_steps(controller):
    session = controller.new_session()
    turn(controller, session, "draw a red vintage car on a beach")
    turn(controller, session, "now make the car blue")
    turn(controller, session, "make it winter")
    assert "blue" in session.state.current.prompt and "red" not in session.state.current.prompt

    _, reply = turn(controller, session, "go back two steps")
    assert session.state.current.id == "n1"

    _, reply = turn(controller, session, "what was the first thing I asked for?")
    assert "red vintage car on a beach" in reply

    _, reply = turn(controller, session, "show me all the pictures")
    assert "3 pictures" in reply and "n1" in reply

    events, reply = turn(controller, session, "start over")
    assert session.state.current is None and len(session.state.nodes) == 3
    assert "fresh start" in reply
    events, reply = turn(controller, session, "make it darker")
    assert not [e for e in events if e.type == EventType.IMAGE_START]  # nothing to change

    turn(controller, session, "draw a cabin in the woods")
    assert session.state.current.parent_id is None  # a new tree


def test_thanks_and_unclear_requests_draw_nothing(controller):
    session = controller.new_session()
    turn(controller, session, "draw a small wooden boat")
    for said in ("thanks, that's lovely", "hmm", "why did you do that?"):
        events, reply = turn(controller, session, said)
        assert not [e for e in events if e.type == EventType.IMAGE_START], said
        assert said.lower() not in reply.lower()
    assert len(session.state.nodes) == 1


def test_misheard_commands_are_understood_by_meaning(controller, data_dir):
    from assistant.router import IntentRouter

    controller.router = IntentRouter.load(cache_dir=data_dir / "router")
    try:
        session = controller.new_session()
        turn(controller, session, "draw a red barn in a field")
        turn(controller, session, "make it darker")
        _, reply = turn(controller, session, "and do that")  # Whisper's "undo that"
        assert session.state.current.id == "n1" and "previous picture" in reply
        events, _ = turn(controller, session, "free more like that")  # "three more like that"
        assert len(session.state.nodes) == 5
    finally:
        controller.router = None
