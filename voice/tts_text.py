"""Text preparation for speech: validation and sentence splitting, so speech can start early."""

from __future__ import annotations

import re

from voice.errors import VoiceError

MAX_SENTENCE_CHARS = 300  # characters; longer run-ons are cut so the first chunk comes soon

# A sentence end: terminal punctuation, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"([.!?\u2026]+)([\"'\u201d\u2019)\]]*)(\s+)(?=\S)")
# Words after which a period does not end a sentence ("Mr. Smith", "e.g. Paris").
_NO_BREAK_AFTER = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "mt", "vs", "e.g", "i.e", "cf", "approx"}
)
_LAST_WORD = re.compile(r"([\w.]+)$")
_SPEAKABLE = re.compile(r"\w")
_CLAUSE_BREAK = re.compile(r"[,;:]\s")


def check_text(text: object) -> str:
    """Return ``text`` stripped, or raise ``input-invalid`` if there is nothing to say.

    Parameters
    ----------
    text:
        What the caller asked to speak.

    Returns
    -------
    str
        The stripped text.

    Raises
    ------
    VoiceError
        ``input-invalid`` when the text is not a string or has no letters or digits.
    """
    if not isinstance(text, str):
        raise VoiceError("input-invalid", f"Text to speak must be a string, got {type(text)}.")
    stripped = text.strip()
    if not is_speakable(stripped):
        raise VoiceError("input-invalid", "There is no text to speak: give at least one word.")
    return stripped


def is_speakable(text: str) -> bool:
    """Return True if ``text`` holds at least one letter or digit."""
    return bool(_SPEAKABLE.search(text))


def split_sentences(text: str) -> list[str]:
    """Split a reply into sentences, one speech chunk each.

    A sentence ends at ``.``, ``!``, ``?`` or ``…`` followed by a space and a
    word that does not start in lower case, and at every line break. Periods
    inside numbers ("3.5"), after titles and common abbreviations ("Mr.",
    "e.g.") and after single-capital initials ("J. Smith") do not end one.
    Sentences longer than ``MAX_SENTENCE_CHARS`` are cut at a comma or space.

    Parameters
    ----------
    text:
        The text to split.

    Returns
    -------
    list[str]
        Non-empty sentences with whitespace collapsed, in order.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        start = 0
        for match in _BOUNDARY.finditer(line):
            if _ends_sentence(line, match):
                sentences.append(line[start : match.end(2)])
                start = match.end()
        sentences.append(line[start:])
    pieces = [piece for sentence in sentences for piece in _cut_long(sentence.strip())]
    return [piece for piece in pieces if piece]


def _ends_sentence(line: str, match: re.Match[str]) -> bool:
    """Decide whether a punctuation-then-space match really ends a sentence."""
    next_char = line[match.end()]
    if next_char.islower():
        return False
    if match.group(1) != ".":
        return True
    word = _LAST_WORD.search(line[: match.start(1)])
    if word is None:
        return True
    token = word.group(1).lower().strip(".")
    if token in _NO_BREAK_AFTER:
        return False
    is_initial = len(token) == 1 and token.isalpha() and word.group(1).isupper()
    return not is_initial


def _cut_long(sentence: str) -> list[str]:
    """Cut a sentence longer than ``MAX_SENTENCE_CHARS``: at a late comma, else at a space."""
    pieces: list[str] = []
    while len(sentence) > MAX_SENTENCE_CHARS:
        window = sentence[: MAX_SENTENCE_CHARS + 1]
        commas = [m.end() for m in _CLAUSE_BREAK.finditer(window)]
        spaces = [m.end() for m in re.finditer(r"\s", window)]
        if commas and commas[-1] >= MAX_SENTENCE_CHARS // 2:
            cut = commas[-1]
        elif spaces:
            cut = spaces[-1]
        else:
            cut = MAX_SENTENCE_CHARS
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    pieces.append(sentence)
    return pieces
