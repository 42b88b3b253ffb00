"""Understand one request against the dialogue state: fast local grammar first, then rewriting.

Command words (undo, again, cancel, ...) never wait for an LLM. References ("the first one",
"the blue one") resolve against the edit tree. Everything else becomes a generate or an edit
whose prompt comes from the PromptRewriter.
"""

from __future__ import annotations

import re
from dataclasses import replace

from assistant.i18n import N_
from assistant.plan import Intent, Plan
from assistant.planner import LLMPlan, LLMPlanner
from assistant.region_requests import parse_region_request
from assistant.rewrite import PromptRewriter, content_words, split_negatives, words
from assistant.state import DialogueState, ImageNode

MAX_REQUEST_CHARS = 1000  # longer text is refused: it is not a spoken request

_FILLER = re.compile(
    r"^(?:(?:ok|okay|oh|hey|um+|uh+|so|now|please|and|alright|right|well)[\s,]+)+|"
    r"(?:[\s,]+(?:please|thanks|thank you|now))+$"
)


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


# Whole-utterance commands, matched on the normalised text.
_COMMANDS: list[tuple[Intent, re.Pattern[str]]] = [
    (
        Intent.UNDO,
        _rx(
            r"^undo(?: that| it)?$",
            r"^(?:go )?back$",
            r"^revert(?: that| it)?$",
            r"^take (?:that|it) back$",
        ),
    ),
    (Intent.REDO, _rx(r"^redo(?: that| it)?$", r"^(?:go )?forward$")),
    (
        Intent.CANCEL,
        _rx(r"^(?:cancel|stop|abort)(?: that| it)?$", r"^never ?mind\b.*", r"^forget (?:it|that)$"),
    ),
    (
        Intent.HELP,
        _rx(
            r"^help$",
            r"^what can you do$",
            r"^how does this work$",
            r"^what (?:can|do|should) i say$",
        ),
    ),
    (
        Intent.AGAIN,
        _rx(
            r"^again$",
            r"^another(?: one)?$",
            r"^one more(?: time)?$",
            r"^try again$",
            r"^(?:a )?(?:different|new) seed$",
            r"^re-?roll$",
            r"^do (?:it|that) again$",
            r"^same again$",
        ),
    ),
    (
        Intent.DESCRIBE,
        _rx(
            r"^(?:what|which) (?:prompt|settings|seed|parameters|model)\b.*",
            r"^how did you (?:make|draw) (?:it|this|that)$",
            r"^(?:show|tell) me the (?:prompt|settings|seed)\b.*",
        ),
    ),
    (
        Intent.SAVE,
        _rx(
            r"^(?:save|export|download|keep)(?: (?:it|this|that|them|all|everything|"
            r"the session|the pictures|the images))?$"
        ),
    ),
    (
        Intent.CHITCHAT,
        _rx(
            r"^(?:hi|hello|hey there|hey|good (?:morning|evening|afternoon))$",
            r"^(?:thanks|thank you|cheers|great|cool|nice|awesome|perfect|"
            r"love it|i love it|that's (?:great|nice|perfect|cool))$",
            r"^(?:who|what) are you$",
            r"\b(?:ignore|disregard|forget) (?:all |the |your )?(?:previous|prior|"
            r"above)? ?(?:instructions|rules|prompts?)\b",
            r"^(?:you are now|pretend to be|act as)\b",
        ),
    ),
]

_NUMBERS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "2": 2,
    "3": 3,
    "4": 4,
    "a few": 3,
    "some": 3,
    "several": 3,
    "a couple of": 2,
    "a couple": 2,
}
_VARIATIONS = re.compile(
    r"^(?:(?:give me|show me|make|draw|generate) )?(?P<n>two|three|four|[234]|a few|some|several|"
    r"a couple(?: of)?)? ?(?:more|variations|versions|options|alternatives)"
    r"(?: (?:like|of) (?:this|that|it))?$|^(?:some |a few )?variations(?: of (?:this|that|it))?$"
)
_SAME_SEED = re.compile(
    r"^(?:(?:use |keep )?the )?same seed,? (?:but |and )?(?:with )?(?P<rest>.+)"
)

_ORDINALS = {
    "first": 0,
    "1st": 0,
    "original": 0,
    "second": 1,
    "2nd": 1,
    "third": 2,
    "3rd": 2,
    "fourth": 3,
    "4th": 3,
    "fifth": 4,
    "5th": 4,
    "last": -1,
    "latest": -1,
}
_SELECT = _rx(
    r"^(?:(?:let's )?go back to|back to|return to|switch to|show(?: me)?|select|pick|choose|"
    r"use|i (?:like|prefer|want)|let's (?:go with|use)|go with) the (?P<ref>.+?)"
    r"(?: one| image| picture| version| pic)?$",
    r"^(?:the )?(?P<ref2>first|second|third|fourth|fifth|last|original|previous) "
    r"(?:one|image|picture|version)$",
    r"^the (?P<ref3>[\w' -]+?) one$",
)

