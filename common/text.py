"""Text from outside (typed requests, prompts, file names): control characters out.

Control characters reach prompts, PNG text chunks, replies, log lines and terminals; a NUL
also breaks the spoken reply and C strings. A NUL is refused (it is never typed, so it means
a broken or hostile client); the other C0/C1 controls and DEL are removed; newlines and tabs
stay, and a carriage return becomes a newline.
"""

from __future__ import annotations

import re

NUL = "\x00"
# C0 controls but \t (09) and \n (0a), then DEL and the C1 controls (80-9f).
_CONTROLS = re.compile(r"[\x01-\x08\x0b-\x1f\x7f-\x9f]")


class TextInputError(ValueError):
    """Text that cannot be used as it is; ``code`` is always ``input-invalid``."""

    code = "input-invalid"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def clean_text(text: str, field: str = "text") -> str:
    """``text`` without control characters (newlines and tabs kept).

    Parameters
    ----------
    text: what a client sent.
    field: its name, for the message.

    Returns
    -------
    The text with carriage returns turned into newlines and other controls removed.

    Raises
    ------
    TextInputError
        When ``text`` holds a NUL character.
    """
    if NUL in text:
        raise TextInputError(
            f"`{field}` contains a NUL character (\\x00) at position {text.index(NUL)}; "
            "send plain text."
        )
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


# "a dog a dog running", "in the uh in the autumn": speech that restarts a phrase mid-way.
_HESITATION = re.compile(r"(?<=\w),? (?:um+|uh+|erm+|er)\b,?(?= \w)", re.I)
_RESTART = re.compile(r"\b(?!undo\b)((?:[\w']+ ){0,2}[\w']+),? \1\b", re.I)
# In a description one word said twice is often the name itself ("Bora Bora", "choo choo"):
# only phrases of two or more words, or the little words, are restarts there.
_PHRASE_RESTART = re.compile(
    r"\b((?:[\w']+ ){1,2}[\w']+|a|an|the|in|on|at|of|to|with|and|it|make|draw),? \1\b", re.I
)


def drop_restarts(text: str, keep_repeated_words: bool = False) -> str:
    """``text`` without hesitation sounds between words and with a phrase said twice in a row
    said once ("undo undo" stays: a repeated undo is a count of steps). With
    ``keep_repeated_words`` (a picture's description) a single word said twice stays, unless it
    is a little word ("the, the lemons")."""
    text = _HESITATION.sub("", text)
    return (_PHRASE_RESTART if keep_repeated_words else _RESTART).sub(r"\1", text)
