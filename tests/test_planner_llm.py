"""The real packaged instruct model as the planner (slow: loads Qwen2.5-Coder 0.5B)."""

from __future__ import annotations

import pytest

from assistant.plan import Intent
from assistant.planner import LLMPlanner, PlanContext
from assistant.rewrite import PromptRewriter, RuleRewriter
from assistant.state import DialogueState, Exchange, ImageNode
from assistant.understand import understand

pytestmark = pytest.mark.slow
REWRITER = PromptRewriter(RuleRewriter(["highly detailed"], ["blurry"]))


@pytest.fixture(scope="module")
def planner(data_dir):
    from assistant.llm_gguf import LlamaCppChat, packaged_gguf_path

    path = packaged_gguf_path("packaged:qwen2.5-coder-0.5b", data_dir)
    return LLMPlanner(LlamaCppChat(path, "qwen", threads=1))


def garden() -> DialogueState:
    state = DialogueState()
    for i, (prompt, said) in enumerate(
        [
            ("a dog in a garden, highly detailed", "draw a dog in a garden"),
            ("a dog in a garden, at night, highly detailed", "make it night"),
        ],
        start=1,
    ):
        state.add_node(
            ImageNode(
                id=f"n{i}", parent_id=None if i == 1 else "n1", operation="generate",
                prompt=prompt, negative_prompt="", seed=i, steps=1, guidance=0.0,
                strength=None, width=512, height=512, model="m", path=f"/x/n{i}.png",
                request=said,
            )
        )  # fmt: skip
        state.history.append(Exchange(user=said, reply="ok"))
    return state


@pytest.mark.parametrize(
    "said",
    [
        "I was hoping for something with a big red balloon",
        "could the dog be wearing a tiny scarf",
        "hmm honestly I liked the earlier one more",
        "do you remember what I wanted at the beginning",
        "that isn't really what I pictured",
    ],
)
def test_every_answer_fits_the_schema(planner, said):
    planner.plan(said, PlanContext.of(garden()))
    assert planner.last_answer is not None and "{" in planner.last_answer
    assert "schema" not in (planner.last_problem or "")  # shape enforced while decoding


def test_the_earlier_picture_is_picked_and_nothing_is_drawn_of_the_words(planner):
    plan = understand(
        "hmm honestly I liked the earlier one more", garden(), REWRITER, planner=planner
    )
    assert plan.intent in (Intent.SELECT, Intent.UNDO, Intent.CLARIFY)
    assert plan.intent != Intent.GENERATE
