"""Which language a typed request is in (spoken ones: Whisper says).

py3langid's bundled model, restricted to the languages the assistant answers in, so a short
English request cannot come back as, say, Latvian. Short English requests still score badly
("a piano" → Italian 0.73, "undo" → Portuguese 0.34), so another language is only believed
when it is near certain, or fairly sure on a longer sentence; measured on 70 English requests
and commands with no false switch (tests/test_language.py keeps that true).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from assistant.i18n import SOURCE_LANGUAGE, reply_languages

SURE = 0.9  # believe another language at this probability on any length of text...
FAIRLY_SURE, MIN_WORDS = 0.7, 4  # ...or at this one on a sentence of at least this many words
# ...or at this one when the conversation is already in that language: one-word commands
# ("annuler" 0.43, "encore" 0.37) score low on their own.
IN_CONTEXT = 0.35


@dataclass(frozen=True)
class Detected:
    language: str  # ISO 639-1 code
    confidence: float  # the detector's normalised probability (1.0 when it was not asked)


@cache
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier  # noqa: PLC0415

    identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(reply_languages()))
    return identifier


def detect_language(text: str, context: str = SOURCE_LANGUAGE) -> Detected:
    """The language of ``text``; English unless another one is clearly more likely.

    ``context``: the language the conversation is in, which a short request likely shares.
    """
    words = re.findall(r"[^\W\d_]+", text)
    if not words:
        return Detected(SOURCE_LANGUAGE, 1.0)
    language, probability = _identifier().classify(text)
    probability = float(probability)
    believed = (
        probability >= SURE
        or (probability >= FAIRLY_SURE and len(words) >= MIN_WORDS)
        or (language == context and probability >= IN_CONTEXT)
    )
    if language != SOURCE_LANGUAGE and not believed:
        return Detected(SOURCE_LANGUAGE, round(1.0 - probability, 3))
    return Detected(language, round(probability, 3))


def language_name(code: str, in_language: str = SOURCE_LANGUAGE) -> str:
    """``"de"`` → ``"German"`` (or ``"Deutsch"`` with ``in_language="de"``)."""
    from babel import Locale, UnknownLocaleError  # noqa: PLC0415

    try:
        return Locale.parse(code).get_display_name(in_language) or code
    except (ValueError, UnknownLocaleError):
        return code


# "Draw" at the start of a request, per language: replies name the picture without it
# ("Voici votre image : un phare …", not "… : dessine un phare …").
_DRAW_VERBS = {
    "de": r"(?:zeichne|zeichnet|male|mal|erstelle|zeig mir|generiere)",
    "fr": r"(?:dessine|dessinez|peins|peignez|fais|faites|montre-moi|montrez-moi|génère)",
    "es": r"(?:dibuja|dibújame|pinta|píntame|haz|hazme|muéstrame|genera)",
    "it": r"(?:disegna|disegnami|dipingi|fai|fammi|mostrami|genera)",
    "pt": r"(?:desenhe|desenha|pinte|pinta|faça|faz|mostre-me|mostra-me|gere)",
}


def subject_in(text: str, language: str) -> str:
    """``text`` without its leading "draw" verb, in ``language`` (unchanged if there is none)."""
    verbs = _DRAW_VERBS.get(language)
    if not verbs:
        return text.strip()
    stripped = re.sub(rf"^\s*{verbs}\b[\s,:]*", "", text, count=1, flags=re.IGNORECASE)
    return stripped.strip() or text.strip()
