"""Understand one request against the dialogue state: grammar, then meaning, then the LLM.

    text ─► exact command? ─► structured request (transform, select, change, ...) ─►
         intent by meaning (sentence-embedding router) ─► LLM plan (schema-constrained) ─►
         a picture description? generate : ask back

Command words never wait for a model. An edit's prompt is compiled from a structured change
(``assistant.edit_compiler``) so it describes the new scene. Nothing that reads as a command,
a question or a thank-you is ever drawn as a picture of its words: when nothing understood
the request with confidence, the plan is a short question that says what is possible.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from assistant import command_grammar as g
from assistant.change_requests import parse_change, repair_change, split_phrases
from assistant.command_grammar import normalise
from assistant.edit_compiler import compile_edit
from assistant.i18n import N_
from assistant.plan import IMAGE_INTENTS, Change, ChangeKind, Intent, Plan, Transform
from assistant.planner import LLMPlan, LLMPlanner, PlanContext
from assistant.region_requests import parse_region_request
from assistant.rewrite import (
    PromptRewriter,
    _stem,
    content_words,
    contradiction,
    split_negatives,
    subject_of,
    thing_stems,
    words,
)
from assistant.spelling import (
    expand_chat_words,
    repair_command_words,
    repair_from_prompt,
    repair_heard,
)
from assistant.state import DialogueState, ImageNode

logger = logging.getLogger(__name__)

__all__ = ["MAX_REQUEST_CHARS", "normalise", "resolve_reference", "style_named", "understand"]

MAX_REQUEST_CHARS = 1000  # longer text is refused: it is not a spoken request
RESTYLE_STRENGTH = 0.75  # a new style changes most of the look but keeps the composition
COMBINE_STRENGTH = 0.8  # a combined picture is mostly redrawn from the joined prompt

NOT_SURE = N_(
    "I'm not sure what you'd like. I can draw something new, change this picture (say: make it "
    "darker), flip or crop it, or go back to an earlier one. What should I do?"
)
NOTHING_TO_CHANGE = N_("There's no picture yet to change. What should I draw first?")
NOTHING_YET = N_("There's no picture yet. What should I draw?")
WHICH_PICTURE = N_("Which picture do you mean? Say the first one, the last one, or describe it.")
WHICH_TRANSFORM = N_(
    "How should I change its shape? I can flip it, rotate it, crop it square, as a portrait or "
    "wide, zoom in, or make it bigger."
)
NO_EARLIER = N_("This is the first picture, there's no earlier one. What should I change?")
WHAT_TO_DRAW = N_("I didn't catch what to draw. Could you describe the picture?")
TOO_LONG_A_CHANGE = N_(
    "That change is too long for me to follow. Say it in a few words, one change at a time."
)
BRUSH_FIRST = N_(
    "Nothing is brushed yet. Brush over the part to change (under the picture), then say what "
    "goes there."
)
CANT_DO = N_(
    "I can't do that: I make still pictures, and I can't post, send, print or delete them. I "
    "can save them (say: save), draw, change or undo. What should I do?"
)
WHAT_TO_CHANGE = N_("What should I change in the picture? For example: make the sky darker.")
# "I don't like it", "hmm, not quite": displeasure that names neither a change nor a retry.
WHAT_DIFFERENT = N_(
    "What would you like different? I can try again with a new seed, or change something you "
    "name, e.g. make the sky darker."
)
_DISLIKE_ALONE = re.compile(
    r"^(?:(?:hmm+|oh|well|no|nah|ugh|eh|uh|um+|yeah)[ ,.]*)*(?:(?:i )?(?:don't|do not|dont) "
    r"(?:really )?(?:like|love) (?:it|this|that|this one|that one)(?: (?:much|very much|at all))?|"
    r"not (?:quite|really|great|good|it)(?: (?:it|right|there))?|meh|nope|not what i wanted|"
    r"(?:that's|it's|this is) not (?:it|right|what i wanted|quite right)|i'm not (?:sure|happy|"
    r"convinced)(?: about (?:it|this|that))?|(?:that's|it's|this is|that is|it got) (?:even |"
    r"much |way )?(?:worse|bad|awful|terrible|wrong|horrible|ugly)|something(?:'s| feels| looks|"
    r" seems| is) (?:off|wrong|weird|strange|not right|missing)(?:,? (?:but|and) i (?:can't|"
    r"cannot|can not) (?:put my finger on it|say what|name it|tell what))?)[ .!]*$"
)

# A request that starts like this changes the picture in focus rather than starting anew.
_EDIT_CUE = re.compile(
    r"^(?:make (?:it|this|that|the|him|her|them|everything)\b|make (?:it )?(?:more|less)\b|"
    r"(?:add|remove|change|turn|put|give (?:it|him|her|them)|replace|swap|paint the|color the|"
    r"colour the|lose|delete|erase|get rid of)\b|(?:more|less) \w+|(?:a bit |slightly |much )?"
    r"(?:darker|brighter|lighter|warmer|colder|cooler|stormier|sunnier|"
    r"happier|scarier|softer|sharper|calmer|busier|simpler)\b|"
    r"(?:but|now) (?:with|make|add|in)\b|in the style of\b|as an? (?:oil painting|watercolou?r|"
    r"sketch|photo|cartoon|anime)\b)"
)
# A repaint of the part brushed, asked for with nothing brushed.
_BRUSHED = re.compile(
    r"\b(?:where i (?:painted|brushed|marked|drew|scribbled)|the (?:bit|part|area|spot|place) "
    r"i (?:brushed|painted|marked|drew|selected|scribbled)|i (?:painted|brushed|scribbled) "
    r"(?:over|on)|i scribbled)\b"
)
_NEW_PICTURE = re.compile(
    r"^(?:forget (?:it|that|this|about (?:it|that)|(?:about )?the [\w-]+(?: [\w-]+)?)[,.;]? "
    r"(?:and )?(?:instead )?)?"
    r"(?:(?:now|ok|okay|and|then|next|please|can you|could you|would you|will you|"
    r"i want you to|let's) )*(?:draw|paint|sketch|generate|render|imagine|illustrate|create|"
    r"do (?:one of |another of )?(?:an?|some|two|three|four|a few)) \w"
)
# "Okay. Now a quiet village street", "next: two owls": the next picture, said in passing
# (checked on the words as said: normalising drops the "now").
_NEXT_PICTURE = re.compile(
    r"^(?:(?:ok|okay|and|so|right|alright|great|cool|nice)[\s,.!]+)*"
    r"(?:now|next|then|and now|next up|next one)[\s,.:!-]+(?:(?:one|another) (?:of|with|where) )?"
    r"(?:an?|some|two|three|four|five|a few|a pair of|a couple of) "
    r"(?!(?:bit|little|lot|tad|touch|few more|different|new version|bigger|smaller)\b)"
    r"(?![\w -]*\b(?:one|version|copy)$)\w"
)
# What the assistant cannot do, asked for plainly: said so, never drawn or read as an edit.
_CANT_DO = re.compile(
    r"\b(?:in real life|for real|an actual (?:sandwich|pizza|cake|coffee|meal|drink|thing)|a real "
    r"(?:sandwich|pizza|cake|coffee|meal))\b|"
    r"^(?:(?:can|could) you |please )?write (?:me )?(?:a|an|the|some) (?:[\w-]+ )?(?:lesson plan|"
    r"essay|story|poem|e-?mail|letter|song|report|summary|article|caption|speech|worksheet|"
    r"quiz|code|script)s?\b.*|"
    r"^(?:(?:can|could) you |please )?animate\b.*|"
    r"^(?:(?:can|could) you |please )?(?:post|share|upload|send|email|e-mail|tweet|text|print|"
    r"publish)(?: (?:it|this|that|them|these|that one|this one|the (?:picture|image|\w+ one)))?"
    r"(?: (?:on|to|for)"
    r" .+)?$|"
    r"^(?:(?:can|could) you |please )?(?:delete|erase|trash|bin) (?:it|this|that|them|all|"
    r"everything|the (?:picture|image|pictures|images|session|history|\w+ one|\w+ picture))$|"
    r"^(?:(?:can|could) you )?(?:make|turn) (?:it|this|them|him|her|(?:these|those|the) [\w-]+) "
    r"(?:move|animated|into an "
    r"animation|into a video|a video|a gif|into a gif|into an animated gif|an animated gif|talk|"
    r"sing|speak)\b.*"
)
# "change it", "edit this": an edit that says nothing of what to change.
_NO_CHANGE_NAMED = re.compile(
    r"^(?:change|edit|modify|alter|tweak|adjust|fix|improve|redo) (?:it|this|that|something|"
    r"the (?:picture|image)|it a bit|it somehow|something in it)$|^(?:make|do) (?:it|that|this)$|"
    r"^(?:make|change|turn) the [\w-]+$"
)
# "keep the layout but make it winter": an edit that must hold the picture's structure. Shapes
# and layout are kept through depth (depth2img); outlines through a canny ControlNet.
_KEEP_STRUCTURE = re.compile(
    r"\b(?:keep|keeping|same|preserve|preserving|don't change|do not change)\b[\w ]*?\b"
    r"(?P<what>shapes?|layout|composition|structure|pose|outlines?|edges?|lines)\b"
)
_OUTLINE_WORDS = ("outline", "edge", "line")
_JOINERS = re.compile(r"^(?:[\s,;.]|but\b|and\b|just\b|only\b)+|(?:[\s,;.]|but\b|and\b)+$")
# A picture description: a drawing verb, or a noun phrase, not a question or a remark.
_DRAW_CUE = re.compile(
    r"^(?:(?:can|could|would|will) you |i(?:'d| would) (?:like|love) |i want |let's |please |"
    r"maybe |how about |what about )*(?:draw|paint|sketch|create|generate|make|render|imagine|"
    r"whip up|knock up|cook up|dream up|conjure(?: up)?|come up with|"
    r"design|illustrate|show me(?! more\b)|give me(?! more\b)|picture|an? (?:picture|image|photo|"
    r"painting|drawing|"
    r"watercolou?r|sketch|portrait) of)\b|"
    r"^(?:how about|what about|i(?:'d| would) (?:like|love)|i want|let's (?:have|do|see)|"
    r"maybe|now|(?:can|could|may) (?:i|we) (?:perhaps |maybe |please )?(?:get|have|see)|i need|"
    r"i'd love) "
    r"(?:an?|some|two|three|four|five|a few|the) \w|"
    r"^(?:i need|i want|give me|gimme|make me)(?: an?)? (?:image|picture|photo|drawing|pic)"
    r"\s*[:,-]?\s*\w|"
    r"^(?:(?:ok|okay|and|now)[ ,]+)?(?:(?:the )?next |a new |new )?(?:panel|page|frame|shot|slide)"
    r"(?: (?:one|two|three|four|five|six|\d+))?\s*[:,-]\s*\w|"
    r"^(?:(?:do|make|give) me )?(?:a |an )?(?:new|another|different) (?:one|picture|image)"
    r"(?: please)?\s*[:,-]?\s*(?:an?|some|two|three|the) \w|"
    r"^(?:(?:oh|and|also|ok|okay)[ ,]+)*(?:while you're at it|while you are at it)[, ]+"
    r"(?:an?|some|two|three|draw|paint|make) \w|"
    r"^(?:(?:oh|and|also|ok|okay)[ ,]+)*(?:i (?:also )?need|i'd also like|i also want|also|and) "
    r"(?:one|another|a picture|an image) of (?:an?|some|the|two|three) \w|"
    r"^(?:i'd|i would) (?:be (?:ever so |very |really |so )?grateful for|love|appreciate) "
    r"(?:an?|some) \w|"
    r"^(?:i'd like|i would like|can i have|could i have|let's have) another "
    r"(?:picture|image|one)\b|"
    r"^(?:forget (?:it|that|this|the [\w-]+(?: [\w-]+)?)[,.;]? )?"
    r"(?:(?:next|new|another|a new|a different|different|diff) (?:picture|one|image|idea|subject|"
    r"topic|thing|scene|concept|design)|something (?:different|"
    r"else|new)(?: now)?|different idea) ?[:,.-] ?\w|"
    r"^(?:\w+ ){0,5}(?:an? |some )?(?:picture|image|photo|drawing|painting) (?:of|from|with)"
    r" (?:an?|some|the|two|three|my)\b|"
    r"^(?:and )?(?:one more|another one|another) of (?:an?|some|two|three) \w"
)
_NOT_A_PICTURE = re.compile(
    r"^(?:what|why|how|who|when|where|which|is|are|was|were|do|does|did|can|could|would|will|"
    r"should|shall|may|might|have|has|i|i'm|i've|you|you're|we|we're|it's|that's|this is|"
    r"yes|no|not|don't|didn't|thanks|thank|sorry|ok|okay|hmm+|wait|hold on|hang on|lol)\b"
)


_STYLE_REQUEST = re.compile(
    r"^(?:(?:can|could|may) i (?:see|have|get) (?:it|this|that)(?: as| in)?|"
    r"(?:could you |can you |please )?(?:make|turn|render|redo|do|paint|draw|change|"
    r"restyle|switch|convert|show)(?: it| this one| that one| this| that| everything|"
    r" the (?:picture|image))?"
    r"(?: look| looking)?(?: like| into| as| in| to)?|change (?:the )?style to|as|in|like|"
    r"more like|in the style of)?\s*(?:an? |the )?(?P<name>.+?)"
    r"(?: style| version| one| painting| illustration| drawing| look| effect| instead)*$"
)
_STYLE_SYNONYMS = {
    "water colour": "watercolor",
    "water color": "watercolor",
    "watercolour": "watercolor",
    "pencil drawing": "pencil sketch",
    "sketch": "pencil sketch",
    "photograph": "photo",
    "photorealistic": "photo",
    "realistic photo": "photo",
    "oil": "oil painting",
    "film still": "cinematic",
    "movie still": "cinematic",
    "8-bit": "pixel art",
    "pixel": "pixel art",
}


def style_named(said: str, styles: dict) -> str | None:
    """The style preset a normalised utterance asks for ("make it look like an oil painting",
    "as an anime illustration", "watercolour version"), or None."""
    m = _STYLE_REQUEST.match(said)
    if m is None:
        return None
    name = m.group("name").strip()
    name = _STYLE_SYNONYMS.get(name, name)
    return name if name in styles else None


def understand(
    text: str,
    state: DialogueState,
    rewriter: PromptRewriter,
    has_mask: bool = False,
    style: str | None = None,
    planner: LLMPlanner | None = None,
    router: Any = None,
) -> Plan:
    """Decide what to do with ``text`` given the state; never raises for ordinary speech.

    Parameters
    ----------
    has_mask: the person brushed a region of the current picture, so the request repaints it.
    style: a preset applied to every new picture (a session setting).
    planner: an LLM asked what an open request means (schema-constrained, then checked).
    router: ``assistant.router.IntentRouter`` (intent by meaning), or None.

    Returns a validated Plan.
    """
    text = expand_chat_words(text)  # "can u do a cat astronaut": the prompt gets the words
    try:
        corrected = _self_corrected(normalise(repair_heard(text)))
        if corrected is not None:  # "make the flowers red, no, blue": the last word counts
            plan = _understand(corrected, state, rewriter, has_mask, style, planner, router)
            return plan.model_copy(update={"request": text})
        return _understand(text, state, rewriter, has_mask, style, planner, router)
    except ValidationError:  # a change longer than a Plan holds ("make the very very ... car")
        return _clarify(text, TOO_LONG_A_CHANGE)


# Thinking aloud before the request: "what was i saying oh yeah make it night".
_SELF_TALK = re.compile(
    r"^(?:what was i (?:saying|going to say)|where was i|anyway|so anyway)[,.]? (?:oh )?(?:yeah|"
    r"yes|right|ok|okay)?[,.]? (?=\w)"
)
# "red, no, blue", "black, no wait, grey", "a cat. no, a dog": a correction said at once.
_CORRECTION = re.compile(
    r"(?:[,.]\s*(?:no+|no no|no wait|wait|sorry|oops)[,.!]+\s*|[,.]?\s+(?:i mean|or rather)"
    r"[,]?\s+)"
)


def _self_corrected(said: str) -> str | None:
    """The request as corrected, or None when it corrects nothing: a whole new request after
    the correction wins; a word or two replaces the end of what came before it."""
    parts = [p.strip(" ,.") for p in _CORRECTION.split(said)]
    if len(parts) < 2 or not parts[0] or not parts[-1]:
        return None
    head = parts[0].split()
    sentences = [s.strip() for s in re.split(r"[.!?]+\s*", parts[-1]) if s.strip()]
    whole = [s for s in sentences if _DRAW_CUE.match(s) or re.match(r"^(?:an?|some|the) ", s)]
    if whole or parse_change(sentences[-1]) and len(sentences[-1].split()) > 2:
        return (whole or sentences)[-1]  # "a cat. no, a dog. a dog in a raincoat"
    # "red, no, blue. blue flowers" / "black, no wait, grey. grey with white paws": the new
    # value takes the old one's place; what its fuller saying adds comes after it.
    value = sentences[0].split()
    fuller = sentences[-1].split()
    extra = fuller[len(value) :] if fuller[: len(value)] == value else []
    extra = [] if all(w in head for w in extra) else extra
    if len(head) <= len(value):
        return None
    if extra and extra[0] in ("with", "and", "plus"):  # "grey, with white paws": a second change
        extra = [",", *extra]
    return " ".join(head[: -len(value)] + value + extra).replace(" ,", ",")


# "I'm making a birthday card for my grandma, she loves roses and teacups": the thing being
# made, and what it should show.
_MAKING = re.compile(
    r"^(?:i'm|i am|we're|we are|i'll be|im) (?:making|doing|designing|creating|working on|"
    r"putting together|planning) (?P<thing>(?:an?|some) [\w' -]+?)(?: for (?:my|our|a|an|the) "
    r"[\w' -]+?)?(?:[,.;]+ (?:and )?(?:she|he|they|it|who|which) (?:loves?|likes?|is into|are "
    r"into|wants?|needs?|should (?:have|show)) (?P<with>[\w' ,-]+))?$"
)
# "no, I meant bigger fox, not bigger picture": what was meant, without what it was taken for
_I_MEANT = re.compile(r"^(?:no,? )?i meant (?P<meant>[\w' -]+?),? not (?:the |a |an )?[\w' -]+$")
# "hmm the text came out weird, remove it": "it" is the thing named first
_NAMED_THEN_IT = re.compile(
    r"^(?:the|that|those|these) (?P<thing>[\w'-]+(?: [\w'-]+)??) (?:came out|come out|turned out|"
    r"looks?|is|are|seems?|got|went)\b[\w' ]*?[,.;]+ "
    r"(?:so |just |please |can you |could you )?(?:(?P<verb>remove|take out|get rid of|lose|delete|"
    r"erase) (?:it|them|that|those)|take (?:it|them|that|those) (?:out|away|off))$"
)
# "show me what we had before the softer one": the picture the named change was made from
_BEFORE_CHANGE = re.compile(
    r"^(?:show me |go back to |back to |bring back |can i see |let me see )?(?:what we had|what it "
    r"was|what it looked like|how it looked|the one|the picture|the version) before (?:the |you "
    r"made it |it got |we made it |i asked for )?(?P<ref>[\w' -]+?)(?: one| version| change)?$"
)


def _before_change(said: str, state: DialogueState) -> Plan | None:
    """The picture before the change was made: of the pictures the one in view came from,
    the parent of the first that names it ("before the note": before the note was added)."""
    if (m := _BEFORE_CHANGE.match(said)) is None:
        return None
    wanted = [_stem(w) for w in content_words(m.group("ref"))]
    if not wanted:
        return None

    def names(text: str) -> bool:
        have = {_stem(w) for w in words(text)}
        # "the softer one" for a picture made "soft": a comparative names its adjective
        return all(w in have or (w.endswith("er") and w[:-2] in have) for w in wanted)

    chain, node = [], state.current
    while node is not None:
        chain.append(node)
        node = state.nodes.get(node.parent_id) if node.parent_id else None
    candidates = [*reversed(chain), *reversed(list(state.nodes.values()))]
    # What was asked for names a change best; a prompt may hold the word from the start.
    for text_of in (lambda n: n.request, lambda n: n.prompt):
        for node in candidates:
            if node.parent_id in state.nodes and names(text_of(node)):
                return Plan(intent=Intent.SELECT, request=said, target_id=node.parent_id)
    return None


# "upscale #1", "flip picture 2": a command for a numbered picture; "v2 of #3 but red"
_FOR_NUMBERED = re.compile(
    r"^(?P<rest>[\w' -]+?),? (?:on |of |for |to )?(?:the )?(?:#|n(?=\d)|number |picture |pic |"
    r"image )(?P<n>\d+)$|"
    r"^(?:v\d+|version \d+|a variation|another|a new version) of (?:#|n(?=\d)|number |picture )"
    r"(?P<vn>\d+)(?:,? (?:but|and|in|with) (?P<how>.+))?$"
)


def _for_numbered(
    text: str,
    said: str,
    state: DialogueState,
    rewriter: PromptRewriter,
    style: str | None,
    router: Any,
) -> Plan | None:
    """The command said for a numbered picture, planned on that picture (not the one in view)."""
    if (m := _FOR_NUMBERED.match(said)) is None:
        return None
    node = state.nodes.get(f"n{m.group('n') or m.group('vn')}")
    if node is None:
        return None
    view = copy.copy(state)  # the same pictures, that one in view: nothing is changed
    view.focus_id = node.id
    if m.group("vn"):
        how = m.group("how")
        if not how:
            again = "another version of this"
            return _understand(again, view, rewriter, False, style, None, router)
        parsed = parse_change(how) or parse_change(f"make it {how}")
        if parsed is None:
            return None
        return _change_plan(Intent.EDIT, text, parsed[0], node, rewriter, "img2img")
    plan = _understand(m.group("rest"), view, rewriter, False, style, None, router)
    if plan.intent not in IMAGE_INTENTS or plan.target_id != node.id:
        return None  # "go back to #2" and the like: the grammar reads those itself
    return plan.model_copy(update={"request": text})


def _understand(
    text: str,
    state: DialogueState,
    rewriter: PromptRewriter,
    has_mask: bool,
    style: str | None,
    planner: LLMPlanner | None,
    router: Any,
) -> Plan:
    said = _SELF_TALK.sub("", normalise(repair_heard(text)))  # "what was i saying oh yeah ..."
    if m := _I_MEANT.match(said):  # "no, i meant bigger fox, not bigger picture"
        meant = m.group("meant")
        if c := re.fullmatch(r"(?:an? |the )?(?P<adj>\w+er) (?P<thing>[\w' -]+)", meant):
            meant = f"make the {c.group('thing')} {c.group('adj')}"  # "bigger fox"
        said = meant
    if m := _NAMED_THEN_IT.match(said):  # "the text came out weird, remove it"
        said = f"{m.group('verb') or 'remove'} the {m.group('thing')}"
    current = state.current
    if current is None and (m := _MAKING.match(said)):
        thing = m.group("thing") + (f" with {m.group('with')}" if m.group("with") else "")
        return _generate_plan(text, thing, rewriter, style)
    if current is None and _REFERS_TO_PICTURE.search(said) and parse_change(said):
        return _clarify(text, NOTHING_TO_CHANGE)  # "make it more vintage": nothing to change
    if current is not None and (plan := _before_change(said, state)):
        return plan
    if current is not None and (plan := _for_numbered(text, said, state, rewriter, style, router)):
        return plan
    if current is not None:
        said = repair_from_prompt(said, words(current.prompt))
    if has_mask and current is not None:
        change = Change(kind=ChangeKind.ADD, value=subject_of(split_negatives(text)[0]))
        return _change_plan(Intent.INPAINT, text, change, current, rewriter, "inpaint")
    if not has_mask and _BRUSHED.search(said):
        return _clarify(text, BRUSH_FIRST if current else NOTHING_TO_CHANGE)
    if (
        current is not None
        and _NEXT_PICTURE.match(text.strip().lower())
        and not _REFERS_TO_PICTURE.search(said)
        and content_words(subject_of(split_negatives(text)[0]))
    ):
        return _generate_plan(text, text, rewriter, style)
    if current is not None and _DISLIKE_ALONE.match(said):
        return _clarify(text, WHAT_DIFFERENT)  # not a retry: nothing says what to do instead
    if plan := _command_in_parts(text, said, state, rewriter, style):
        return plan
    if plan := _repaired_command(text, said, state, rewriter, style):
        return plan  # "sho me 2 more optoins": before "show me ..." is read as a picture
    if plan := _grammar_plan(text, said, state, rewriter, style):
        return plan
    if plan := _second_reading(text, said, state, rewriter, style):
        return plan
    if router is not None and (plan := _routed_plan(text, said, state, rewriter, router)):
        return plan
    # With no picture in view there is nothing to edit or pick: a description is drawn as it
    # is, without paying for an LLM plan.
    if current is None and not _NOT_A_PICTURE.match(said):
        return _fallback_plan(text, said, current, rewriter, style)
    if planner is not None and not rewriter.raw and not _HESITATION.match(said):
        llm_plan = planner.plan(text, PlanContext.of(state))
        if llm_plan is not None and (
            plan := _from_llm_plan(llm_plan, text, state, rewriter, style)
        ):
            return plan
    if current is not None and (plan := _edit_floor(text, said, state, rewriter)):
        return plan
    return _fallback_plan(text, said, current, rewriter, style)


# Intents a second reading may find: a command said with a typo or a reason after it ("flipp
# it", "crop it square for my profile pic"). A description is never re-read into another one.
_SECOND_READING_INTENTS = frozenset(
    {
        Intent.UNDO, Intent.REDO, Intent.AGAIN, Intent.VARIATIONS, Intent.HELP, Intent.SAVE,
        Intent.CANCEL, Intent.RESET, Intent.HISTORY, Intent.DESCRIBE, Intent.SELECT,
        Intent.TRANSFORM, Intent.UPSCALE, Intent.OUTPAINT, Intent.STYLE, Intent.CHITCHAT,
    }
)  # fmt: skip
# Why the person asks, after the request: "..., it's kinda creepy", "... for my phone".
_REASON = re.compile(
    r"(?:,?\s+(?:so (?:that )?|because |cause |cos |since )\S.*"
    r"|,?\s+for (?:my|the|a|an|our|printing|print|instagram)\b.*"
    r"|,\s*(?:it|it's|its|that's|they're|he's|she's|this is|it looks|looks|i think)\b.*"
    r"|,\s*(?:i want to|i need to|i'd like to|i would like to|i wanna|i'm going to|i plan to)"
    r" \w.*"
    r"|,\s*(?:they are|they look|he is|she is|it is|the way|as if|as though)\b.*"
    r"|,\s*(?:they|he|she|it|we) (?:always|never|used to|keep|kept|remind)\b.*"
    r"|,\s*my (?:eyes|glasses|screen|phone)\b.*"
    r"|,\s*(?:is|are|looks?|was) (?:ugly|bad|weird|wrong|horrible|boring|distracting|annoying|"
    r"too [\w-]+)\b.*"
    r"|\s+(?:i want it|i need it|i'd like it) (?:as|for) \w.*)$"
)


_PRAISE = re.compile(
    r"\b(?:is|looks|was|are) (?:perfect|great|lovely|beautiful|amazing|nice|good|fine|cool)\b|"
    r"^(?:perfect|great|lovely|nice|love it|i love it|awesome|cool|wow|stunning|truly|amazing|"
    r"beautiful|brilliant|gorgeous|incredible|fantastic)\b"
)
# "When I was a lad my father kept a dory just like that one, ...": a story told beside it
_STORY = re.compile(
    r"^(?:when i was|when we were|i remember|my (?:father|mother|dad|mum|mom|grandfather|"
    r"grandmother|wife|husband)|back in|years ago|once upon|i used to|we used to)\b"
)
_SENTENCE_BREAK = re.compile(r"(?<=[a-z])[?!]+\s+|(?<=[a-z])\.(?!\.)\s+")  # not "..."


def _command_in_parts(
    text: str, said: str, state: DialogueState, rewriter: PromptRewriter, style: str | None
) -> Plan | None:
    """A command said with more around it: "Make this high resolution so I can print it.",
    "um. The balloon. Can I see the balloon?" (the last sentence that is a command)."""
    parts = [normalise(p) for p in _SENTENCE_BREAK.split(said) if p.strip(" ,")]
    core = _REASON.sub("", said).strip(" ,")
    variants = [core] if core != said else []
    if len(parts) > 1:
        variants += [_REASON.sub("", p).strip(" ,") or p for p in reversed(parts)]
    for variant in variants:
        plan = _grammar_plan(text, variant, state, rewriter, style)
        # "Could you make the planets bigger? The children can't see them.": a structured edit
        # with a remark beside it is that edit.
        structured_edit = (
            plan is not None
            and plan.intent == Intent.EDIT
            and (len(parts) > 1 or variant == core)
            and plan.change is not None
            and plan.change.kind != ChangeKind.FREE
        )
        command = plan is not None and plan.intent in (*_SECOND_READING_INTENTS, Intent.COMBINE)
        if plan is None or not (command or structured_edit):
            continue
        others = [p for p in parts if p != variant and _REASON.sub("", p).strip(" ,") != variant]
        # "no no, that's worse.", "the planets one is perfect.": remarks, not requests
        others = [
            p
            for p in others
            if not (_DISLIKE_ALONE.match(p) or _PRAISE.search(p) or _STORY.match(p))
        ]
        others = [
            p
            for p in others
            if not (
                (same := _grammar_plan(text, p, state, rewriter, style))
                and same.intent == plan.intent
            )
        ]  # "Make it bigger. Higher, higher resolution.": one request said twice
        if any(parse_change(p) or _DRAW_CUE.match(p) or _ARTICLE_LED.match(p) for p in others):
            return None  # "undo. and make it blue": two requests, not one command with words
        return plan
    return None


def _repaired_command(
    text: str, said: str, state: DialogueState, rewriter: PromptRewriter, style: str | None
) -> Plan | None:
    """The grammar's plan for the request with its command words' spelling repaired, when a
    word was repaired and that makes it a command."""
    keep = {w for node in state.nodes.values() for w in words(node.prompt)}
    repaired = repair_command_words(said, keep)
    if repaired == said:
        return None
    plan = _grammar_plan(text, repaired, state, rewriter, style)
    return plan if plan is not None and plan.intent in _SECOND_READING_INTENTS else None


def _second_reading(
    text: str, said: str, state: DialogueState, rewriter: PromptRewriter, style: str | None
) -> Plan | None:
    """The grammar's plan for the request without its reason clause or with its command words'
    spelling repaired, when that makes it a command (or, without a reason, an edit)."""
    core = _REASON.sub("", said).strip(" ,")
    keep = {w for node in state.nodes.values() for w in words(node.prompt)}
    variants = [(core, True), (repair_command_words(core, keep), False)]
    if "," in core:  # "why does she look so angry, she should be happy": the request is last
        variants.append((core.rsplit(",", 1)[1].strip(), True))
    for variant, edits_too in variants:
        if variant == said or not variant:
            continue
        plan = _grammar_plan(text, variant, state, rewriter, style)
        if plan is not None and (
            plan.intent in _SECOND_READING_INTENTS or (edits_too and plan.intent == Intent.EDIT)
        ):
            return plan
    return None


# --- the grammar ----------------------------------------------------------------------------
def _grammar_plan(
    text: str, said: str, state: DialogueState, rewriter: PromptRewriter, style: str | None
) -> Plan | None:
    """What the local grammar makes of the request, or None when it does not know it."""
    current = state.current
    if _CANT_DO.match(said):
        return _clarify(text, CANT_DO)
    if re.fullmatch(
        r"(?:i want|i'd like|can i (?:have|get)|give me|make|draw|do|create)(?: me)? "
        r"(?:an?|another) (?:new )?(?:picture|image|drawing|painting|photo)",
        said,
    ):
        return _clarify(text, WHAT_TO_DRAW)  # a picture of what, though?
    for intent, pattern in g.COMMANDS:
        if pattern.search(said):
            return _command_plan(intent, text, state)
    if m := g.UNDO_STEPS.match(said):
        said_n = next((v for v in m.groups() if v), None)
        steps = g.count_in(said_n, 1)
        return Plan(intent=Intent.UNDO, request=text, steps_back=steps)

    if plan := _then_edit(text, said, state, rewriter):
        return plan  # "go back to the night one and add an owl", "undo that and make it green"
    if current is not None and (m := _BRING_BACK.match(said)):
        thing = m.group("thing")
        removed = [n.strip() for n in current.negative_prompt.split(",")]
        if any(_prompt_names_text(n, thing) for n in removed):  # "put the moon back"
            how = f", {m.group('how')}" if m.group("how") else ""  # "... but as a thin crescent"
            change = Change(kind=ChangeKind.ADD, value=f"the {thing}{how}")
            return _change_plan(Intent.EDIT, text, change, current, rewriter, "img2img")
        undone = state.nodes.get(state.redo_target or "")
        if (
            undone is not None
            and _prompt_names(undone, thing)
            and not _prompt_names(current, thing)
        ):
            return _command_plan(Intent.REDO, text, state)  # "bring back the bananas" after undo
    if (
        (m := re.fullmatch(r"(?:the|that) (?P<ref>[\w' -]{2,30})", said))
        and (target := resolve_reference(m.group("ref"), state, strict=True)) is not None
        and target is not current
        and len(state.nodes) > 1
    ):
        return Plan(intent=Intent.SELECT, request=text, target_id=target.id)  # "the apple"
    if m := g.SELECT.match(said):
        ref = next(r for r in m.groups() if r)
        target = resolve_reference(ref, state)
        if target is not None:
            return Plan(intent=Intent.SELECT, request=text, target_id=target.id)
        if state.nodes and ref.removeprefix("the ").split(" ")[0] in ("previous", "earlier"):
            return _clarify(text, NO_EARLIER)
        if said.startswith("bring") and state.can_redo:  # "bring the storm back": undone
            return Plan(intent=Intent.REDO, request=text)
        if state.nodes and not _describes_new_thing(ref):
            return _clarify(text, WHICH_PICTURE)

    # Two pictures named together: "merge the first and the last one".
    if (m := g.COMBINE_REFS.match(said)) and (plan := _combine_refs(text, m, state, rewriter)):
        return plan
    if (m := g.COMBINE.match(said) or g.COMBINE_DOING.match(said)) and (
        plan := _combine_plan(text, m, state, rewriter)
    ):
        return plan

    # A new picture asked for in so many words: "draw two otters holding hands".
    new_picture = _NEW_PICTURE.match(said) and not g.VARIATIONS.match(said)  # "do two more"
    if new_picture and not _REFERS_TO_PICTURE.search(said):
        if content_words(subject_of(split_negatives(text)[0])):
            return _generate_plan(text, text, rewriter, style)

    # A request about a named picture: "make the second one bigger".
    target, said = _named_target(said, state)
    current = target or current

    if (name := style_named(said, rewriter.styles)) is not None:
        if current is None:
            return _clarify(text, NOTHING_YET)
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

    if m := g.VARIATIONS.match(said):
        said_n = m.group("n") or m.group("n_after") or m.group("n_again") or m.group("n_of")
        count = g.count_in(said_n, 3 if "variations" in said else 1)
        return _again_plan(text, current, count) if current else _clarify(text, NOTHING_YET)

    if m := g.OUTPAINT.match(said):
        if current is None:
            return _clarify(text, NOTHING_YET)
        side = next(
            (
                m.group(k)
                for k in ("dir", "dir2", "dir3", "dir4", "dir5", "dir6", "dir7")
                if m.group(k)
            ),
            None,
        )
        direction = g.DIRECTIONS.get(side, side)
        px = m.group("px") or m.group("px2")
        pixels = int(px) // 8 * 8 if px else 128
        return _keep_scene_plan(
            Intent.OUTPAINT,
            text,
            current,
            "outpaint",
            direction=direction if side or "zoom" not in said else "all",
            pixels=min(max(pixels, 8), 1024),
        )

    if m := g.UPSCALE.match(_upscale_clause(said)):
        if current is None:
            return _clarify(text, NOTHING_YET)
        said_factor = m.group("n") or m.group("n2") or m.group("n3") or m.group("n4") or ""
        factor = 4 if said_factor in ("4", "four") else 2
        return _keep_scene_plan(Intent.UPSCALE, text, current, "upscale", factor=factor)

    if m := g.RESIZE.match(said):
        if current is None:
            return _clarify(text, NOTHING_YET)
        size = (int(m.group("w")), int(m.group("h")))
        return _keep_scene_plan(
            Intent.TRANSFORM, text, current, "transform", transforms=(Transform.RESIZE,), size=size
        )

    if (found := g.parse_transforms(said)) is not None:
        if current is None:
            return _clarify(text, NOTHING_YET)
        transforms, focus = found
        note = None
        if focus and Transform.ZOOM_IN in transforms:
            note = f"I zoomed in on the middle: I can't find {focus} in the picture by itself yet"
        return _keep_scene_plan(
            Intent.TRANSFORM,
            text,
            current,
            "transform",
            transforms=tuple(transforms),
            note=note,
        )

    if m := g.SAME_SEED.match(said):
        if current is None:
            return _clarify(text, NOTHING_YET)
        # A new picture from the same noise: no parent, only the seed is carried over.
        rest = m.group("rest")
        parsed = parse_change(rest)
        change = parsed[0] if parsed else Change(kind=ChangeKind.FREE, value=rest)
        plan = _change_plan(Intent.SAME_SEED, text, change, current, rewriter, "generate")
        return plan.model_copy(update={"target_id": None, "seed": current.seed})

    # "make it spring, no snow", "... and also the leaves more orange": every change, in turn
    several = _several_changes(said) if current is not None else None
    if several and len(several) > 1:
        first, *rest = several
        return _change_plan(Intent.EDIT, text, first, current, rewriter, "img2img", then=rest)

    parsed = parse_change(said)
    if parsed is not None and parsed[1]:  # "same thing but ...", "redo the last one but ..."
        if current is None:
            return _clarify(text, NOTHING_TO_CHANGE)
        return _change_plan(Intent.EDIT, text, parsed[0], current, rewriter, "img2img")

    # "replace the cat with a dog": a thing the prompt names is changed in the whole scene; a
    # part it does not name ("replace the sky with a sunset") is repainted as a region below.
    if (
        current is not None
        and (m := re.match(r"^(?:replace|swap) the (?P<o>[\w' -]+?) (?:with|for) (?P<v>.+)$", said))
        and _prompt_names(current, m.group("o"))
    ):
        # The value as the change reader cleans it ("an owl, keep everything else": an owl)
        parsed = parse_change(said)
        replace_with = parsed and parsed[0].kind == ChangeKind.REPLACE
        value = parsed[0].value if replace_with else m.group("v")
        change = Change(kind=ChangeKind.REPLACE, object=m.group("o"), value=value)
        return _change_plan(Intent.EDIT, text, change, current, rewriter, "img2img")

    if (region := parse_region_request(said)) is not None:
        if current is None:
            return _clarify(text, NOTHING_TO_CHANGE)
        change = Change(kind=ChangeKind.ADD, value=region.change or region.region)
        return _change_plan(
            Intent.INPAINT, text, change, current, rewriter, "inpaint", region=region.region
        )

    if structure := _KEEP_STRUCTURE.search(said):
        if current is None:
            return _clarify(text, NOTHING_TO_CHANGE)
        outlines = structure.group("what").startswith(_OUTLINE_WORDS)
        rest = _change_beside(said, structure)
        parsed = parse_change(rest)
        change = parsed[0] if parsed else Change(kind=ChangeKind.FREE, value=rest)
        operation = "controlnet" if outlines else "depth"
        return _change_plan(Intent.EDIT, text, change, current, rewriter, operation)

    if parsed is not None and (parsed[1] or _EDIT_CUE.match(said) or current is not None):
        change, _wrapped = parsed
        if current is None:
            return _clarify(text, NOTHING_TO_CHANGE)
        if target is None:  # "the teapot should be green" while another picture is in view
            current = _owner_of(change.object or _place_of(change.value), state) or current
        return _change_plan(Intent.EDIT, text, change, current, rewriter, "img2img")
    if current is not None and (changes := _several_changes(said)):
        first, *rest = changes
        return _change_plan(Intent.EDIT, text, first, current, rewriter, "img2img", then=rest)
    if _EDIT_CUE.match(said):
        if current is None:
            return _clarify(text, NOTHING_TO_CHANGE)
        if _NO_CHANGE_NAMED.match(said):
            return _clarify(text, WHAT_TO_CHANGE)
        change = Change(kind=ChangeKind.FREE, value=_tidy_change(said))
        return _change_plan(Intent.EDIT, text, change, current, rewriter, "img2img")
    if _DRAW_CUE.match(said) and content_words(subject_of(split_negatives(text)[0])):
        return _generate_plan(text, text, rewriter, style)
    return None


# Between the changes of one request: "..., and also ...", "... and then ...".
_CLAUSE_BREAK = re.compile(
    r",\s*(?:and\s+)?(?:also\s+)?|\s+and also\s+|\s+and then\s+|;\s*|"
    r"\s+and (?=(?:it should|it's|make it|there should|the \w+ should|add|remove|put|give|take|"
    r"lose|get rid of|change|turn|make the)\b)"
)
# A clause that is no change: a laugh, a reason said in passing.
_ASIDE = re.compile(
    r"^(?:[\w' ]{0,20} )?(?:haha+|lol|hehe|lmao)$|^[\w ]+ first(?: haha)?$|^please$|"
    r"^(?:no|yes|ok|okay|nah|hmm+|well|oh)(?: (?:no|yes|ok|okay))*$|"
    # "daytime please, same street": what stays, said beside the change
    r"^(?:(?:keep )?(?:the )?same (?:[\w-]+(?: [\w-]+)?)|everything else the same|keep the rest)$"
)


def _several_changes(said: str) -> list[Change] | None:
    """The changes of a request that asks for more than one ("remove the porch, just grass",
    "make it spring, no snow"), each structured; None unless every clause is one."""
    kept, negatives = split_negatives(said)
    clauses = [c.strip() for c in _CLAUSE_BREAK.split(kept) if c.strip()]
    changes: list[Change] = []
    for clause in clauses:
        if _ASIDE.match(clause):
            continue
        if m := re.match(r"^(?:just|only) (?P<x>[\w' -]+)$", clause):
            changes.append(Change(kind=ChangeKind.ADD, value=m.group("x")))
            continue
        parsed = parse_change(clause)
        if parsed is None:
            return None
        change = parsed[0]
        if changes and change.kind == ChangeKind.ADJUST and change.value == "more subtle":
            continue  # "the smoke's a bit much, tone it down": said once already
        if change.kind == ChangeKind.FREE and (phrases := split_phrases(change.value)):
            changes += phrases  # "make it foggy early morning"
            continue
        if (
            changes
            and not change.object
            and change.kind in (ChangeKind.ADJUST, ChangeKind.SET_ATTRIBUTE)
            and changes[-1].object
            and changes[-1].kind in (ChangeKind.ADJUST, ChangeKind.SET_ATTRIBUTE)
        ):  # "make the water less blue, more green": still the water
            change = change.model_copy(update={"object": changes[-1].object})
        changes.append(change)
    changes += [Change(kind=ChangeKind.REMOVE, object=n) for n in negatives]
    several = len(changes) > 1 or bool(negatives) or len(clauses) > 1
    return changes if changes and several else None


def _routed_plan(
    text: str, said: str, state: DialogueState, rewriter: PromptRewriter, router: Any
) -> Plan | None:
    """A plan from the intent the router recognises by meaning, or None for open requests."""
    try:
        route = router.route(said or text)
    except Exception as e:  # the router is optional: without it the grammar and LLM decide
        logger.warning("Intent router failed, going on without it: %s", e)
        return None
    if not route.confident or route.intent in ("open", "generate", "edit"):
        return None
    if route.heard_as is None and _too_vague_for(route.intent, said):
        return _clarify(text, NOT_SURE, planner="router")
    intent = Intent(route.intent)
    current = state.current
    if intent == Intent.SELECT:
        target = _target_in(said, state) or _previous(state)
        if target is None:
            return _clarify(text, WHICH_PICTURE)
        return Plan(intent=intent, request=text, target_id=target.id, planner="router")
    if intent == Intent.TRANSFORM:
        return _clarify(text, WHICH_TRANSFORM) if current else _clarify(text, NOTHING_YET)
    if intent == Intent.VARIATIONS:
        if current is None:
            return _clarify(text, NOTHING_YET)
        return _again_plan(text, current, 3).model_copy(update={"planner": "router"})
    if intent in (Intent.UPSCALE, Intent.OUTPAINT):
        if current is None:
            return _clarify(text, NOTHING_YET)
        fields = (
            {"factor": 4 if re.search(r"\b(?:4|four) ?(?:x|times)\b", said) else 2}
            if intent == Intent.UPSCALE
            else {"direction": _direction_in(said), "pixels": 128}
        )
        return _keep_scene_plan(intent, text, current, str(intent), **fields)
    if intent in (Intent.STYLE, Intent.INPAINT, Intent.SAME_SEED, Intent.COMBINE):
        return None  # these need their slots: the LLM or the fallback decides
    if intent == Intent.CLARIFY:
        return _clarify(text, NOT_SURE)
    return _command_plan(intent, text, state).model_copy(update={"planner": "router"})


# Commands that lose or replace what is on screen: the router must not take a vague remark
# ("do the thing", "what about that") for one of them on the strength of a word or two.
_NEEDS_A_CUE = {
    "undo": re.compile(r"\b(?:undo|un do|back|revert|before|previous|reverse|oops|mistake|"
                       r"take (?:it|that)|and do|do hot)\b"),
    "redo": re.compile(r"\b(?:redo|re do|forward|undid|undo|back|again|restore)\b"),
    "reset": re.compile(r"\b(?:start|over|reset|restart|scratch|clear|fresh|new|blank|wipe|"
                        r"begin|else|different)\b"),
    "cancel": re.compile(r"\b(?:stop|cancel|abort|halt|forget|never ?mind|don't|scratch|wait)\b"),
    "again": re.compile(r"\b(?:again|another|more|retry|different|re-?roll|once|try|seed|"
                        r"redo|new|don't|not|nah|meh|nope|else)\b"),
    "history": re.compile(r"\b(?:what|which|show|list|tell|remind|history|asked|said|did|how many|"
                          r"so far|earlier|before|first|last|made|remember|all)\b"),
}  # fmt: skip


_ANY = re.compile("")
_HESITATION = re.compile(r"^(?:(?:um+|uh+|er+m?|hmm+|ah+|oh+|mm+|huh|eh)\b[\s,.]*)*$")
# A select names a picture or goes back to one; a description alone ("a sailboat at dawn") is
# a new picture, whatever a small model makes of it.
_SELECT_CUE = re.compile(
    r"\b(?:back|previous|earlier|before|first|second|third|fourth|last|other|version|show|"
    r"select|pick|choose|go|use|original|number|picture|image|bring|return|switch|see)\b|"
    r"\b(?:the|that|this|other|first|second|last|previous) (?:[\w-]+ )?one\b"
)
# "an empty railway station at three in the morning": a new scene described, never a select
_ARTICLE_LED = re.compile(r"^(?:an?|some|two|three|four|five) (?!(?:one|bit|little)\b)\w")


def _too_vague_for(intent: str, said: str) -> bool:
    """Whether a short request lacks every word that would make it ``intent``."""
    cue = _NEEDS_A_CUE.get(intent)
    return cue is not None and len(said.split()) <= 4 and not cue.search(said)


def _direction_in(said: str) -> str:
    """The side an outpaint request names ("more on the left", "upwards"), else all sides."""
    m = re.search(r"\b(left|right|top|bottom|upwards?|downwards?|above|below)\b", said)
    side = m.group(1) if m else None
    return {"upward": "up", "above": "up", "below": "down", "downward": "down"}.get(
        side or "", g.DIRECTIONS.get(side, side)
    )


# A request that speaks of the picture in view: a pronoun for it or its people, or "there
# should be ...". Questions and remarks are not edits.
_REFERS_TO_PICTURE = re.compile(
    r"\b(?:it|this|he|she|him|her|they|them|his|its|their|there should|there needs|"
    r"can there|could there)\b|"
    r"\bthe (?:sky|weather|light|lighting|colou?rs?|mood|background|foreground|scene|"
    r"picture|image|atmosphere|whole thing)\b"
)
_QUESTION = re.compile(r"^(?:what|why|how|who|when|where|which|is|are|was|were|do|does|did)\b")
_MORE_AGAIN = re.compile(
    r"^(?:(?:even|a bit|a little|a little bit|much|way|some|bit|still|yet) )?more"
    r"(?: (?:of that|again|still))?$|^(?:stronger|further|keep going|more more)$"
)


def _edit_floor(
    text: str, said: str, state: DialogueState, rewriter: PromptRewriter
) -> Plan | None:
    """Without a planner's answer: a request that speaks of the picture in view is an edit of
    it ("give the robot a red scarf", "could he wear a raincoat"), not a new picture."""
    current = state.current
    if _MORE_AGAIN.match(said):
        return _more_of_last_change(text, state, rewriter)
    if _QUESTION.match(said) or not content_words(said) or not _speaks_of(said, current):
        return None
    if _describes_another(said, current):
        return None
    parsed = parse_change(said)
    change = parsed[0] if parsed else Change(kind=ChangeKind.FREE, value=_tidy_change(said))
    if change.kind == ChangeKind.FREE and not content_words(change.value):
        return _clarify(text, WHAT_TO_CHANGE)
    return _change_plan(Intent.EDIT, text, change, current, rewriter, "img2img")


def _speaks_of(said: str, node: ImageNode) -> bool:
    """Whether a request speaks of ``node``: names a thing of its prompt, refers to it ("it",
    "he", "there should be"), or starts like an edit. A description of something else is a
    new picture, whatever a small model makes of it."""
    return bool(
        _REFERS_TO_PICTURE.search(said)
        or _EDIT_CUE.match(said)
        or any(_prompt_names(node, w) for w in content_words(said))
    ) and not _DRAW_CUE.match(said)


def _describes_another(said: str, node: ImageNode) -> bool:
    """ "a watercolor of a fox in the snow": a new scene described, not ``node`` changed."""
    starts_new = _DRAW_CUE.match(said) or re.match(
        r"^(?:an?|some|two|three|four|\d+|un|una|une|uno|ein|eine|einen|um|uma) \w", said
    )
    # "an astronaut on a horse but make it look old": "it" is the new thing, not the picture
    return bool(starts_new) and not any(_prompt_names(node, w) for w in content_words(said))


def _more_of_last_change(text: str, state: DialogueState, rewriter: PromptRewriter) -> Plan:
    """ "even more": the last change asked for, once more, on the picture in view."""
    for exchange in reversed(state.history):
        parsed = parse_change(normalise(exchange.user or ""))
        if parsed is not None:
            change = parsed[0]
            if change.kind == ChangeKind.ADJUST:
                change = change.model_copy(update={"value": f"even {change.value}"})
            return _change_plan(Intent.EDIT, text, change, state.current, rewriter, "img2img")
    return _clarify(text, WHAT_TO_CHANGE)


_QUALITY_CLAUSE = re.compile(
    r"^(?:(?:and |but )?(?:make it )?(?:sharper|crisper|clearer|more detailed|finer|cleaner|"
    r"higher quality|better quality|hd)(?: and (?:sharper|crisper|clearer|more detailed))?)"
    r"(?: please| pls)?$"
)


def _upscale_clause(said: str) -> str:
    """ "sharper and more detailed please, upscale it": the upscale among quality words."""
    clauses = [c.strip() for c in re.split(r",|\bthen\b", said) if c.strip()]
    if len(clauses) > 1:
        rest = [c for c in clauses if not _QUALITY_CLAUSE.match(c)]
        if len(rest) == 1:
            return rest[0]
    return said


def _fallback_plan(
    text: str, said: str, current: ImageNode | None, rewriter: PromptRewriter, style: str | None
) -> Plan:
    """Nothing recognised the request: draw it only if it describes a picture."""
    kept, _ = split_negatives(text)
    if not content_words(kept) or not re.search(r"[a-z]{3,}", said):
        return _clarify(text, WHAT_TO_DRAW)
    if _NOT_A_PICTURE.match(said) and not _DRAW_CUE.match(said):
        return _clarify(text, NOT_SURE)
    return _generate_plan(text, text, rewriter, style)


# --- plan builders --------------------------------------------------------------------------
_HESITATIONS_IN = re.compile(r"\b(?:um+|uh+|erm+|er)\b[,.]?\s*", re.I)
# "an astronaut on a horse but make it look like an old photograph": the style, not the words
_BUT_MAKE_IT = re.compile(r",? but make it (?:look )?(?:like )?", re.I)
# "..., he loves fire trucks": who it is for, not what to draw
_ASIDE_AFTER = re.compile(
    r",\s*(?:he|she|they|my \w+|i|we) (?:really )?(?:loves?|likes?|wants?|adores?|is|are|'s|"
    r"was|were|can't wait)\b.*$",
    re.I,
)


def _clarify(text: str, question: str, planner: str = "grammar") -> Plan:
    return Plan(intent=Intent.CLARIFY, request=text, question=question, planner=planner)


def _generate_plan(
    text: str,
    describe: str,
    rewriter: PromptRewriter,
    style: str | None,
    avoid: list[str] | None = None,
    planner: str = "grammar",
) -> Plan:
    """A new picture of ``describe`` (the request, or the LLM's subject), in ``style`` if any."""
    described = _ASIDE_AFTER.sub("", _BUT_MAKE_IT.sub(", ", _HESITATIONS_IN.sub("", describe)))
    describe = described.strip(" ,") or describe
    rewrite = rewriter.generate(describe)
    style = style if style in rewriter.styles else None
    if style:
        styled = rewriter.restyle(style, rewrite.prompt, rewrite.negative_prompt)
        rewrite = replace(rewrite, prompt=styled.prompt, negative_prompt=styled.negative_prompt)
    return Plan(
        intent=Intent.GENERATE,
        request=text,
        prompt=rewrite.prompt,
        negative_prompt=", ".join(x for x in [*(avoid or []), rewrite.negative_prompt] if x),
        operation="generate",
        rewriter=rewrite.rewriter,
        rewrite_note=rewrite.note,
        style=style,
        planner=planner,
    )


def _change_plan(
    intent: Intent,
    text: str,
    change: Change,
    current: ImageNode,
    rewriter: PromptRewriter,
    operation: str,
    planner: str = "grammar",
    then: list[Change] | tuple[Change, ...] = (),
    **fields: Any,
) -> Plan:
    """A plan that changes ``current`` as ``change`` says, and then as each of ``then`` says;
    its prompt describes the new scene."""
    if rewriter.raw:  # raw mode: the words as said are the prompt
        rest, negatives = split_negatives(change.value or text)
        prompt, negative = rest or text, rewriter.rules.negative_for(negatives)
        note = None
    else:
        prompt, negative, note = current.prompt, current.negative_prompt, None
        for step in (change, *then):
            compiled = compile_edit(prompt, negative, step, rewriter.rules.quality_terms)
            prompt, negative = compiled.prompt, compiled.negative_prompt
            note = note or compiled.note
    values: dict[str, Any] = {
        "intent": intent,
        "request": text,
        "prompt": prompt,
        "negative_prompt": negative,
        "operation": operation,
        "target_id": current.id,
        "rewriter": "raw" if rewriter.raw else "rules",
        "change": change,
        "more_changes": tuple(then),
        "note": note,
        "planner": planner,
    }
    return Plan(**{**values, **fields})


def _keep_scene_plan(
    intent: Intent, text: str, current: ImageNode, operation: str, **fields: Any
) -> Plan:
    """A plan that changes the picture's size or shape and keeps its scene's prompt."""
    return Plan(
        intent=intent,
        request=text,
        prompt=current.prompt,
        negative_prompt=current.negative_prompt,
        operation=operation,
        target_id=current.id,
        **fields,
    )


def _combine_plan(
    text: str, m: re.Match, state: DialogueState, rewriter: PromptRewriter
) -> Plan | None:
    """ "put the dragon on top of the castle": both named things are in different pictures."""
    first = resolve_reference(m.group("a"), state, strict=True)
    second = resolve_reference(m.group("b"), state, strict=True)
    second = second or _owners_picture(m.group("b"), state)
    if first is None or second is None or first.id == second.id:
        return None
    how = m.group("how")
    what = _subject_words(first, m.group("a"))
    value = f"{what} {how} it" if how not in ("with", "and") else f"with {what}"
    if how in ("on top of", "onto", "on", "above", "over"):
        value = f"with {what} on top"
    elif how in ("in front of", "next to", "beside", "behind", "under", "inside", "into", "in"):
        value = f"with {what} {how} it"
    change = Change(kind=ChangeKind.ADD, value=value)
    plan = _change_plan(Intent.COMBINE, text, change, second, rewriter, "img2img")
    return plan.model_copy(
        update={"source_ids": (first.id, second.id), "strength": COMBINE_STRENGTH}
    )


def _owners_picture(phrase: str, state: DialogueState) -> ImageNode | None:
    """ "the ship's deck": the picture of the ship (a part of a thing it shows)."""
    m = re.match(r"^(?:the )?(?P<owner>[\w-]+)'s\b", phrase)
    return resolve_reference(m.group("owner"), state, strict=True) if m else None


def _combine_refs(
    text: str, m: re.Match, state: DialogueState, rewriter: PromptRewriter
) -> Plan | None:
    """ "merge the first and the last one", "combine both pictures": by position, not by name."""
    nodes = list(state.nodes.values())
    if m.group("a") and m.group("b"):
        first = resolve_reference(m.group("a"), state)
        second = resolve_reference(m.group("b"), state)
    elif len(nodes) >= 2:  # "both", "the two": the picture before and the one in view
        second = state.current or nodes[-1]
        first = _previous(state) or next((n for n in reversed(nodes) if n is not second), None)
    else:
        return None
    if first is None or second is None or first.id == second.id:
        return None
    value = f"with {_subject_words(first, first.prompt)}"
    change = Change(kind=ChangeKind.ADD, value=value)
    plan = _change_plan(Intent.COMBINE, text, change, second, rewriter, "img2img")
    return plan.model_copy(
        update={"source_ids": (first.id, second.id), "strength": COMBINE_STRENGTH}
    )


def _prompt_names(node: ImageNode, phrase: str) -> bool:
    """Whether ``node``'s prompt holds every content word of ``phrase`` ("the cat"), as said
    or in another number ("sunflower": "sunflowers") or as the end of a compound ("boat":
    "sailboat", "flower": "sunflowers")."""
    return _prompt_names_text(node.prompt, phrase)


# A move to another picture, then a change of it, in one breath.
_THEN_EDIT = re.compile(
    r"^(?:(?P<undo>undo(?: that| it)?|go back(?: one)?)|(?:go back to|back to|return to|switch to|"
    r"take me back to|use|take) (?:the )?(?P<ref>[\w' ,-]+?)(?: one| picture| version)?|"
    # "do the blue dinosaur one but in crayon style": a picture named as "the ... one"
    r"(?:do|redo|try|make) the (?P<named>[\w' ,-]+?) (?:one|picture|version)),? "
    r"(?:and|then|and then|but) (?P<rest>.+)$"
)


def _then_edit(text: str, said: str, state: DialogueState, rewriter: PromptRewriter) -> Plan | None:
    """ "undo that and make her dress green": the picture before, changed; "go back to the
    teapot and make it gold": that picture, changed (one plan, on the picture meant)."""
    if (m := _THEN_EDIT.match(said)) is None or state.current is None:
        return None
    if m.group("undo"):
        target = _previous(state)
    else:  # "the very first version, the grey sofa one": the first naming
        target = resolve_reference((m.group("ref") or m.group("named")).split(",")[0], state)
    rest = m.group("rest")
    parsed = parse_change(rest)
    if parsed is None and re.match(r"(?:in|as|at|during) ", rest):  # "but in crayon style"
        parsed = parse_change(f"make it {rest}")
    if target is None or parsed is None:
        return None
    return _change_plan(Intent.EDIT, text, parsed[0], target, rewriter, "img2img")


_PUT_BACK = re.compile(r"\b(?:put|bring) (?:it|that|this) back\b")
_BRING_BACK = re.compile(
    r"^(?:bring|put|give me|add|get) (?:back )?(?:the |my |his |her )?(?P<thing>[\w' -]+?)"
    r"(?: back)?(?: again| in| please)*(?:,? (?:but|and) (?:make it|as|like) (?P<how>[\w' -]+))?$"
)


def _prompt_names_text(text: str, phrase: str) -> bool:
    """Whether ``text`` (a prompt or negative prompt entry) names every word of ``phrase``."""
    wanted = content_words(phrase)
    have = {_stem(w) for w in words(text)}
    return bool(wanted) and all(_word_in(w, have) for w in wanted)


def _word_in(word: str, stems: set[str]) -> bool:
    """Whether ``word`` (or another word for its thing) is one of ``stems`` (stemmed words),
    or ends a compound among them."""
    return any(
        w in stems or (len(w) >= 4 and any(h.endswith(w) for h in stems)) for w in thing_stems(word)
    )


def _subject_words(node: ImageNode, named: str) -> str:
    """What a combined picture takes from ``node``: its first prompt part ("a red dragon")."""
    first_part = node.prompt.split(",", 1)[0].strip()
    return first_part if len(first_part.split()) <= 8 else named


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
        count=min(max(count, 1), 4),
        rewriter="rules",
    )


