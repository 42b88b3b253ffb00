"""Repair the spelling of command words: "uspcale it", "flipp it", "undoo", "try agian".

Typed requests have typos and Whisper writes short commands as near-words ("Un do.", "Show me
the first won."). The grammar knows commands by their exact words, so a request the grammar
does not know is tried once more with its command words repaired. Only a word that is no word
of the picture's prompt, within one edit (two for long words) of exactly one command word, is
changed; the caller keeps the repair only when it turns the request into a command (a typo in
a description is the picture's business, not ours).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rapidfuzz.distance import OSA  # optimal string alignment: a swap of two letters is 1 edit

# The words commands are made of (assistant.command_grammar), four letters or more: shorter
# words have too many one-edit neighbours to repair safely.
COMMAND_WORDS = frozenset(
    """
    undo redo again help save cancel stop upscale enlarge flip mirror rotate crop zoom square
    portrait landscape variations versions reset restart start over previous picture image
    prompt first second third last seed export download history bigger smaller extend
    horizontally vertically widescreen resolution settings negative original remove delete
    another different forward back revert pictures images options alternatives version
    """.split()
)
# Real words one edit away from a command word that people mean as themselves.
_KEEP = frozenset(
    """
    same wave cave have gave held hell clip flop crap crow star stat sale safe gain over
    lover cover rover sever fast past vast post most best rest test west zoo room doom boom
    hold fold sold told cold gold bold mold flap slip drip trip grip ship whip chip
    """.split()
)
# Whole-utterance mishearings Whisper writes for short commands (benchmarks/mishearings.py).
_HEARD_AS = {
    "un do": "undo",
    "un-do": "undo",
    "and do": "undo",
    "read do": "redo",
    "re do": "redo",
    "safe": "save",
    "safe it": "save it",
    "start offer": "start over",
    "start a fresh": "start afresh",
    "free more": "three more",
    "on do": "undo",
    "on do that": "undo that",
    "on do it": "undo it",
    "we do": "redo",
    "we do that": "redo that",
    "to more": "two more",
    "to more like that": "two more like that",
    "too more like that": "two more like that",
    "free more of those": "three more of those",
}
# Chat-speak and common typos of the little words requests are built from.
_CHAT_WORDS = {
    "u": "you", "ur": "your", "pls": "please", "plz": "please", "cna": "can", "wat": "what",
    "teh": "the", "nd": "and", "thx": "thanks", "mkae": "make", "amke": "make",
    "mak": "make", "rmeove": "remove", "chnage": "change", "im": "i'm", "dont": "don't",
    "cant": "can't", "didnt": "didn't", "whats": "what's", "thats": "that's",
    "sho": "show", "shw": "show", "agian": "again", "remuv": "remove", "remov": "remove",
    "rmv": "remove", "makeit": "make it", "mkaeit": "make it",
    "becuase": "because", "nvm": "never mind", "nevermind": "never mind", "wiht": "with",
    "whit": "with", "hte": "the", "n": "and", "verison": "version", "versoin": "version",
    "ty": "thank you", "tysm": "thank you so much", "thnx": "thanks", "thanx": "thanks",
    "res": "resolution", "bg": "background", "pic": "picture", "r": "are", "sry": "sorry",
}  # fmt: skip
# Words Whisper writes for the command or number said (in the phrases where nothing else fits).
_SOUNDS_LIKE = [
    (r"\b((?:rotate|turn|move|extend|flip) (?:it )?)two the\b", r"\1to the"),
    (r"\b((?:give me|make|show me|draw|do) )(?:tree|free)(?= more\b)", r"\1three"),
    (r"\b(make (?:it|the [\w-]+|his [\w-]+|her [\w-]+))[.,]? read\b", r"\1 red"),
    (r"\bcom bine\b", "combine"),
    (r"\bup scale\b", "upscale"),
]
# A full stop Whisper puts inside one phrase: "Remove the. Umbrellas."
# "make the teapot. Red.": the value said after a breath, as its own sentence
_STOP_BEFORE_VALUE = re.compile(
    r"\b(make (?:it|the [\w-]+|his [\w-]+|her [\w-]+))[.,] (?=[a-z]+[.!]?$)", re.I
)
_STOP_INSIDE = re.compile(
    r"\b(the|a|an|to|of|my|his|her|its|some|more|make|remove|add)\. (?=\w)", re.I
)
_LEAD_IN = re.compile(r"^(?:(?:actually|um+|uh+|oh|ok|okay|so|no|hmm+|well|wait|oops)\s+)+")
_AND_DO = re.compile(r"^and do (?:that|it|this)(?: one)?$")  # Whisper's "undo that"
_WON_AFTER_ORDINAL = re.compile(r"\b(first|second|third|fourth|last|other|previous) won\b")
_WORD = re.compile(r"[a-z]+")


def expand_chat_words(text: str) -> str:
    """``text`` with texting shorthand and common slips written out ("can u do" -> "can you
    do", "thx" -> "thanks"), word by word; a word with punctuation on it is left as it is."""
    if not any(w in _CHAT_WORDS for w in text.lower().split()):
        return text
    return " ".join(_CHAT_WORDS.get(w.lower(), w) for w in text.split())


def repair_heard(text: str) -> str:
    """``text`` with the mishearings of whole short commands that cannot mean anything else
    repaired ("Un do.", "Start offer.", "Show me the first won."); else ``text`` as it was."""
    said = re.sub(r"\s+", " ", re.sub(r"[^\w' -]+", " ", text.lower())).strip()
    if said in ("ctrl z", "control z", "command z", "cmd z"):
        return "undo"
    text, said = expand_chat_words(text), expand_chat_words(said)
    if re.match(r"^ad (?:a|an|some|the|more)\b", said):  # "ad a rainbow"
        return "add " + text.split(" ", 1)[1]
    said = re.sub(r"^i want see\b", "i want to see", said)
    text = re.sub(r"^(i want) (see)\b", r"\1 to \2", text, flags=re.I)
    core = _LEAD_IN.sub("", said)  # "Actually, and do that."
    if (m := re.fullmatch(r"(\w+(?: \w+){0,2}?)(?: \1)+", core)) and m.group(1) in _HEARD_AS:
        # "and do and do": the misheard command said more than once ("undo undo")
        return " ".join([_HEARD_AS[m.group(1)]] * (len(core.split()) // len(m.group(1).split())))
    repaired = _HEARD_AS.get(core) or _AND_DO.sub("undo that", core)
    if repaired != core:
        return repaired
    repaired = _WON_AFTER_ORDINAL.sub(r"\1 one", said)
    if repaired != said:
        return repaired
    for pattern, fixed in _SOUNDS_LIKE:  # on the words as written: sentences stay sentences
        text = re.sub(pattern, fixed, text, flags=re.I)
    return _STOP_BEFORE_VALUE.sub(r"\1 ", _STOP_INSIDE.sub(r"\1 ", text))


# Real words that are other real words with two letters swapped: never "repaired".
_SWAPPED_WORDS = frozenset(
    "from form does dose quite quiet trial trail angel angle diary dairy untied united "
    "causal casual sacred scared silver sliver bread beard".split()
)


def repair_from_prompt(said: str, prompt_words: Iterable[str]) -> str:
    """``said`` with a word whose letters are a picture's word with two swapped ("the trian"
    for "the train") written as the picture has it. Only swaps: a word one letter away from
    a prompt word is too often another real word ("plane", "plant")."""
    known = {w for w in prompt_words if len(w) >= 4}

    def fix(m: re.Match) -> str:
        word = m.group()
        if len(word) < 4 or word in known or word in _SWAPPED_WORDS:
            return word
        for w in known:
            if sorted(w) == sorted(word) and OSA.distance(word, w, score_cutoff=1) <= 1:
                return w
        return word

    return _WORD.sub(fix, said)


def repair_command_words(said: str, keep: Iterable[str] = ()) -> str:
    """``said`` (normalised) with misspelt command words repaired; ``keep``: words never to
    change (those of the pictures' prompts)."""
    said = repair_heard(said)
    keep = _KEEP | set(keep)
    return _WORD.sub(lambda m: _nearest_command(m.group(), keep), said)


def _nearest_command(word: str, keep: frozenset[str] | set[str]) -> str:
    if len(word) < 4 or word in COMMAND_WORDS or word in keep:
        return word
    limit = 2 if len(word) >= 7 else 1
    near = [w for w in COMMAND_WORDS if OSA.distance(word, w, score_cutoff=limit) <= limit]
    return near[0] if len(near) == 1 else word
