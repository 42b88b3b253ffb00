"""The LLM's structured plan: used when it fits the schema and the words said, refused otherwise."""

import pytest

from assistant.plan import Intent
from assistant.planner import LLMPlanner, parse_plan
from assistant.rewrite import PromptRewriter, RuleRewriter
from assistant.state import DialogueState
from assistant.understand import understand
from tests.states import with_picture

REWRITER = PromptRewriter(RuleRewriter(["highly detailed"], ["blurry"]))


def scripted(answer: str) -> LLMPlanner:
    # The planner pre-fills '{"intent": "'; a scripted LLM continues from there.
    return LLMPlanner(lambda _prompt: answer)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ('{"intent": "generate", "subject": "a fox"}', None),
        ("no json here", "no JSON object"),
        ('{"intent": "dance", "subject": "a fox"}', "schema"),
        ('{"intent": "generate", "subject": "a fox", "mood": "sad"}', "schema"),
        ('{"intent": "generate", "subject": "a wolf in a castle"}', "nobody said: wolf, castle"),
        ('{"intent": "generate", "subject": ""}', "no subject"),
        ('{"intent": "edit", "subject": "a fox"}', "no picture"),
    ],
)
def test_parse_plan_refuses_what_does_not_fit(answer, problem):
    plan, why = parse_plan(answer, "I was thinking of a fox", has_picture=False)
    if problem is None:
        assert plan is not None and why is None
    else:
        assert plan is None and problem in why


def test_a_valid_llm_plan_decides_an_open_request():
    planner = scripted('generate", "subject": "a fox under the moon", "avoid": ["clouds"]}')
    plan = understand(
        "I was thinking maybe something like a fox under the moon, no clouds",
        DialogueState(),
        REWRITER,
        planner=planner,
    )
    assert plan.intent == Intent.GENERATE and plan.planner == "llm"
    assert plan.prompt.startswith("a fox under the moon")
    assert "clouds" in plan.negative_prompt and "clouds" not in plan.prompt


def test_an_llm_edit_changes_the_current_picture():
    planner = scripted('edit", "subject": "stormy sky", "avoid": []}')
    plan = understand("could the sky look a bit stormy", with_picture(), REWRITER, planner=planner)
    assert plan.intent == Intent.EDIT and plan.target_id == "n1"
    assert plan.prompt.startswith("a red barn in a field") and "stormy sky" in plan.prompt


def test_a_refused_llm_plan_falls_back_to_the_grammar():
    planner = scripted('generate", "subject": "a dragon", "avoid": []}')  # nobody said dragon
    plan = understand("draw a small house", DialogueState(), REWRITER, planner=planner)
    assert plan.intent == Intent.GENERATE and plan.planner == "grammar"
    assert "small house" in plan.prompt and "dragon" not in plan.prompt
    assert "dragon" in planner.last_problem


def test_commands_never_wait_for_the_llm():
    def fail(_prompt):
        raise AssertionError("the LLM was asked about a command")

    plan = understand("undo", with_picture(), REWRITER, planner=LLMPlanner(fail))
    assert plan.intent == Intent.UNDO
