"""The prompt rewriter keeps what the person asked for, and refuses LLM output that does not."""

import pytest

from assistant.rewrite import (
    ChatPromptWriter,
    PromptRewriter,
    RuleRewriter,
    content_words,
    drop_contradictions,
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


# --- what the LLM adds must not contradict what was said ------------------------------------
@pytest.mark.parametrize(
    ("said", "llm_says", "dropped", "kept"),
    [
        # The issue's own examples, from the packaged Gemma base model.
        (
            "a desert with no moon",
            "a desert, bright sunlit night, lush vegetation, wide shot",
            ["bright sunlit night", "lush vegetation"],
            ["wide shot"],
        ),
        (
            "an autumn fox",
            "an autumn fox, wintery scene, snowy forest, orange fur",
            ["wintery scene", "snowy forest"],
            ["orange fur"],
        ),
        (
            "a medieval market",
            "a medieval market, modern architecture, busy stalls",
            ["modern architecture"],
            ["busy stalls"],
        ),
        (
            "a lighthouse at night",
            "a lighthouse at night, moonlit sky, breathtaking sunset",
            ["breathtaking sunset"],
            ["moonlit sky"],
        ),
        (
            "a photo of a dog",
            "a photo of a dog, watercolor painting, 85mm lens",
            ["watercolor painting"],
            ["85mm lens"],
        ),
        (
            "a watercolor of a pear",
            "a watercolor of a pear, photorealistic, paper texture",
            ["photorealistic"],
            ["paper texture"],
        ),
        (
            "paint a stormy sea",
            "a stormy sea, calm water, underwater photography, dark clouds",
            ["calm water", "underwater photography"],
            ["dark clouds"],
        ),
        (
            "a bowl of cherries in black and white",
            "a bowl of cherries in black and white, vibrant colors, soft light",
            ["vibrant colors"],
            ["soft light"],
        ),
        (
            "a desert at night, no moon",
            "a desert at night, moonlit sky, stars",
            ["moonlit sky"],
            ["stars"],
        ),
    ],
)
def test_llm_additions_that_contradict_the_request_are_dropped(said, llm_says, dropped, kept):
    rest, negatives = split_negatives(said)
    prompt, gone = drop_contradictions(llm_says, rest, negatives)
    assert gone == dropped
    for term in kept:
        assert term in prompt
    for term in dropped:
        assert term not in prompt


def test_the_persons_own_words_are_never_dropped_and_repeats_go():
    prompt, gone = drop_contradictions(
        "a sunny beach at night, soft, soft, soft, warm light", "a sunny beach at night"
    )
    assert prompt == "a sunny beach at night, soft, warm light" and gone == []


def test_an_addition_must_also_agree_with_earlier_additions():
    prompt, gone = drop_contradictions("a harbour, moonlit water, midday sun", "a harbour")
    assert prompt == "a harbour, moonlit water" and gone == ["midday sun"]


def test_contradictions_are_dropped_from_what_the_rewriter_uses():
    rewriter = PromptRewriter(RULES, llm=lambda s: f"{s}, snowy forest, orange leaves")
    result = rewriter.generate("draw a fox in autumn")
    assert result.rewriter == "llm"
    assert result.prompt == "a fox in autumn, orange leaves"
    assert "snowy forest" in result.note


@pytest.mark.parametrize(
    ("said", "prompt_starts"),
    [
        ("a photo of a dog on a beach", "a photo of a dog on a beach"),
        ("I want a photo of a rainy street", "a photo of a rainy street"),
        ("make me an oil painting of a wheat field", "an oil painting of a wheat field"),
        ("draw me a picture of a cat", "a cat"),
    ],
)
def test_a_named_medium_stays_in_the_prompt(said, prompt_starts):
    assert RULES.generate(said).prompt.startswith(prompt_starts)


class ScriptedChat:
    """A ChatLLM that answers from a script and records what it was asked."""

    name = "scripted"

    def __init__(self, answer: str):
        self.answer = answer
        self.calls: list[tuple[list[dict[str, str]], dict]] = []

    def chat(self, messages, *, json_schema=None, max_tokens=96, stop=None):
        self.calls.append((messages, {"max_tokens": max_tokens, "stop": stop}))
        return self.answer


def test_the_chat_writer_starts_the_answer_with_the_persons_words():
    chat = ScriptedChat(" golden light, wide shot\n")
    rewriter = PromptRewriter(RULES, llm=ChatPromptWriter(chat, max_tokens=40))
    result = rewriter.generate("draw a castle on a hill")
    assert result.prompt == "a castle on a hill, golden light, wide shot"
    ((messages, options),) = chat.calls
    assert messages[0]["role"] == "system"
    assert messages[-1] == {"role": "assistant", "content": "a castle on a hill,"}
    assert messages[-2] == {"role": "user", "content": "a castle on a hill"}
    assert options == {"max_tokens": 40, "stop": ["\n"]}
    # The instructions and examples are the same for every request (the prefix cache's key).
    assert ChatPromptWriter.messages("x")[:-2] == ChatPromptWriter.messages("y")[:-2]


def test_a_restarted_phrase_is_drawn_once_but_a_doubled_name_stays_whole():
    from assistant.rewrite import subject_of

    assert (
        subject_of("draw a dog a dog running in the uh in the park") == "a dog running in the park"
    )
    assert subject_of("a choo choo train near Bora Bora") == "a choo choo train near Bora Bora"