def _command_plan(intent: Intent, text: str, state: DialogueState) -> Plan:
    current = state.current
    if intent == Intent.UNDO and state.can_redo and _PUT_BACK.search(normalise(text)):
        intent = Intent.REDO  # "no wait, put it back" just after an undo
    if intent == Intent.REDO and not state.can_redo and current is not None:
        # "nah, redo it" with nothing undone: do it again, as people mean it
        if re.search(r"\bredo (?:it|this|that|the (?:picture|image|last one))\b", normalise(text)):
            intent = Intent.AGAIN
    if intent == Intent.AGAIN:
        return _again_plan(text, current, 1) if current else _clarify(text, NOTHING_YET)
    if intent == Intent.REDO and state.redo_target:  # the picture it brings back
        return Plan(intent=intent, request=text, target_id=state.redo_target)
    return Plan(intent=intent, request=text, target_id=current.id if current else None)


def _from_llm_plan(
    llm_plan: LLMPlan, text: str, state: DialogueState, rewriter: PromptRewriter, style: str | None
) -> Plan | None:
    """A checked LLM plan as a Plan, or None when it cannot be carried out as it stands."""
    current = state.nodes.get(llm_plan.target) if llm_plan.target else state.current
    avoid = [a for a in llm_plan.avoid if a.strip()]
    said = normalise(text)
    if _NEEDS_A_CUE.get(llm_plan.intent, _ANY).search(said) is None or (
        llm_plan.intent == "select"
        and (not _SELECT_CUE.search(said) or _QUESTION.match(said) or _ARTICLE_LED.match(said))
    ):
        logger.info("LLM plan %r ignored: nothing in %r asks for it", llm_plan.intent, said)
        return None
    match llm_plan.intent:
        case "clarify":
            return _clarify(text, NOT_SURE, planner="llm")
        case "generate":
            return _generate_plan(text, llm_plan.subject, rewriter, style, avoid, planner="llm")
        case "edit" if (
            current is not None and llm_plan.kind and not _describes_another(said, current)
        ):
            change = repair_change(llm_plan.kind, llm_plan.object, llm_plan.value)
            plan = _change_plan(
                Intent.EDIT, text, change, current, rewriter, "img2img", planner="llm"
            )
            if avoid:
                negative = ", ".join([*avoid, plan.negative_prompt])
                plan = plan.model_copy(update={"negative_prompt": negative})
            return plan
        case "transform" if current is not None and llm_plan.transform:
            return _keep_scene_plan(
                Intent.TRANSFORM,
                text,
                current,
                "transform",
                transforms=(Transform(llm_plan.transform),),
                planner="llm",
            )
        case "select" if llm_plan.target in state.nodes:
            return Plan(
                intent=Intent.SELECT, request=text, target_id=llm_plan.target, planner="llm"
            )
        case "history" | "chitchat" | "help" | "undo" | "again":
            return _command_plan(Intent(llm_plan.intent), text, state).model_copy(
                update={"planner": "llm"}
            )
    return None


