"""Does a transcript sound like a finished request? (the voice loop's early end of turn)

The voice loop waits ``silence_ms`` (700 ms) of silence before it takes a request as said.
With speculative recognition (:mod:`voice.asr_speculative`) the transcript of the audio up
to a short pause is there sooner; when it reads as a whole request, waiting longer only
delays the answer. :func:`sounds_finished` is that judgement, on the words alone: a request
that stops on a word that needs a continuation ("... with", "... and the", "a ... of"), on a
comma or a dash, or on a filler ("um") is not finished, and keeps the full silence window.

It cannot know that "Draw a lighthouse" will go on with "on a cliff at night" after a long
breath: the endpointer's ``early_end_ms`` floor (600 ms in the voice loop) keeps a shorter
hesitation from ending the turn, however fast recognition is; a longer one ends it early,
as a shorter silence window would.

Example::

    sounds_finished("Draw a lighthouse on a cliff at night.")   # True
    sounds_finished("Draw a lighthouse with")                    # False
"""

from __future__ import annotations

import re

# Words after which a request goes on: articles, prepositions, conjunctions, possessives,
# intensifiers, fillers. Lower case.
CONTINUATION_WORDS = frozenset(
    """
    a an the this that these those my your his her its our their some any every each no
    and or but nor so because if then than as like plus also
    of on in at to for from with without into onto over under behind beside between near
    by about above below across through around toward towards against along among
    is are was were be been being am
    very really quite more less most least too extra
    um uh er erm hmm ah eh
    """.split()
)
_WORD = re.compile(r"[a-z']+")
_OPEN_ENDINGS = (",", "-", "\u2014", "\u2013", ":", ";", "...", "\u2026")


def sounds_finished(text: str) -> bool:
    """True when ``text`` reads as a complete request, False when it seems to go on.

    Parameters
    ----------
    text:
        A transcript (Whisper's, with its punctuation).

    Returns
    -------
    False for empty text, text ending in a comma, dash, colon or ellipsis, or text whose last
    word is in :data:`CONTINUATION_WORDS`; True otherwise.
    """
    stripped = text.strip()
    if not stripped or stripped.endswith(_OPEN_ENDINGS):
        return False
    words = _WORD.findall(stripped.lower())
    if not words:
        return False
    return words[-1] not in CONTINUATION_WORDS
