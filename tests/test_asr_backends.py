"""The two ASR backends (openai-whisper, faster-whisper) on the packaged Whisper base weights.

What a user checks: switching ``asr.backend`` keeps what they said (same content words),
silence is still refused, a typo in ``asr.backend`` names the setting, and asking for
``task="translate"`` per call works.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.speech import say
from voice.asr import Recognition, build_asr, load_asr, normalize_text
from voice.asr_whisper import WhisperASR
from voice.audio import SAMPLE_RATE
from voice.errors import VoiceError

pytest.importorskip("faster_whisper")

from voice.asr_faster import FasterWhisperASR, packaged_ct2_dir  # noqa: E402

REQUEST = "Draw a lighthouse on a cliff at night"
CONTENT_WORDS = ("lighthouse", "cliff", "night")
GERMAN_REQUEST = "Zeichne einen Leuchtturm auf einer Klippe in der Nacht."  # espeak-ng -v de
CT2_CACHE_HIT_MAX_S = 1.0  # s; a cache hit reads a few stat()s and a small JSON


def _content_words(text: str) -> set[str]:
    lowered = text.lower()
    return {word for word in CONTENT_WORDS if word in lowered}


@pytest.fixture(scope="module")
def whisper_cache(data_dir: Path) -> Path:
    return data_dir / "whisper"


@pytest.fixture(scope="module")
def faster(whisper_cache: Path) -> FasterWhisperASR:
    return FasterWhisperASR("packaged:base", device="cpu", cache_dir=whisper_cache)


@pytest.fixture(scope="module")
def openai(whisper_cache: Path) -> WhisperASR:
    return WhisperASR("packaged:base", device="cpu", cache_dir=whisper_cache)


@pytest.fixture(scope="module")
def request_wav(tmp_path_factory) -> Path:
    return say(REQUEST, tmp_path_factory.mktemp("speech") / "request.wav")


# --------------------------------------------------------------------------- faster-whisper


def test_faster_whisper_transcribes_spoken_request(faster, request_wav):
    transcript = faster.transcribe(request_wav)

    assert _content_words(transcript.text) == set(CONTENT_WORDS), transcript.text
    assert transcript.language == "en"
    assert faster.compute_type == "int8"  # the CPU default
    assert 0.5 < transcript.confidence <= 1.0
    assert transcript.duration_s > 1.0 and transcript.elapsed_s > 0.0


def test_faster_whisper_silence_is_no_speech(faster):
    with pytest.raises(VoiceError) as err:
        faster.transcribe(np.zeros(2 * SAMPLE_RATE, np.float32))
    assert err.value.code == "asr-no-speech"


def test_faster_whisper_shares_the_hallucination_guard(faster, monkeypatch, request_wav):
    fake = Recognition("Thanks for watching!", "en", -0.2, 0.1, 1.0)
    monkeypatch.setattr(faster, "_recognize", lambda samples, **overrides: fake)
    with pytest.raises(VoiceError) as err:
        faster.transcribe(request_wav)
    assert err.value.code == "asr-no-speech"


def test_packaged_ct2_folder_is_joined_once(faster, whisper_cache):
    start = time.perf_counter()
    folder = packaged_ct2_dir(whisper_cache)  # built by the `faster` fixture
    elapsed = time.perf_counter() - start

    assert elapsed < CT2_CACHE_HIT_MAX_S, f"cache hit took {elapsed:.2f} s"
    assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"} <= {
        p.name for p in folder.iterdir()
    }
    assert not list(folder.parent.glob(f".{folder.name}.*"))  # no half-built leftovers


def test_pt_checkpoint_is_refused_by_faster_whisper(tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"not for ctranslate2")
    with pytest.raises(VoiceError) as err:
        FasterWhisperASR(checkpoint, cache_dir=tmp_path)
    assert err.value.code == "model-missing"
    assert "openai-whisper" in err.value.message


def test_faster_whisper_short_context_matches_its_full_window(faster, whisper_cache, tmp_path):
    full = FasterWhisperASR("packaged:base", cache_dir=whisper_cache, short_context=False)
    for i, text in enumerate(("Make it darker", "Undo that", REQUEST)):
        wav = say(text, tmp_path / f"request-{i}.wav")

        short, whole = faster.transcribe(wav), full.transcribe(wav)

        assert normalize_text(short.text) == normalize_text(whole.text), (short.text, whole.text)
        assert short.language == "en"  # detected from the short context's own features


def test_faster_whisper_cuts_a_looping_tail(faster, monkeypatch, request_wav):
    # A loop CTranslate2 could not stop: "X. X. X" cut off by the token budget.
    real_generate = faster.model.model.generate

    def looping_generate(encoded, prompts, **kwargs):
        result = real_generate(encoded, prompts, **kwargs)[0]
        tokens = list(result.sequences_ids[0])
        fake = type("R", (), {})()
        fake.sequences_ids = [tokens + tokens + tokens[:3]]
        fake.scores, fake.no_speech_prob = result.scores, result.no_speech_prob
        return [fake]

    monkeypatch.setattr(faster.model, "model", _Proxy(faster.model.model, looping_generate))
    heard = faster.transcribe(request_wav).text

    assert heard.lower().count("lighthouse") == 1, heard


class _Proxy:
    """A CTranslate2 model whose ``generate`` is replaced (its own attributes are read-only)."""

    def __init__(self, model, generate):
        self._model, self.generate = model, generate

    def __getattr__(self, name):
        return getattr(self._model, name)


# --------------------------------------------------------------------------- both backends


def test_backends_agree_on_content_words(faster, openai, request_wav):
    heard_fast = faster.transcribe(request_wav).text
    heard_torch = openai.transcribe(request_wav).text

    assert _content_words(heard_fast) == _content_words(heard_torch) == set(CONTENT_WORDS), (
        heard_fast,
        heard_torch,
    )


@pytest.mark.parametrize("backend", ["faster", "openai"])
def test_per_call_language_and_task(backend, request, request_wav):
    asr = request.getfixturevalue(backend)
    transcript = asr.transcribe(request_wav, language="en", task="translate")

    assert transcript.language == "en"
    assert _content_words(transcript.text) == set(CONTENT_WORDS), transcript.text
    with pytest.raises(VoiceError) as err:
        asr.transcribe(request_wav, task="summarize")
    assert err.value.code == "input-invalid"


# Measured 2026-11-22 with Whisper base on espeak-ng German (robotic): transcription was
# half right ("Zeichen einen Lurchtum auf einer Klippe in den 8."), translation was not
# ("and then I will show you a clip of the 8th." / "and then you can turn on your
# keyboard."). Real German speech should do better; robotic German is not enough.
@pytest.mark.xfail(
    reason="Whisper base does not understand espeak-ng German well enough to translate it",
    strict=False,
)
@pytest.mark.parametrize("backend", ["faster", "openai"])
def test_translate_robotic_german_to_english(backend, request, tmp_path):
    asr = request.getfixturevalue(backend)
    german = say(GERMAN_REQUEST, tmp_path / "de.wav", voice="espeak", language="de")

    transcript = asr.transcribe(german, task="translate")

    assert "lighthouse" in transcript.text.lower(), transcript.text


# --------------------------------------------------------------------------- factory


def test_factory_picks_backend_by_name(whisper_cache, caplog):
    fast = build_asr("faster-whisper", cache_dir=whisper_cache, compute_type="float32")
    assert isinstance(fast, FasterWhisperASR) and fast.compute_type == "float32"

    torch_asr = build_asr("openai-whisper", cache_dir=whisper_cache, compute_type="int8")
    assert isinstance(torch_asr, WhisperASR)
    assert "compute_type" in caplog.text  # dropped with a warning, not a crash


def test_load_asr_drops_the_other_backends_settings(whisper_cache, caplog):
    fast = load_asr("Faster_Whisper", cache_dir=whisper_cache, context_margin_frames=10)
    assert isinstance(fast, FasterWhisperASR)
    assert "context_margin_frames" in caplog.text


def test_backends_do_not_import_the_factory():
    code = "import sys, voice.asr_faster, voice.asr_whisper; print('voice.asr' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False"  # no asr.py <-> backend import loop


def test_unknown_backend_names_the_setting():
    with pytest.raises(VoiceError) as err:
        build_asr("whisper.cpp")
    assert err.value.code == "input-invalid"
    assert "asr.backend" in err.value.message
    assert "faster-whisper" in err.value.message
