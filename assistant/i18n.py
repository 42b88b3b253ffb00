"""Reply text in the user's language.

Catalogs are gettext ``.po`` files in ``assistant/locales/`` (one per language, read with Babel),
keyed by the English text itself, so the English in the code stays the readable source and a
missing translation falls back to it. ``t(lang, msgid, **params)`` looks a sentence up and fills
its ``{placeholders}``; ``N_(msgid)`` only marks a constant for extraction.
``tests/test_language.py`` extracts every marked string and fails when a catalog misses one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

LOCALES = Path(__file__).with_name("locales")
SOURCE_LANGUAGE = "en"


def N_(msgid: str) -> str:  # noqa: N802 (gettext's conventional name)
    """Mark ``msgid`` for translation where it is defined; ``t`` translates it where it's said."""
    return msgid


@cache
def _catalog(lang: str) -> dict[str, str]:
    from babel.messages.pofile import read_po  # noqa: PLC0415 (only when a language is used)

    path = LOCALES / f"{lang}.po"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang)
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}


def reply_languages() -> tuple[str, ...]:
    """Languages the assistant can answer in: English plus one per catalog."""
    return (SOURCE_LANGUAGE, *sorted(p.stem for p in LOCALES.glob("*.po")))


def t(lang: str | None, msgid: str, **params: object) -> str:
    """``msgid`` in ``lang`` (English when there is no translation), placeholders filled."""
    text = msgid
    if lang and lang != SOURCE_LANGUAGE:
        text = _catalog(lang).get(msgid, msgid)
    return text.format(**params) if params else text


def has_translation(lang: str | None, msgid: str) -> bool:
    return not lang or lang == SOURCE_LANGUAGE or msgid in _catalog(lang)
