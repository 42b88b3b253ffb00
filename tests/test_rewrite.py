"""The prompt rewriter keeps what the person asked for, and refuses LLM output that does not."""

import pytest

from assistant.rewrite import (
    PromptRewriter,
    RuleRewriter,
    content_words,
    find_problem,
    split_negatives,
)
from benchmarks.casual_requests import REQUESTS

RULES = RuleRewriter(["highly detailed", "sharp focus"], ["blurry", "low quality"])


@pytest.mark.parametrize(("said", "keep", "negative"), REQUESTS)
def test_rules_keep_every_content_word_and_move_negatives(said, keep, negative):
    result = RULES.generate(said)
    prompt_words = set(content_words(result.prompt))
    for word in keep:
        assert word in prompt_words, f"{word!r} lost from {result.prompt!r}"
    for word in negative:
        assert word in result.negative_prompt
        assert word not in prompt_words, f"{word!r} should only be in the negative prompt"
    assert "blurry" in result.negative_prompt  # the default negatives are kept
    assert not result.prompt.lower().startswith(("draw", "paint", "can you", "make", "show"))


def test_edit_folds_the_change_into_the_previous_prompt():
    base = "a lighthouse on a cliff at night, highly detailed, sharp focus"
    result = RULES.edit("make it darker, without boats", base, "blurry")
    assert result.prompt.startswith("a lighthouse on a cliff at night")
    assert "darker" in result.prompt and "boats" not in result.prompt
    assert result.prompt.count("highly detailed") == 1
    assert "boats" in result.negative_prompt and "blurry" in result.negative_prompt


def test_split_negatives():
    rest, negatives = split_negatives("a beach with no people and no umbrellas")
    assert rest == "a beach"
    assert negatives == ["people", "umbrellas"]


@pytest.mark.parametrize(
    ("llm_says", "problem"),
    [
        ("", "empty"),
        ("cozy, cozy, cozy, cozy, cozy cabin in the woods", "repeats itself"),
        ("a cabin by a lake, soft light", "dropped the words cozy, woods"),
        ("a cozy cabin in the woods, " + "tall pine trees and " * 20, "too long"),
        ("a cozy cabin in the woods, smoke, people walking", "left out"),
    ],
)
def test_bad_llm_output_is_refused(llm_says, problem):
    found = find_problem(llm_says, "a cozy cabin in the woods", ["people"], max_words=40)
    assert found is not None and problem in found


def test_good_llm_output_is_used_and_bad_falls_back_to_rules():
    scripted = {"a cozy cabin in the woods": "a cozy cabin in the woods, warm light, snow"}
    rewriter = PromptRewriter(RULES, llm=lambda subject: scripted.get(subject, "loop loop loop"))
    good = rewriter.generate("draw a cozy cabin in the woods with no people")
    assert good.rewriter == "llm"
    assert good.prompt == "a cozy cabin in the woods, warm light, snow"
    assert "people" in good.negative_prompt

    fallback = rewriter.generate("draw a red barn")
    assert fallback.rewriter == "rules" and "refused" in fallback.note
    assert "red barn" in fallback.prompt


def test_llm_crash_falls_back_to_rules():
    def broken(_subject):
        raise RuntimeError("out of memory")

    result = PromptRewriter(RULES, llm=broken).generate("a blue whale")
    assert result.rewriter == "rules" and "blue whale" in result.prompt
    assert "out of memory" in result.note


def test_raw_mode_uses_the_words_as_said():
    result = PromptRewriter(RULES, raw=True).generate("oil painting of a pear, no table")
    assert result.rewriter == "raw"
    assert result.prompt == "oil painting of a pear"
    assert "table" in result.negative_prompt
