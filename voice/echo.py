"""Echo guard: keep the assistant from hearing its own voice through the speaker.

Without echo cancellation, a microphone near a speaker hears the assistant's reply. Two
cheap defences, both honest about their limits:

1. :class:`EchoGuard` (acoustic): while the player is playing (and ``tail`` after), speech
   must be *more certain and longer* to start an utterance: a higher VAD threshold and
   ``frames`` consecutive speech frames instead of one. This stops faint echo and short
   bursts (a clatter, the tail of a sentence). It does **not** stop a loud echo: Silero VAD
   is trained to ignore level, and the packaged Piper voice played back at -20 dB or even
   -30 dB still scores above 0.85 on almost every frame (measured: 54 of 56 speech frames
   at -30 dB, none above 0.85 at -50 dB). Use headphones, keep the speaker quiet and away
   from the microphone, or turn barge-in off (half duplex: the mic is deaf while the
   assistant speaks).
2. :func:`is_echo` (textual): when an utterance that interrupted the assistant is
   transcribed as mostly the assistant's own words, it is an echo, not a request; the
   voice loop then drops that turn instead of answering itself.

Real acoustic echo cancellation (WebRTC AEC, speexdsp) would subtract the played signal
from the microphone's; it is not used here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ECHO_WORD_SHARE = 0.6  # share of the heard words that must come from the spoken text
ECHO_MIN_WORDS = 2  # fewer heard words than this are never called an echo


@dataclass(frozen=True)
class EchoGuard:
    """The stricter start rule used while the assistant is speaking.

    Parameters
    ----------
    threshold:
        VAD probability (0..1) a frame needs to count towards starting speech.
    frames:
        Consecutive such frames needed (6 frames = 192 ms).
    enabled:
        False uses the normal rule all the time.
    """

    threshold: float = 0.9
    frames: int = 6
    enabled: bool = True

    def start_rule(self, playing: bool) -> tuple[float | None, int | None]:
        """``(threshold, frames)`` for :meth:`voice.endpointing.Endpointer.push`.

        Parameters
        ----------
        playing:
            Whether the assistant is speaking now.

        Returns
        -------
        The stricter rule while playing, else ``(None, None)`` (the endpointer's own).
        """
        if playing and self.enabled:
            return self.threshold, self.frames
        return None, None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.casefold())


def echo_share(heard: str, spoken: str) -> float:
    """Share (0..1) of the words in ``heard`` that also occur in ``spoken``.

    Parameters
    ----------
    heard:
        What the microphone's utterance was transcribed as.
    spoken:
        What the assistant was saying at the time.

    Returns
    -------
    0.0 when ``heard`` has no words.
    """
    heard_words = _words(heard)
    if not heard_words:
        return 0.0
    spoken_words = set(_words(spoken))
    return sum(w in spoken_words for w in heard_words) / len(heard_words)


def is_echo(
    heard: str,
    spoken: str,
    share: float = ECHO_WORD_SHARE,
    min_words: int = ECHO_MIN_WORDS,
) -> bool:
    """True when ``heard`` is most likely the assistant's own ``spoken`` words.

    Parameters
    ----------
    heard, spoken:
        The transcript of the interrupting utterance, and the assistant's text.
    share:
        Share of the heard words that must appear in ``spoken``.
    min_words:
        A transcript with fewer words is never called an echo ("yes", "stop").

    Returns
    -------
    Whether to ignore the utterance.
    """
    return len(_words(heard)) >= min_words and echo_share(heard, spoken) >= share
