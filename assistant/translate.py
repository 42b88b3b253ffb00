"""Typed requests in another language, turned into English by the LLM (spoken ones: Whisper).

Prompts are English because Stable Diffusion's text encoder is. The LLM continues a few-shot
pattern by one line, and what it writes is checked before anyone draws from it: not empty, no
longer than a translation can be, in English, not the request copied back, numbers kept.
Measured (docs/BENCHMARKS.md): the packaged Gemma 270M base model translated 2 of 12 requests
keeping their content words, so ``rewrite.translate_with_llm`` is off offline and the assistant
says, in the user's language, that typed requests need English or the voice; it is on in the
hub profile with an instruction-tuned model.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from assistant.errors import AssistantError
from assistant.i18n import N_, t
from assistant.language import detect_language, language_name
from assistant.llm_chat import ChatLLM, ChatMessages

logger = logging.getLogger(__name__)

TRANSLATE_FEW_SHOT = """Translate each request for a picture into English.

German: eine Katze, die auf einer Fensterbank sitzt
English: a cat sitting on a windowsill

French: un château dans les montagnes au coucher du soleil, sans nuages
English: a castle in the mountains at sunset, without clouds

Spanish: hazlo más oscuro
English: make it darker

{language}: {text}
English:"""

NOT_TRANSLATED = N_(
    "I couldn't translate that into English for the picture. Could you say it out loud, "
    "or type it in English?"
)


@dataclass(frozen=True)
class Translation:
    text: str  # English
    source_text: str
    language: str  # ISO 639-1 code of the source
    via: str  # "llm" or "whisper"
    seconds: float


TRANSLATE_SYSTEM = (
    "You translate requests for a picture into English. The user gives the language and the "
    "request. Answer with the English translation only, one line, keeping every detail."
)
# (language, request, English): the same turns as the few-shot text, as chat examples.
TRANSLATE_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    ("German", "eine Katze, die auf einer Fensterbank sitzt", "a cat sitting on a windowsill"),
    (
        "French",
        "un château dans les montagnes au coucher du soleil, sans nuages",
        "a castle in the mountains at sunset, without clouds",
    ),
    ("Spanish", "hazlo más oscuro", "make it darker"),
)


def translation_messages(language: str, text: str) -> ChatMessages:
    """The chat turns that ask for the English of ``text`` (in ``language``, a name)."""
    messages = [{"role": "system", "content": TRANSLATE_SYSTEM}]
    for example_language, example, english in TRANSLATE_EXAMPLES:
        messages.append({"role": "user", "content": f"{example_language}: {example}"})
        messages.append({"role": "assistant", "content": english})
    messages.append({"role": "user", "content": f"{language}: {text}"})
    return messages


class LLMTranslator:
    """English from a typed request in another language, or ``translation-failed``.

    Parameters
    ----------
    llm: a ``ChatLLM`` (asked with chat turns), or a plain function that continues a text by
        one line (given ``TRANSLATE_FEW_SHOT``; tests script it).
    max_tokens: most tokens of a translation.
    """

    def __init__(self, llm: ChatLLM | Callable[[str], str], max_tokens: int = 64):
        self.llm = llm
        self.max_tokens = max_tokens
        # The last answer and why it was refused (None: taken), as LLMPlanner keeps them.
        self.last_answer = ""
        self.last_problem: str | None = None

    def _ask(self, text: str, language: str) -> str:
        name = language_name(language)
        if isinstance(self.llm, ChatLLM):
            messages = translation_messages(name, text)
            return self.llm.chat(messages, max_tokens=self.max_tokens, stop=["\n"])
        return self.llm(TRANSLATE_FEW_SHOT.format(language=name, text=text))

    def __call__(self, text: str, language: str) -> Translation:
        start = time.perf_counter()
        try:
            raw = self._ask(text, language)
        except Exception as e:  # a crashed LLM is a failed translation, not a failed session
            logger.warning("The translating LLM failed: %s", e)
            raw = ""
        english = self.last_answer = _clean(raw)
        problem = self.last_problem = translation_problem(text, english)
        seconds = round(time.perf_counter() - start, 3)
        if problem:
            logger.info("Rejected translation %r of %r: %s", english, text, problem)
            raise AssistantError("translation-failed", t(language, NOT_TRANSLATED))
        return Translation(english, text, language, "llm", seconds)


def _clean(raw: str) -> str:
    line = raw.strip().split("\n", 1)[0]
    line = re.sub(r"^\s*english\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'“”«»").strip()


def translation_problem(source: str, english: str) -> str | None:
    """Why ``english`` cannot stand for ``source``, or None when it can."""
    if not english:
        return "empty"
    source_words, english_words = source.split(), english.split()
    if len(english_words) > 3 * len(source_words) + 3:
        return "too long for a translation"
    if english.casefold() == source.casefold():
        return "the request copied back"
    if detect_language(english).language != "en":
        return "not English"
    missing = set(re.findall(r"\d+", source)) - set(re.findall(r"\d+", english))
    if missing:
        return f"numbers lost: {sorted(missing)}"
    return None
