"""The LLM's structured plan: used when it fits the schema, the state and the words said."""

import json

import pytest

from assistant.plan import ChangeKind, Intent, Transform
from assistant.planner import LLMPlanner, PlanContext, parse_plan, plan_messages, plan_schema
from assistant.rewrite import PromptRewriter, RuleRewriter
from assistant.state import DialogueState
from assistant.understand import understand
from tests.states import with_picture

REWRITER = PromptRewriter(RuleRewriter(["highly detailed"], ["blurry"]))
NO_PICTURE = PlanContext([], None, [])
BARN = PlanContext([("n1", "a red barn in a field")], "n1", ["draw a red barn in a field"])


class ScriptedLLM:
    """Answers every chat with one fixed text, and remembers what it was asked."""

    def __init__(self, answer: dict | str):
        self.answer = answer if isinstance(answer, str) else json.dumps(answer)
        self.calls: list[dict] = []

    def chat(self, messages, json_schema=None, max_tokens=80):
        self.calls.append({"messages": messages, "schema": json_schema})
        return self.answer


@pytest.mark.parametrize(
    ("answer", "context", "problem"),
    [
        ({"intent": "generate", "subject": "a fox"}, NO_PICTURE, None),
        ("no json here", NO_PICTURE, "no JSON object"),
        ({"intent": "dance", "subject": "a fox"}, NO_PICTURE, "schema"),
        ({"intent": "generate", "subject": "a fox", "mood": "sad"}, NO_PICTURE, "schema"),
        ({"intent": "generate", "subject": "a wolf in a castle"}, NO_PICTURE, "nobody said"),
        ({"intent": "generate", "subject": ""}, NO_PICTURE, "no subject"),
        ({"intent": "edit", "kind": "add", "value": "fox"}, NO_PICTURE, "no picture"),
        ({"intent": "select", "target": "n7"}, BARN, "does not exist"),
        ({"intent": "edit"}, BARN, "no change"),
        ({"intent": "transform"}, BARN, "no operation"),
    ],
)
def test_parse_plan_refuses_what_does_not_fit(answer, context, problem):
    text = answer if isinstance(answer, str) else json.dumps(answer)
    plan, why = parse_plan(text, "I was thinking of a fox", context)
    if problem is None:
        assert plan is not None and why is None
    else:
        assert plan is None and problem in why


def test_an_edit_may_name_a_thing_from_the_picture_it_changes():
    answer = {"intent": "edit", "kind": "remove", "object": "barn"}
    plan, why = parse_plan(json.dumps(answer), "lose that thing", BARN)
    assert why is None and plan.kind == "remove"


def test_the_llm_is_shown_the_pictures_the_focus_and_the_last_turns():
    llm = ScriptedLLM({"intent": "clarify"})
    LLMPlanner(llm).plan("hmm what about that", BARN)
    asked = llm.calls[0]["messages"][-1]["content"]
    assert "n1 (in view): a red barn in a field" in asked
    assert "draw a red barn in a field" in asked and "hmm what about that" in asked
    assert llm.calls[0]["schema"] == plan_schema()


def test_the_fixed_prefix_is_the_same_for_every_request():
    # The instructions and examples come first and never change, so their KV cache is reused.
    a, b = plan_messages("a fox", NO_PICTURE), plan_messages("undo", BARN)
    assert a[:-1] == b[:-1] and a[-1] != b[-1]


def test_a_valid_llm_plan_decides_an_open_request():
    llm = ScriptedLLM(
        {"intent": "generate", "subject": "a fox under the moon", "avoid": ["clouds"]}
    )
    plan = understand(
        "I was thinking maybe something like a fox under the moon, no clouds",
        DialogueState(),
        REWRITER,
        planner=LLMPlanner(llm),
    )
    assert plan.intent == Intent.GENERATE and plan.planner == "llm"
    assert plan.prompt.startswith("a fox under the moon")
    assert "clouds" in plan.negative_prompt and "clouds" not in plan.prompt


