"""Asking back when speech was heard with little confidence, and reading the answer.

Whisper's confidence (``exp`` of the mean token log probability) separates misheard requests
from clean ones well at the low end: on 96 synthesized requests (Piper, hibari, espeak-ng;
docs/BENCHMARKS.md, "Hearing confirmation") every clip below 0.60 was misheard ("Draw free
sailboat son of Kam Blue Lake", "make it a nice seal instead"), and no correctly heard one
was. So a picture that would be made or changed from such a transcript is first confirmed:
"I heard "...". Shall I go ahead?". "yes" runs it, "no" asks to say it again, and anything
else is a new request (people usually just say it again, better).
"""

from __future__ import annotations

import re
import textwrap
from enum import Enum

from assistant.i18n import N_, t

# Below this confidence a spoken request that would make or change a picture is confirmed
# first (faster-whisper int8 on the packaged base weights; 0 turns confirming off).
CONFIRM_BELOW = 0.60

HEARD_RIGHT = N_('I heard "{heard}". Shall I go ahead?')
SAY_AGAIN = N_("Sorry, I misheard. Please say it again, or type it.")


class Answer(Enum):
    YES = "yes"
    NO = "no"
    OTHER = "other"  # not an answer: a new request


# Short answers in the languages the assistant replies in (a German speaker says "ja").
_YES = frozenset(
    "yes yeah yep yup ya yea sure right correct exactly ok okay alright fine perfect "
    "affirmative absolutely definitely mhm ja genau richtig oui exactement sí si claro vale "
    "correcto certo esatto sim isso".split()
)
_YES_PHRASES = frozenset(
    ("that's right", "that's correct", "that's it", "go ahead", "do it", "go for", "uh huh",
     "please do", "you got", "spot on")
)  # fmt: skip
_NO = frozenset("no nope nah wrong nein non não nao".split())
# Words that may follow a yes without making it a request: "yes, that's what I said, go ahead".
_AFFIRMING = _YES | frozenset(
    "please thanks thank you that that's is it it's was what i said meant go ahead do "
    "thing uh huh so for got spot on correct bitte merci gracias grazie obrigado".split()
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# "no" said apart from what follows ("No, make the boat green."): "no clouds" is a request.
_NO_THEN = re.compile(r"^(?P<no>(?:\w+[\s,.!]*?)+?)[,.!]+\s*(?P<rest>.+)$")


def answer_to(said: str) -> tuple[Answer, str]:
    """(what ``said`` answers, the rest): "yes" → YES; "no" → NO with ""; "no, make the boat
    green" → NO with "make the boat green"; anything else → OTHER with all of it."""
    words = _WORD.findall(said.lower())
    if not words:
        return Answer.OTHER, said
    if (words[0] in _YES or " ".join(words[:2]) in _YES_PHRASES) and all(
        w in _AFFIRMING for w in words
    ):
        return Answer.YES, ""
    if all(w in _NO for w in words) or words[:2] == ["not", "that"] and len(words) == 2:
        return Answer.NO, ""
    if words[0] in _NO and (m := _NO_THEN.match(said.strip())):
        if all(w in _NO for w in _WORD.findall(m["no"].lower())):
            return Answer.NO, m["rest"].strip(" ,.!")
    return Answer.OTHER, said


def needs_confirming(confidence: float | None, makes_a_picture: bool, below: float) -> bool:
    """A spoken request heard with less than ``below`` confidence that would make or change a
    picture (a question, undo or select costs nothing to get wrong: it is not asked)."""
    return confidence is not None and makes_a_picture and confidence < below


def confirming_question(said: str, lang: str) -> str:
    """'I heard "make the moat breathe". Shall I go ahead?' in the reply language."""
    heard = textwrap.shorten(said.strip().rstrip(".!,;: "), 120, placeholder="...")
    return t(lang, HEARD_RIGHT, heard=heard)