_OUTPAINT = _rx(
    r"^(?:extend|expand|outpaint|widen|continue|grow)(?: it| the (?:image|picture|scene))?"
    r"(?: (?:to|on|towards) the| to)? ?(?P<dir>left|right|up|down|top|bottom|upwards|downwards|"
    r"all sides|every side|all around|sides)?(?: by (?P<px>\d+)(?: ?px| pixels)?)?$",
    r"^zoom out$",
)
_DIRECTIONS = {
    "top": "up",
    "upwards": "up",
    "bottom": "down",
    "downwards": "down",
    "all sides": "all",
    "every side": "all",
    "all around": "all",
    "sides": "all",
    None: "all",
}
_UPSCALE = re.compile(
    r"^(?:upscale|enlarge|make it bigger|bigger|higher resolution|more pixels|"
    r"increase (?:the )?resolution|(?:make it )?(?P<n>2|two|4|four) ?(?:x|times)(?: bigger)?)"
    r"(?: it| this| that)?(?: (?P<n2>2|two|4|four) ?(?:x|times))?$"
)

# An utterance that starts like this changes the picture in focus rather than starting anew.
# "keep the layout but make it winter": an edit that must hold the picture's structure. Shapes
# and layout are kept through depth (depth2img); outlines through a canny ControlNet.
_KEEP_STRUCTURE = re.compile(
    r"\b(?:keep|keeping|same|preserve|preserving|don't change|do not change)\b[\w ]*?\b"
    r"(?P<what>shapes?|layout|composition|structure|pose|outlines?|edges?|lines)\b"
)
_OUTLINE_WORDS = ("outline", "edge", "line")
_JOINERS = re.compile(r"^(?:[\s,;.]|but\b|and\b|just\b|only\b)+|(?:[\s,;.]|but\b|and\b)+$")


def _change_beside(said: str, keep: re.Match) -> str:
    """The change asked for around "keep the layout": "keep the layout but make it winter" →
    "make it winter" (the keep-clause is an instruction, not something to draw)."""
    after = _JOINERS.sub("", said[keep.end() :])
    before = _JOINERS.sub("", said[: keep.start()])
    return after or before or said


_EDIT_CUE = re.compile(
    r"^(?:make (?:it|this|that|the|him|her|them|everything)\b|make (?:it )?(?:more|less)\b|"
    r"(?:add|remove|change|turn|put|give (?:it|him|her|them)|replace|swap|paint the|color the|"
    r"colour the)\b|(?:more|less) \w+|(?:a bit |slightly |much )?"
    r"(?:darker|brighter|lighter|warmer|colder|cooler|bigger|smaller|stormier|sunnier|"
    r"happier|scarier|softer|sharper|calmer|busier|simpler)\b|"
    r"(?:but|now) (?:with|make|add|in)\b|in the style of\b|as an? (?:oil painting|watercolou?r|"
    r"sketch|photo|cartoon|anime)\b)"
)


def normalise(text: str) -> str:
    text = text.lower().strip()
    text = re.sub(r"\s+", " ", re.sub(r"[!?.…]+$", "", text))
    previous = None
    while previous != text:
        previous, text = text, _FILLER.sub("", text).strip(" ,")
    return text


RESTYLE_STRENGTH = 0.75  # a new style changes most of the look but keeps the composition


def style_named(said: str, styles: dict) -> str | None:
    """The style preset a normalised utterance asks for ("make it watercolor"), or None."""
    for name in sorted(styles, key=len, reverse=True):
        pattern = (
            r"^(?:(?:make|turn|render|redo|do|paint) (?:it|this|that)(?: into| as| in)?|"
            r"change (?:the )?style to|restyle(?: it)?(?: as| to| in)?|switch to|as|in)?"
            rf" ?(?:an? |the )?{re.escape(name)}(?: style| version| one)?$"
        )
        if re.match(pattern, said):
            return name
    return None


