"""Asking back when speech was heard with little confidence ("I heard ... Shall I go ahead?")."""

from __future__ import annotations

import pytest

from assistant.confirm import Answer, answer_to
from assistant.controller import UserInput
from assistant.events import EventType
from tests.speech import say


@pytest.fixture(scope="module")
def controller(tiny_config):
    from assistant.build import build_controller

    controller, _ = build_controller(tiny_config)
    return controller


class Heard:
    """A recognizer that hears what it is told, with the confidence it is told."""

    def __init__(self, text: str, confidence: float):
        self.text, self.confidence = text, confidence

    def transcribe(self, audio, language=None, task=None):
        from voice.asr import Transcript

        return Transcript(self.text, "en", self.confidence, 0.01, 2.0, 0.3)


def turn(controller, session, heard: Heard | None = None, text: str | None = None):
    """One turn, spoken (``heard``) or typed: (reply text, expects an answer, pictures made)."""
    real = controller.asr
    if heard is not None:
        controller.asr = heard
    before = len(session.state.nodes)
    try:
        audio = b"not read by the fake" if heard is not None else None
        events = list(controller.run_turn(session, UserInput(text=text or "", audio=audio)))
    finally:
        controller.asr = real
    (reply,) = [e.data for e in events if e.type == EventType.REPLY]
    return reply["text"], reply["expects_answer"], len(session.state.nodes) - before


MISHEARD = "Draw free sailboat son of Kam Blue Lake."  # what Whisper made of espeak's request


def test_a_doubtful_hearing_is_asked_about_and_yes_draws_it(controller):
    session = controller.new_session()
    reply, asks, made = turn(controller, session, Heard(MISHEARD, 0.49))
    assert made == 0 and asks
    assert reply == f'I heard "{MISHEARD[:-1]}". Shall I go ahead?'
    reply, asks, made = turn(controller, session, Heard("Yes, please.", 0.9))
    assert made == 1 and not asks
    assert "sailboat" in session.state.current.prompt


def test_no_asks_to_say_it_again_and_a_correction_is_used(controller):
    session = controller.new_session()
    turn(controller, session, Heard(MISHEARD, 0.49))
    reply, asks, made = turn(controller, session, Heard("No.", 0.9))
    assert made == 0 and "say it again" in reply
    # The request is dropped: a later "yes" is not an answer to it.
    reply, _, made = turn(controller, session, text="yes")
    assert made == 0

    turn(controller, session, Heard(MISHEARD, 0.49))
    reply, _, made = turn(controller, session, text="No, draw three sailboats on a calm blue lake")
    assert made == 1 and "three sailboats" in session.state.current.prompt


def test_saying_something_else_is_a_new_request(controller):
    session = controller.new_session()
    turn(controller, session, Heard(MISHEARD, 0.49))
    _, _, made = turn(controller, session, Heard("Draw three sailboats on a calm blue lake.", 0.8))
    assert made == 1 and "free" not in session.state.current.prompt
    assert session.state.pending_confirmation is None


def test_only_pictures_are_confirmed_and_typing_never_is(controller):
    session = controller.new_session()
    _, _, made = turn(controller, session, text="draw free sailboat son of kam blue lake")
    assert made == 1  # typed: nothing was misheard
    reply, asks, _ = turn(controller, session, Heard("What prompt did you use?", 0.45))
    assert reply.startswith("I used the prompt") and not asks  # a question costs nothing
    _, _, made = turn(controller, session, Heard("Make it darker.", 0.85))
    assert made == 1  # heard clearly: no question


def test_the_question_outlives_a_restart(controller, tiny_config):
    from assistant.build import build_controller

    session = controller.new_session()
    turn(controller, session, Heard(MISHEARD, 0.49))
    restarted, _ = build_controller(tiny_config, with_asr=False)
    resumed = restarted.resume(session.id)
    _, _, made = turn(restarted, resumed, text="yes")
    assert made == 1 and "sailboat" in resumed.state.current.prompt


@pytest.mark.parametrize(
    "said, answer, rest",
    [
        ("yes", Answer.YES, ""),
        ("Yeah, go ahead.", Answer.YES, ""),
        ("That's right, thanks", Answer.YES, ""),
        ("ja", Answer.YES, ""),
        ("No.", Answer.NO, ""),
        ("nope", Answer.NO, ""),
        ("No, make the boat green.", Answer.NO, "make the boat green"),
        ("no clouds", Answer.OTHER, "no clouds"),  # a request, not an answer
        ("yes make it bigger", Answer.OTHER, "yes make it bigger"),
        ("ok make it darker", Answer.OTHER, "ok make it darker"),
    ],
)
def test_answers_are_read_as_people_say_them(said, answer, rest):
    assert answer_to(said) == (answer, rest)


def test_a_robotic_voice_misheard_by_whisper_is_asked_about(controller, tmp_path):
    """The real recognizer on espeak-ng's "Draw three sailboats on a calm blue lake", which it
    hears as nonsense with low confidence (0.50 on faster-whisper int8 base)."""
    wav = say("Draw three sailboats on a calm blue lake.", tmp_path / "s.wav", voice="espeak")
    session = controller.new_session()
    events = list(controller.run_turn(session, UserInput(audio=str(wav))))
    (heard,) = [e.data for e in events if e.type == EventType.ASR_END]
    (reply,) = [e.data for e in events if e.type == EventType.REPLY]
    assert heard["confidence"] < controller.confirm_below, heard
    assert reply["text"] == f'I heard "{heard["text"].rstrip(".")}". Shall I go ahead?'
    assert not session.state.nodes