# --- references -----------------------------------------------------------------------------
def resolve_reference(ref: str, state: DialogueState, strict: bool = False) -> ImageNode | None:
    """The picture a phrase points at: an ordinal, "previous", or words of its prompt.

    ``strict``: only a picture whose prompt holds every content word of the phrase.
    """
    nodes = list(state.nodes.values())
    if not nodes or not ref:
        return None
    ref = re.sub(r"^(?:the|that|this|my)\s+", "", ref.strip()).replace("very first", "first")
    if ref in g.ORDINALS and " " in ref:  # "last but one", before "one" is read as a word
        index = g.ORDINALS[ref]
        return nodes[index] if -len(nodes) <= index < len(nodes) else None
    ref = re.sub(r"^one (?:with|showing|where|that has|which has) (?:the |a |an )?", "", ref)
    ref = re.sub(r"^one from the (?:very )?(?:beginning|start)$", "first", ref)
    # "the first thing we did", "the last picture we made": by order
    ref = re.sub(
        r"^(first|second|third|fourth|fifth|last|very first|earliest|oldest|latest|last but one) "
        r"(?:thing|one|picture|image|version)(?: (?:we|you|i) (?:did|made|drew|"
        r"had|asked for|started with|got))?$",
        r"\1",
        ref,
    )
    if not re.fullmatch(r"(?:number|panel|page|frame|slide) \w+", ref):  # "number one": a number
        ref = re.sub(r"\s+(?:one|picture|image|version|pic)$", "", ref)
    ref = re.sub(r"'s\b", "", ref)  # "the ship's deck": the ship
    # "n2", "number two", "panel one" ("n" only before a digit: "night" is a word)
    numbered = r"(?:n(?=\d)|number |picture |image |panel |page |frame |slide |#)\s*(\w+)"
    if number := re.fullmatch(numbered, ref):
        index = g.NUMBERS.get(number.group(1), number.group(1))  # "number two" -> 2
        return state.nodes.get(f"n{index}")
    if ref == "middle" and len(nodes) >= 3:
        return nodes[len(nodes) // 2]
    if (m := re.fullmatch(r"(\w+) ([\w' -]+)", ref)) and m.group(1) in g.ORDINALS:
        # "the first kitten": by order among the pictures that show a kitten
        named = [n for n in nodes if _prompt_names(n, m.group(2))]
        index = g.ORDINALS[m.group(1)]
        if named and -len(named) <= index < len(named):
            return named[index]
    if ref in g.ORDINALS:
        index = g.ORDINALS[ref]
        return nodes[index] if -len(nodes) <= index < len(nodes) else None
    if ref in g.PREVIOUS:
        return _previous(state)
    if m := re.fullmatch(r"one (?P<when>before|after) (?:the |that |this )?(?P<x>[\w' -]+)", ref):
        # "the one before the watercolor": next to the picture that phrase names
        named = resolve_reference(m.group("x"), state, strict)
        if named is None or named not in nodes:
            return None
        index = nodes.index(named) + (-1 if m.group("when") == "before" else 1)
        if m.group("when") == "before" and named.parent_id:
            return state.nodes.get(named.parent_id)
        return nodes[index] if 0 <= index < len(nodes) else None
    # "the blue one": the most recent picture whose prompt or request holds the most words.
    wanted = set(content_words(ref))
    if not wanted:
        return None
    if len(wanted) > 4 or len(ref.split()) > 7 or _NOT_A_NAME.search(ref):
        return None  # "the penguins to be wearing little scarves ...": a change, not a name
    joined = {"".join(content_words(ref))}  # "the jelly fish" is the jellyfish

    def score(node: ImageNode) -> int:
        have = set(words(node.prompt)) | (set() if strict else set(words(node.request)))
        stems = {_stem(w) for w in have}
        return sum(_word_in(w, stems) for w in wanted) or len(wanted) * bool(joined & have)

    best, best_score = None, 0
    for node in nodes:
        if (points := score(node)) >= best_score and points > 0:
            best, best_score = node, points
    if strict and best is not None and best_score < len(wanted):
        return None
    # "the night one" in a chain of edits: the edit that made it night, not a later one that
    # only kept the night (the words were there from that picture on).
    while best is not None and best.parent_id in state.nodes:
        parent = state.nodes[best.parent_id]
        if score(parent) < best_score:
            break
        best = parent
    if best is None and not strict:
        best = _by_opposite(wanted, nodes)
    return best


def _by_opposite(wanted: set[str], nodes: list[ImageNode]) -> ImageNode | None:
    """ "the daytime one" when no prompt says day but one says night: the latest picture whose
    prompt does not contradict the words (only when some other picture's does)."""
    said = " ".join(sorted(wanted))
    fits = [n for n in nodes if not contradiction(said, set(words(n.prompt)))]
    return fits[-1] if fits and len(fits) < len(nodes) else None


_NOT_A_NAME = re.compile(r"\b(?:to be|should|would|could|and it|and make|and add|is wearing)\b")


def _previous(state: DialogueState) -> ImageNode | None:
    current = state.current
    if current and current.parent_id:
        return state.nodes[current.parent_id]
    nodes = list(state.nodes.values())
    index = nodes.index(current) if current in nodes else len(nodes)
    return nodes[index - 1] if index >= 1 else None


def _target_in(said: str, state: DialogueState) -> ImageNode | None:
    """The picture a phrase in the request names ("the second one", "the blue one")."""
    m = g.TARGET_PHRASE.search(said)
    if m is None:
        return None
    return resolve_reference(m.group("ord") or m.group("ord2") or m.group("words"), state)


def _named_target(said: str, state: DialogueState) -> tuple[ImageNode | None, str]:
    """The picture an edit names ("make the second one bigger") and the request without it."""
    m = g.TARGET_PHRASE.search(said) if len(state.nodes) >= 2 else None
    target = _target_in(said, state) if m else None
    if m is None or target is None:
        return None, said
    rest = (said[: m.start()] + "it" + said[m.end() :]).strip()
    rest = re.sub(r"^(?:in|on|for|with) it,? ", "", rest)  # "in the surfer one, make ..."
    # "the earliest one, but as a watercolour": the change follows the name
    rest = re.sub(
        r"^it,? (?:but |and |only |just )?(?=(?:as|in|at|with|more|less) )", "make it ", rest
    )
    return target, re.sub(r"\bit it\b", "it", rest)


def _place_of(added: str) -> str:
    """Where an added thing goes, when that is a thing: "chopsticks to the ramen" -> "ramen"."""
    m = re.search(
        r"\b(?:to|on|onto|in|into|next to|beside|by|near|under|behind|on top of) (?:the|his|her|"
        r"its|their) (?P<thing>[\w-]+)$",
        added,
    )
    return m.group("thing") if m else ""


def _owner_of(thing: str, state: DialogueState) -> ImageNode | None:
    """The picture a change's object belongs to when the one in view does not show it: the
    latest picture whose prompt names it (None when the one in view does, or none does)."""
    current = state.current
    if not thing or current is None or _prompt_names(current, thing):
        return None
    return next((n for n in reversed(state.nodes.values()) if _prompt_names(n, thing)), None)


def _describes_new_thing(ref: str) -> bool:
    """ "use the forest as a background": a select that names nothing in any picture."""
    return len(content_words(ref)) > 2


def _change_beside(said: str, keep: re.Match) -> str:
    """The change asked for around "keep the layout": "keep the layout but make it winter" →
    "make it winter" (the keep-clause is an instruction, not something to draw)."""
    after = _JOINERS.sub("", said[keep.end() :])
    before = _JOINERS.sub("", said[: keep.start()])
    return after or before or said


def _tidy_change(said: str) -> str:
    """An edit as said, without its command words: "make it look more magical" → "more
    magical"."""
    rest = re.sub(
        r"^(?:make|turn|change|give) (?:it|this|that|everything)(?: look| feel| seem)?\s*",
        "",
        said,
    )
    return rest.strip() or said
