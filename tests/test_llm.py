"""The packaged Gemma 270M, for real (slow: it loads in ~5 s and writes ~4 s per request).

What a person would check: the prompt it writes keeps every content word they said and puts
"no X" in the negative prompt; it stops at the end of its line; and a translation it cannot do
is refused with a code, never drawn and never a crash.
"""

from __future__ import annotations

import pytest

from assistant.errors import AssistantError
from assistant.rewrite import content_words
from assistant.translate import LLMTranslator
from benchmarks.casual_requests import REQUESTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rewriter(data_dir):
    from assistant.build import build_rewriter
    from assistant.config import load_config

    config = load_config(profile="offline", environ={}, overrides=[("data_dir", str(data_dir))])
    rewriter = build_rewriter(config, "cpu")
    assert rewriter.llm is not None and rewriter.llm.name == "packaged:gemma-3-270m"
    return rewriter


@pytest.mark.parametrize(("said", "keep", "avoid"), REQUESTS[:6])
def test_the_real_llm_keeps_every_word_said(rewriter, said, keep, avoid):
    result = rewriter.generate(said)
    assert set(keep) <= set(content_words(result.prompt))
    assert all(a in result.negative_prompt for a in avoid)
    assert "\n" not in result.prompt and "<start_of_image>" not in result.prompt


def test_the_real_llm_translation_is_english_or_refused(rewriter):
    translate = LLMTranslator(rewriter.llm.complete)
    for language, text in [("es", "hazlo más oscuro"), ("de", "ein roter Drache über einer Burg")]:
        try:
            english = translate(text, language).text
        except AssistantError as e:
            assert e.code == "translation-failed"
        else:
            assert english and english.isascii() and "<" not in english