def understand(
    text: str,
    state: DialogueState,
    rewriter: PromptRewriter,
    has_mask: bool = False,
    style: str | None = None,
    planner: LLMPlanner | None = None,
) -> Plan:
    """Decide what to do with ``text`` given the state; never raises for ordinary speech.

    ``has_mask``: the person brushed a region of the current picture, so the request repaints
    that region. ``style``: a preset applied to every new picture (a session setting).
    ``planner``: an LLM asked what an open request means (validated; the grammar decides
    whenever its answer is refused).
    Returns a validated Plan; open requests get their prompt from ``rewriter``.
    """
    said = normalise(text)
    current = state.current
    if has_mask and current is not None:
        rewrite = rewriter.generate(text)
        return Plan(
            intent=Intent.INPAINT,
            request=text,
            prompt=rewrite.prompt,
            negative_prompt=rewrite.negative_prompt,
            operation="inpaint",
            target_id=current.id,
            rewriter=rewrite.rewriter,
        )
    for intent, pattern in _COMMANDS:
        if pattern.search(said):
            return _command_plan(intent, text, state)

    if (name := style_named(said, rewriter.styles)) is not None:
        if current is None:
            return _nothing_yet(text)
        rewrite = rewriter.restyle(name, current.prompt, current.negative_prompt)
        return Plan(
            intent=Intent.STYLE,
            request=text,
            prompt=rewrite.prompt,
            negative_prompt=rewrite.negative_prompt,
            operation="img2img",
            target_id=current.id,
            strength=RESTYLE_STRENGTH,
            style=name,
        )

    if m := _VARIATIONS.match(said):
        count = _NUMBERS.get(m.group("n") or "", 3 if "variations" in said else 1)
        return _again_plan(text, current, count) if current else _nothing_yet(text)

    if m := _OUTPAINT.match(said):
        if current is None:
            return _nothing_yet(text)
        direction = _DIRECTIONS.get(m.group("dir"), m.group("dir")) if "zoom" not in said else "all"
        pixels = int(m.group("px")) // 8 * 8 if m.group("px") else 128
        return Plan(
            intent=Intent.OUTPAINT,
            request=text,
            prompt=current.prompt,
            negative_prompt=current.negative_prompt,
            operation="outpaint",
            target_id=current.id,
            direction=direction,
            pixels=min(max(pixels, 8), 1024),
        )

    if m := _UPSCALE.match(said):
        if current is None:
            return _nothing_yet(text)
        factor = 4 if (m.group("n") or m.group("n2") or "") in ("4", "four") else 2
        return Plan(
            intent=Intent.UPSCALE,
            request=text,
            prompt=current.prompt,
            negative_prompt=current.negative_prompt,
            operation="upscale",
            target_id=current.id,
            factor=factor,
        )

    if m := _SELECT.match(said):
        target = resolve_reference(m.group("ref") or m.group("ref2") or m.group("ref3"), state)
        if target is not None:
            return Plan(intent=Intent.SELECT, request=text, target_id=target.id)
        if state.nodes:
            return Plan(
                intent=Intent.CLARIFY,
                request=text,
                question=N_(
                    "Which picture do you mean? Say the first one, the last one, or describe it."
                ),
            )

    if m := _SAME_SEED.match(said):
        if current is None:
            return _nothing_yet(text)
        # A new picture from the same noise: no parent, only the seed is carried over.
        return _change_plan(
            Intent.SAME_SEED,
            text,
            m.group("rest"),
            current,
            rewriter,
            "generate",
            target_id=None,
            seed=current.seed,
        )

    if (region := parse_region_request(said)) is not None:
        if current is None:
            return _nothing_yet(text)
        change = region.change or region.region
        return _change_plan(
            Intent.INPAINT, text, change, current, rewriter, "inpaint", region=region.region
        )

    if planner is not None and not rewriter.raw:
        llm_plan = planner.plan(text, current.prompt if current else None)
        if llm_plan is not None:
            return _from_llm_plan(llm_plan, text, current, rewriter, style)

    structure = _KEEP_STRUCTURE.search(said)
    if structure and current is not None:
        outlines = structure.group("what").startswith(_OUTLINE_WORDS)
        change = _change_beside(said, structure)
        operation = "controlnet" if outlines else "depth"
        return _change_plan(Intent.EDIT, text, change, current, rewriter, operation)

    if (structure or _EDIT_CUE.match(said)) and current is None:
        return Plan(
            intent=Intent.CLARIFY,
            request=text,
            question=N_("There's no picture yet to change. What should I draw first?"),
        )
    if _EDIT_CUE.match(said):
        if current is None:
            return Plan(
                intent=Intent.CLARIFY,
                request=text,
                question=N_("There's no picture yet to change. What should I draw first?"),
            )
        return _change_plan(Intent.EDIT, text, text, current, rewriter, "img2img")

    kept, _ = split_negatives(text)
    if not content_words(kept) or not re.search(r"[a-z]{3,}", said):
        return Plan(
            intent=Intent.CLARIFY,
            request=text,
            question=N_("I didn't catch what to draw. Could you describe the picture?"),
        )
    return _generate_plan(text, text, rewriter, style)