def test_an_llm_edit_compiles_into_the_scene():
    llm = ScriptedLLM({"intent": "edit", "kind": "weather", "value": "stormy"})
    plan = understand(
        "I feel the weather ought to be stormy", with_picture(), REWRITER, planner=LLMPlanner(llm)
    )
    assert plan.intent == Intent.EDIT and plan.target_id == "n1" and plan.planner == "llm"
    assert plan.change.kind == ChangeKind.WEATHER
    assert plan.prompt.startswith("a red barn in a field") and "storm" in plan.prompt


def test_an_llm_transform_and_select_are_carried_out():
    llm = ScriptedLLM({"intent": "transform", "transform": "flip-horizontal"})
    plan = understand(
        "the other way round maybe", with_picture(), REWRITER, planner=LLMPlanner(llm)
    )
    assert plan.intent == Intent.TRANSFORM and plan.transforms == (Transform.FLIP_HORIZONTAL,)


def test_a_refused_llm_plan_never_draws_a_question():
    llm = ScriptedLLM({"intent": "generate", "subject": "a wolf"})  # nobody said wolf
    plan = understand("why would you do that", with_picture(), REWRITER, planner=LLMPlanner(llm))
    assert plan.intent == Intent.CLARIFY


def test_a_crashing_llm_means_no_plan():
    class Broken:
        def chat(self, *a, **k):
            raise RuntimeError("out of memory")

    planner = LLMPlanner(Broken())
    assert planner.plan("a fox", NO_PICTURE) is None and "out of memory" in planner.last_problem


def test_commands_never_reach_the_llm():
    llm = ScriptedLLM({"intent": "generate", "subject": "undo"})
    plan = understand("undo", with_picture(), REWRITER, planner=LLMPlanner(llm))
    assert plan.intent == Intent.UNDO and not llm.calls


@pytest.mark.parametrize(
    ("kind", "obj", "value", "want"),
    [
        ("setting", "boat", "red", ChangeKind.SET_ATTRIBUTE),
        ("setting", "", "on a beach", ChangeKind.SETTING),
        ("replace", "cat", "cat with a hat", ChangeKind.ADD),
        ("set-attribute", "", "at sunset", ChangeKind.TIME_OF_DAY),
        ("add", "", "snowing", ChangeKind.WEATHER),
        ("remove", "", "boat", ChangeKind.REMOVE),
    ],
)
def test_a_loosely_named_change_kind_is_repaired_from_its_words(kind, obj, value, want):
    from assistant.change_requests import repair_change

    assert repair_change(kind, obj, value).kind == want


@pytest.mark.parametrize(
    ("said", "answer", "intent"),
    [
        # A small model's guesses that nothing in the words supports are not carried out.
        ("a sailboat on a calm lake at dawn", {"intent": "select", "target": "n1"}, "generate"),
        ("do the thing", {"intent": "undo"}, "clarify"),
        (
            "something different now: a watercolor of a fox in the snow",
            {"intent": "edit", "kind": "style", "value": "watercolor"},
            "generate",
        ),
    ],
)
def test_an_llm_plan_the_words_do_not_support_is_not_carried_out(said, answer, intent):
    plan = understand(said, with_picture(), REWRITER, planner=LLMPlanner(ScriptedLLM(answer)))
    assert plan.intent == Intent(intent)
    if intent == "generate":
        assert "fox" in plan.prompt or "sailboat" in plan.prompt
        assert "something different" not in plan.prompt


def test_a_hesitation_never_reaches_the_llm():
    llm = ScriptedLLM({"intent": "undo"})
    plan = understand("er", with_picture(), REWRITER, planner=LLMPlanner(llm))
    assert plan.intent == Intent.CLARIFY and llm.calls == []


def test_the_warm_up_reads_the_planner_prompt_once_without_asking_for_a_plan():
    llm = ScriptedLLM('{"')  # one token of an answer: not a plan, and no error either
    LLMPlanner(llm).warm_up()
    (call,) = llm.calls
    assert call["schema"] is None and "planner" in call["messages"][0]["content"]
