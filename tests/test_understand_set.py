"""The understanding set (benchmarks/understand_set.yaml): well formed, and the fast path
(grammar + router, no LLM) understands its heldout split."""

from __future__ import annotations

import pytest

from assistant.plan import Intent
from assistant.router import IntentRouter
from benchmarks.understand import Mode, plan_case, rules_rewriter, summarise
from benchmarks.understand_cases import build_state, load_cases

CASES = load_cases()
HELDOUT_INTENT_ACCURACY = 0.90  # issue #10: CI asserts the heldout split at >= 90%


def test_the_set_is_big_enough_and_keeps_a_heldout_part():
    assert len(CASES) >= 250
    heldout = [c for c in CASES if c.split == "heldout"]
    assert 0.35 <= len(heldout) / len(CASES) <= 0.45
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_expectation_names_real_intents_and_pictures():
    intents = {i.value for i in Intent}
    for case in CASES:
        assert set(case.expect.intents) <= intents, case.id
        nodes = set(build_state(case).nodes)
        named = {case.expect.target, *case.expect.uses} - {None}
        assert named <= nodes, f"{case.id} names {named - nodes}, the session has {nodes}"


def test_every_new_intent_and_the_issue_phrasings_are_covered():
    covered = {i for c in CASES for i in c.expect.intents}
    assert {"transform", "reset", "history", "combine"} <= covered
    said = {c.say for c in CASES}
    for phrase in (
        "start over",
        "go back two steps",
        "show me all the pictures",
        "lose the boat",
        "same thing but at night",
        "use the same seed as before but in watercolor",
    ):
        assert phrase in said


@pytest.fixture(scope="module")
def fast_path(tiny_config, tmp_path_factory):
    router = IntentRouter.load(cache_dir=tmp_path_factory.mktemp("router"))
    mode = Mode("router", rules_rewriter(tiny_config), router=router)
    return summarise([plan_case(c, mode) for c in CASES if c.split == "heldout"])


def test_the_fast_path_understands_the_heldout_split(fast_path):
    assert fast_path["intent_heldout"] >= HELDOUT_INTENT_ACCURACY


def test_the_fast_path_never_draws_a_command(fast_path):
    assert fast_path["literal"] == 0


def test_the_fast_path_writes_edit_prompts_that_describe_the_scene(fast_path):
    assert fast_path["prompt_passed"] == fast_path["prompt_checks"]