def _generate_plan(
    text: str,
    describe: str,
    rewriter: PromptRewriter,
    style: str | None,
    avoid: list[str] | None = None,
    planner: str = "grammar",
) -> Plan:
    """A new picture of ``describe`` (the request, or the LLM's subject), in ``style`` if any."""
    rewrite = rewriter.generate(describe)
    style = style if style in rewriter.styles else None
    if style:
        styled = rewriter.restyle(style, rewrite.prompt, rewrite.negative_prompt)
        rewrite = replace(rewrite, prompt=styled.prompt, negative_prompt=styled.negative_prompt)
    return Plan(
        intent=Intent.GENERATE,
        request=text,
        prompt=rewrite.prompt,
        negative_prompt=", ".join([*(avoid or []), rewrite.negative_prompt]),
        operation="generate",
        rewriter=rewrite.rewriter,
        rewrite_note=rewrite.note,
        style=style,
        planner=planner,
    )


def _from_llm_plan(
    llm_plan: LLMPlan,
    text: str,
    current: ImageNode | None,
    rewriter: PromptRewriter,
    style: str | None,
) -> Plan:
    """A validated LLM plan as a Plan; the prompt itself still comes from the rewriter."""
    if llm_plan.intent == "clarify":
        return Plan(
            intent=Intent.CLARIFY,
            request=text,
            planner="llm",
            question=N_("Could you tell me a bit more about the picture you'd like?"),
        )
    avoid = [a for a in llm_plan.avoid if a.strip()]
    if llm_plan.intent == "edit" and current is not None:
        plan = _change_plan(
            Intent.EDIT, text, llm_plan.subject, current, rewriter, "img2img", planner="llm"
        )
        return plan.model_copy(
            update={"negative_prompt": ", ".join([*avoid, plan.negative_prompt])}
        )
    return _generate_plan(text, llm_plan.subject, rewriter, style, avoid, planner="llm")


def _change_plan(
    intent: Intent,
    text: str,
    change: str,
    current: ImageNode,
    rewriter: PromptRewriter,
    operation: str,
    **fields,
) -> Plan:
    """A plan that changes the current picture as ``change`` says (its prompt, plus the change)."""
    rewrite = rewriter.edit(change, current.prompt, current.negative_prompt)
    values = {
        "intent": intent,
        "request": text,
        "prompt": rewrite.prompt,
        "negative_prompt": rewrite.negative_prompt,
        "operation": operation,
        "target_id": current.id,
        "rewriter": rewrite.rewriter,
    }
    return Plan(**{**values, **fields})


def resolve_reference(ref: str, state: DialogueState) -> ImageNode | None:
    """Find the picture a phrase points at: an ordinal, "previous", or words of its prompt."""
    nodes = list(state.nodes.values())
    if not nodes:
        return None
    ref = ref.strip()
    if ref in _ORDINALS:
        index = _ORDINALS[ref]
        return nodes[index] if -len(nodes) <= index < len(nodes) else None
    if ref in {"previous", "one before", "last one before", "one before that", "earlier"}:
        current = state.current
        if current and current.parent_id:
            return state.nodes[current.parent_id]
        index = nodes.index(current) if current in nodes else len(nodes)
        return nodes[index - 1] if index >= 1 else None
    # "the blue one": the most recent picture whose prompt or request holds the most of the words.
    wanted = set(content_words(ref))
    if not wanted:
        return None
    best, best_score = None, 0
    for node in nodes:
        have = set(words(node.prompt)) | set(words(node.request))
        score = len(wanted & have)
        if score >= best_score and score > 0:
            best, best_score = node, score
    return best


def _nothing_yet(text: str) -> Plan:
    return Plan(
        intent=Intent.CLARIFY,
        request=text,
        question=N_("There's no picture yet. What should I draw?"),
    )


def _again_plan(text: str, current: ImageNode, count: int) -> Plan:
    # Same prompt, new seeds, from the same starting point as the picture in focus.
    if current.operation == "upload":  # variations of an uploaded photo start from it
        start = current.id
    else:
        start = current.parent_id if current.operation == "img2img" else None
    return Plan(
        intent=Intent.AGAIN if count == 1 else Intent.VARIATIONS,
        request=text,
        prompt=current.prompt,
        negative_prompt=current.negative_prompt,
        operation="img2img" if start else "generate",
        target_id=start,
        strength=current.strength,
        count=count,
        rewriter="rules",
    )


def _command_plan(intent: Intent, text: str, state: DialogueState) -> Plan:
    current = state.current
    if intent == Intent.AGAIN:
        return _again_plan(text, current, 1) if current else _nothing_yet(text)
    return Plan(intent=intent, request=text, target_id=current.id if current else None)
