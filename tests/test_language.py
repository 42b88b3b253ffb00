"""Other languages: which one a request is in, English for the prompt, replies in the person's.

What a person would check: a German request draws what they asked for, the reply (text and
voice) is German, an English request is never mistaken for another language, and a typed
request the assistant cannot translate is refused in the person's language with what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.controller import UserInput
from assistant.errors import AssistantError
from assistant.events import EventType
from assistant.i18n import LOCALES, reply_languages, t
from assistant.language import detect_language
from assistant.translate import LLMTranslator, translation_problem
from benchmarks.casual_requests import REQUESTS
from benchmarks.foreign_requests import FOREIGN_REQUESTS

ENGLISH_COMMANDS = [
    "undo",
    "again",
    "ok",
    "um",
    "hello",
    "thanks",
    "bigger",
    "save it",
    "never mind",
    "make it darker",
    "three more like that",
    "the blue one",
    "what prompt did you use",
    "extend it to the left by 200 pixels",
    "same seed but with a dog",
    "a piano",
    "pizza",
    "a portrait of Angela Merkel in Berlin",
    "a croissant and espresso in Paris",
]


# --- detection -----------------------------------------------------------------------------
@pytest.mark.parametrize("text", [r[0] for r in REQUESTS] + ENGLISH_COMMANDS)
def test_english_requests_stay_english(text):
    assert detect_language(text).language == "en"


@pytest.mark.parametrize(("language", "text", "_"), FOREIGN_REQUESTS)
def test_other_languages_are_recognised(language, text, _):
    assert detect_language(text).language == language


# --- catalogs ------------------------------------------------------------------------------
def _marked_messages() -> set[str]:
    """Every sentence the code marks for translation (``t(lang, "...")`` and ``N_("...")``)."""
    from babel.messages.extract import extract_from_file

    found = set()
    for path in Path("assistant").glob("*.py"):
        for _, message, _, _ in extract_from_file(
            "python", str(path), keywords={"t": (2,), "N_": None}
        ):
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_reply_is_translated_in_every_catalog_with_its_placeholders():
    from babel.messages.pofile import read_po

    marked = _marked_messages()
    assert len(marked) > 40 and "Okay." in marked
    assert set(reply_languages()) >= {"en", "de", "fr", "es", "it", "pt"}
    for path in sorted(LOCALES.glob("*.po")):
        with path.open("rb") as f:
            catalog = {m.id: m.string for m in read_po(f) if m.id}
        assert set(catalog) == marked, f"{path.name}: missing {marked - set(catalog)}"
        for msgid, text in catalog.items():
            assert text, f"{path.name}: {msgid!r} is untranslated"
            wanted = set(re.findall(r"{\w+}", msgid))
            assert set(re.findall(r"{\w+}", text)) == wanted, f"{path.name}: {msgid!r}"


def test_a_language_without_a_catalog_answers_in_english():
    assert t("nl", "Okay, never mind.") == "Okay, never mind."
    assert t("de", "Okay, never mind.") == "Okay, schon gut."


def test_reply_language_setting_is_checked(tiny_config):
    from assistant.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="reply_language"):
        load_config(profile="tiny", environ={}, overrides=[("reply_language", "xx")])
    fixed = load_config(profile="tiny", environ={}, overrides=[("reply_language", "fr")])
    assert fixed.reply_language == "fr"


# --- the translator's checks ----------------------------------------------------------------
def scripted(answer):
    def complete(prompt: str) -> str:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return complete


def test_a_good_translation_is_taken():
    result = LLMTranslator(scripted(" a red dragon over a castle\n"))(
        "ein roter Drache über einer Burg", "de"
    )
    assert result.text == "a red dragon over a castle" and result.language == "de"


@pytest.mark.parametrize(
    "answer",
    [
        "",  # nothing
        "ein roter Drache über einer Burg",  # copied back
        "un dragon rouge au-dessus d'un château fort",  # another language
        "dragon " * 40,  # a loop
        RuntimeError("out of memory"),  # the LLM crashed
    ],
)
def test_a_bad_translation_is_refused_in_the_persons_language(answer):
    translate = LLMTranslator(scripted(answer))
    with pytest.raises(AssistantError) as caught:
        translate("ein roter Drache über einer Burg", "de")
    assert caught.value.code == "translation-failed"
    assert translate.last_problem  # why, for the benchmark table and the log
    assert "Englische" in caught.value.message  # said in German


def test_numbers_must_survive_translation():
    assert translation_problem("drei Katzen, 3 Hüte", "three cats, hats") is not None
    assert translation_problem("drei Katzen, 3 Hüte", "three cats, 3 hats") is None


# --- whole turns ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def controller(tiny_config):
    from assistant.build import build_controller

    controller, _ = build_controller(tiny_config, with_asr=False)
    return controller


def run(controller, session, **kwargs):
    return list(controller.run_turn(session, UserInput(**kwargs)))


def of(events, kind):
    return [e.data for e in events if e.type == kind]


def test_typed_german_without_a_translator_is_refused_in_german(controller):
    session = controller.new_session()
    events = run(controller, session, text="zeichne einen Leuchtturm auf einer Klippe bei Nacht")
    assert of(events, EventType.TURN_END)[0]["code"] == "language-unsupported"
    (reply,) = of(events, EventType.REPLY)
    assert reply["language"] == "de" and reply["text"].startswith("Getippte Anfragen")
    assert not session.state.nodes

    events = run(controller, session, text="draw a lighthouse on a cliff at night")
    (reply,) = of(events, EventType.REPLY)
    assert reply["language"] == "en" and reply["text"].startswith("Here's")


def test_typed_german_is_translated_drawn_and_answered_in_german(controller, monkeypatch):
    session = controller.new_session()
    monkeypatch.setattr(
        controller, "translator", LLMTranslator(scripted("a red dragon over a castle, no people"))
    )
    events = run(controller, session, text="ein roter Drache über einer Burg, ohne Menschen")
    (translation,) = of(events, EventType.TRANSLATION)
    assert translation["language"] == "de" and translation["text"].startswith("a red dragon")
    (image,) = of(events, EventType.IMAGE_DONE)
    assert "red dragon over a castle" in image["prompt"] and "people" in image["negative_prompt"]
    (reply,) = of(events, EventType.REPLY)
    assert reply["text"].startswith("Hier ist dein Bild: ein roter Drache")
    (voice,) = of(events, EventType.TTS_START)
    assert "espeak" in voice["engine"]  # the English Piper voice does not read German
    assert of(events, EventType.TTS_END)[0]["seconds"] > 0.5

    # A short command keeps the conversation's language; the grammar reads it in English.
    events = run(controller, session, text="undo")
    assert of(events, EventType.REPLY)[0]["text"] == "Zurück zum Anfang, kein Bild zu sehen. " + (
        "Was soll ich zeichnen?"
    )

    resumed = controller.resume(session.id)  # the language is part of the stored session
    assert resumed.language == "de"


def test_spoken_french_is_answered_in_french(controller, monkeypatch):
    from voice.asr import Transcript

    class FrenchSpeaker:  # what Whisper gives for "dessine un phare la nuit"
        def transcribe(self, audio, language=None, task=None):
            text = "draw a lighthouse at night" if task == "translate" else "dessine un phare"
            return Transcript(text, "fr", 0.9, 0.01, 2.0, 0.5)

    monkeypatch.setattr(controller, "asr", FrenchSpeaker())
    events = run(controller, controller.new_session(), audio=b"not used by the fake")
    (image,) = of(events, EventType.IMAGE_DONE)
    assert "lighthouse at night" in image["prompt"]
    (reply,) = of(events, EventType.REPLY)
    assert reply["language"] == "fr" and reply["text"].startswith("Voici votre image")


def test_a_tab_can_fix_the_reply_language(controller):
    session = controller.new_session()
    session.settings = {"reply_language": "fr"}  # the chat window's "Reply language" setting
    events = run(controller, session, text="draw a paper boat on a pond")
    (reply,) = of(events, EventType.REPLY)
    assert reply["language"] == "fr" and reply["text"].startswith("Voici votre image")
    events = run(controller, session, text="undo")
    assert of(events, EventType.REPLY)[0]["text"] == "Retour au début, aucune image affichée. " + (
        "Que dois-je dessiner ?"
    )
    session.settings = {}  # back to following the person
    events = run(controller, session, text="draw a paper boat on a pond")
    assert of(events, EventType.REPLY)[0]["language"] == "en"
