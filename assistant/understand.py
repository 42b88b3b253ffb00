"""Understand one request against the dialogue state: fast local grammar first, then rewriting.

Command words (undo, again, cancel, ...) never wait for an LLM. Everything else becomes a
generate or an edit whose prompt comes from the PromptRewriter.
"""

from __future__ import annotations

import re

from assistant.plan import Intent, Plan
from assistant.rewrite import PromptRewriter, content_words, split_negatives
from assistant.state import DialogueState

_FILLER = re.compile(
    r"^(?:(?:ok|okay|oh|hey|um+|uh+|so|now|please|and|alright|right)[\s,]+)+|"
    r"(?:[\s,]+(?:please|thanks|thank you|now))+$"
)

# Whole-utterance commands, matched on the normalised text.
_COMMANDS: list[tuple[Intent, re.Pattern[str]]] = [
    (
        Intent.UNDO,
        re.compile(
            r"^(?:undo(?: that| it)?|go back|back|revert(?: that| it)?|"
            r"take (?:that|it) back|previous(?: one| image| picture)?)$"
        ),
    ),
    (Intent.REDO, re.compile(r"^(?:redo(?: that| it)?|go forward|forward)$")),
    (
        Intent.CANCEL,
        re.compile(
            r"^(?:cancel(?: that| it)?|stop|never ?mind|forget (?:it|that)|"
            r"abort)$"
        ),
    ),
    (Intent.HELP, re.compile(r"^(?:help|what can you do|how does this work|what do i say)$")),
    (
        Intent.AGAIN,
        re.compile(
            r"^(?:again|another(?: one)?|one more(?: time)?|try again|"
            r"(?:a )?(?:different|new) seed|reroll|re-roll|more like (?:this|that)|"
            r"do (?:it|that) again|same again)$"
        ),
    ),
    (
        Intent.DESCRIBE,
        re.compile(
            r"^(?:what|which) (?:prompt|settings|seed|parameters)\b.*|"
            r"^how did you (?:make|draw) (?:it|this|that)$"
        ),
    ),
]

# An utterance that starts like this changes the picture in focus rather than starting anew.
_EDIT_CUE = re.compile(
    r"^(?:make (?:it|this|that|the|him|her|them|everything)\b|make (?:it )?(?:more|less)\b|"
    r"(?:add|remove|change|turn|put|give (?:it|him|her|them)|replace|swap|paint the|color the|"
    r"colour the)\b|(?:more|less) \w+|(?:a bit |slightly |much )?"
    r"(?:darker|brighter|lighter|warmer|colder|cooler|bigger|smaller|stormier|sunnier|"
    r"happier|scarier|softer|sharper|calmer|busier|simpler)\b|"
    r"(?:but|now) (?:with|make|add|in)\b|in the style of\b|as an? (?:oil painting|watercolou?r|"
    r"sketch|photo|cartoon|anime)\b)"
)

MAX_REQUEST_CHARS = 1000  # longer text is refused: it is not a spoken request


def normalise(text: str) -> str:
    text = text.lower().strip()
    text = re.sub(r"[\s]+", " ", re.sub(r"[!?.…]+$", "", text))
    previous = None
    while previous != text:
        previous, text = text, _FILLER.sub("", text).strip(" ,")
    return text


def understand(text: str, state: DialogueState, rewriter: PromptRewriter) -> Plan:
    """Decide what to do with ``text`` given the state; never raises for ordinary speech.

    Returns a validated Plan; open requests get their prompt from ``rewriter``.
    """
    said = normalise(text)
    for intent, pattern in _COMMANDS:
        if pattern.match(said):
            return _command_plan(intent, text, state)

    current = state.current
    if _EDIT_CUE.match(said):
        if current is None:
            return Plan(
                intent=Intent.CLARIFY,
                request=text,
                question="There's no picture yet to change. What should I draw first?",
            )
        rewrite = rewriter.edit(text, current.prompt, current.negative_prompt)
        return Plan(
            intent=Intent.EDIT,
            request=text,
            prompt=rewrite.prompt,
            negative_prompt=rewrite.negative_prompt,
            operation="img2img",
            target_id=current.id,
            rewriter=rewrite.rewriter,
        )

    kept, _ = split_negatives(text)
    if not content_words(kept) or not re.search(r"[a-z]{3,}", said):
        return Plan(
            intent=Intent.CLARIFY,
            request=text,
            question="I didn't catch what to draw. Could you describe the picture?",
        )
    rewrite = rewriter.generate(text)
    return Plan(
        intent=Intent.GENERATE,
        request=text,
        prompt=rewrite.prompt,
        negative_prompt=rewrite.negative_prompt,
        operation="generate",
        rewriter=rewrite.rewriter,
        rewrite_note=rewrite.note,
    )


def _command_plan(intent: Intent, text: str, state: DialogueState) -> Plan:
    current = state.current
    if intent == Intent.AGAIN:
        if current is None:
            return Plan(
                intent=Intent.CLARIFY,
                request=text,
                question="There's nothing to repeat yet. What should I draw?",
            )
        # Same prompt, new seed, from the same starting point as the image in focus.
        return Plan(
            intent=Intent.AGAIN,
            request=text,
            prompt=current.prompt,
            negative_prompt=current.negative_prompt,
            operation=current.operation,
            target_id=current.parent_id if current.operation == "img2img" else None,
            strength=current.strength,
            rewriter="rules",
        )
    return Plan(intent=intent, request=text, target_id=current.id if current else None)
