"""The intent router: examples route to their intent, mishearings to the command they stand
for, picture descriptions never confidently to a command; the example embeddings are cached."""

from __future__ import annotations

import time

import pytest

from assistant.plan import Intent
from assistant.router import OPEN, ExampleSet, IntentRouter, normalise
from benchmarks.understand_cases import load_cases


@pytest.fixture(scope="session")
def router(tmp_path_factory) -> IntentRouter:
    return IntentRouter.load(cache_dir=tmp_path_factory.mktemp("router-cache"))


def test_the_encoder_and_examples_load_in_seconds(tmp_path):
    start = time.perf_counter()
    IntentRouter.load(cache_dir=tmp_path)
    assert time.perf_counter() - start < 5.0


def test_every_intent_of_the_examples_is_a_plan_intent_or_open():
    examples = ExampleSet.read()
    assert set(examples.intents) <= {i.value for i in Intent} | {OPEN}
    # every command the router can name has examples, beyond the ones only a plan can make
    assert set(examples.intents) >= {
        "undo", "redo", "again", "variations", "select", "transform", "reset", "history",
        "combine", "cancel", "help", "chitchat", "save", "describe", OPEN,
    }  # fmt: skip


def test_no_example_belongs_to_two_intents():
    examples = ExampleSet.read()
    seen: dict[str, str] = {}
    for intent, said in zip(examples.intents, examples.utterances, strict=True):
        assert seen.setdefault(said, intent) == intent, f"{said!r}: {seen[said]} and {intent}"


def test_repairs_stand_for_commands(router):
    for heard, meant in ExampleSet.read().repairs.items():
        routed = router.route(meant)
        assert routed.intent != OPEN and routed.confident, (heard, meant, routed)


def test_examples_said_with_fillers_route_to_their_intent(router):
    examples = ExampleSet.read()
    wrong = [
        (said, intent, router.route(f"um, okay {said}, please").intent)
        for intent, said in zip(examples.intents, examples.utterances, strict=True)
        if router.route(f"um, okay {said}, please").intent != intent
    ]
    assert not wrong


@pytest.mark.parametrize(
    ("heard", "intent"),
    [
        ("and do that.", "undo"),
        ("Do hot!", "undo"),
        ("undo dat", "undo"),
        ("Free more like that.", "variations"),
        ("Read do.", "redo"),
        ("Never mine.", "cancel"),
        ("Star over.", "reset"),
    ],
)
def test_mishearings_route_to_the_command(router, heard, intent):
    routed = router.route(heard)
    assert (routed.intent, routed.confident) == (intent, True)


@pytest.mark.parametrize(
    ("said", "intent"),
    [
        ("could you please take back that last edit", "undo"),
        ("hmm, bring back the change you undid", "redo"),
        ("I want to see all of them", "history"),
        ("flip it left to right please", "transform"),
        ("thanks a lot, it's wonderful", "chitchat"),
        ("forget everything and start a new one", "reset"),
    ],
)
def test_new_phrasings_of_commands_route_by_meaning(router, said, intent):
    assert router.route(said).intent == intent


@pytest.mark.parametrize(
    "said",
    [
        "a stop sign in the rain",
        "draw the undo button of a vintage typewriter",
        "a poster that says start over",
        "an old mirror in a dusty attic",
        "a help desk in a busy office",
        "paint a lighthouse at dawn",
        "make the sky pink",
        "lose the boat",
    ],
)
def test_picture_descriptions_are_never_confident_commands(router, said):
    routed = router.route(said)
    assert routed.intent == OPEN or not routed.confident, routed


def test_a_route_says_what_it_was_taken_for(router):
    routed = router.route("and do that")
    assert (routed.intent, routed.heard_as) == ("undo", "undo that")
    assert router.route("roll back the last change").neighbour  # the nearest example, named


def test_normalise_keeps_the_request_and_drops_fillers():
    assert normalise("Um, okay, undo that, please!") == "undo that"
    assert normalise("And do that.") == "and do that"  # the mishearing survives
    assert normalise("hmm") == ""
    assert normalise("Thanks!") == "thanks"  # nothing else was said: it is the request


def test_embeddings_are_cached_per_examples_file(tmp_path):
    examples = tmp_path / "examples.yaml"
    examples.write_text("intents:\n  undo:\n    examples: [undo]\n  open:\n    examples: [a cat]\n")
    first = IntentRouter.load(examples, cache_dir=tmp_path / "cache")
    cached = list((tmp_path / "cache").glob("examples-*.npy"))
    assert len(cached) == 1 and first.route("undo it").intent == "undo"
    examples.write_text(
        "intents:\n  undo:\n    examples: [undo]\n  open:\n    examples: [a cat, a dog]\n"
    )
    IntentRouter.load(examples, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("examples-*.npy"))) == 2  # a new key, not stale


def test_no_heldout_request_is_copied_from_the_examples():
    known = set(ExampleSet.read().utterances) | set(ExampleSet.read().repairs)
    copies = [c.say for c in load_cases(split="heldout") if normalise(c.say) in known]
    assert not copies
