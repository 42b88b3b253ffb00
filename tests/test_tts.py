"""Text-to-speech: what a user hears from each engine, and how failures read.

Runs offline: hibari and Piper use their packaged voices (heart, Joe), Coqui a tiny
random VITS built into a temp folder, espeak-ng the Debian binary. Nothing is downloaded.
"""

from __future__ import annotations

import re
import shutil
import struct
import time

import numpy as np
import pytest
import soundfile as sf

from voice.errors import VoiceError
from voice.tts import (
    DEFAULT_ENGINE,
    CoquiTTS,
    EspeakTTS,
    HibariTTS,
    PiperTTS,
    SpeechAudio,
    TextToSpeech,
    build_tts,
    decode_wav_pcm16,
    split_sentences,
)
from voice.tts_text import MAX_SENTENCE_CHARS

SILENCE_FLOOR_DBFS = -35.0  # speech RMS must be above this; digital silence is -inf
PIPER_RATE_HZ = 22050  # the Joe voice's sample rate
HIBARI_RATE_HZ = 24000  # the heart voice's sample rate
LIGHTHOUSE = "Here is your lighthouse at night."
REPLY = (
    "Here is your lighthouse at night. I made the sky a deep blue, with a few stars. "
    "Would you like a storm instead?"
)
UNAVAILABLE_COQUI_MODEL = "tts_models/en/ljspeech/vits"  # real catalogue name, not cached here
FAIL_FAST_S = 10.0  # a missing model must be reported within this many seconds


def ac_dbfs(samples: np.ndarray) -> float:
    """RMS around the mean, in dB relative to full scale, so a constant offset counts as silence."""
    centred = samples.astype(np.float64) - float(np.mean(samples))
    return 20.0 * np.log10(np.sqrt(np.mean(centred**2)) + 1e-12)


def read_wav(path) -> tuple[np.ndarray, int, sf._SoundFileInfo]:
    samples, rate = sf.read(path, dtype="float32")
    return samples, rate, sf.info(path)


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    return PiperTTS()


@pytest.fixture(scope="module")
def hibari() -> HibariTTS:
    return HibariTTS()


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory) -> tuple:
    from voice.coqui_local import build_tiny_vits

    folder = tmp_path_factory.mktemp("tiny-vits")
    checkpoint, config = build_tiny_vits(folder)
    return folder, checkpoint, config


@pytest.fixture
def offline_coqui(monkeypatch, tmp_path):
    """Return an empty Coqui model folder; downloads are off and Coqui's downloader trips."""
    from TTS.utils.manage import ModelManager

    def no_download(*args, **kwargs):
        raise AssertionError("Coqui tried to download a model in a test")

    home = tmp_path / "tts-home"
    monkeypatch.setenv("TTS_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(ModelManager, "create_dir_and_download_model", no_download)
    return home / "tts"


# --- Piper ---------------------------------------------------------------------------------------


def test_piper_speaks_a_sentence_to_a_valid_wav(piper, tmp_path):
    audio = piper.synthesize(LIGHTHOUSE)
    path = audio.write_wav(tmp_path / "lighthouse.wav")

    samples, rate, info = read_wav(path)
    assert rate == PIPER_RATE_HZ == piper.sample_rate
    assert info.channels == 1 and info.subtype == "PCM_16"
    assert 1.0 <= len(samples) / rate <= 6.0
    assert ac_dbfs(samples) > SILENCE_FLOOR_DBFS


def test_piper_returns_float32_mono_in_range(piper):
    audio = piper.synthesize(LIGHTHOUSE)
    assert isinstance(piper, TextToSpeech)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert np.all(np.abs(audio.samples) <= 1.0) and np.all(np.isfinite(audio.samples))
    assert audio.seconds == pytest.approx(len(audio.samples) / PIPER_RATE_HZ)


def test_stream_yields_one_chunk_per_sentence_and_the_first_comes_early(piper):
    start = time.perf_counter()
    chunks = piper.stream(REPLY)
    first = next(chunks)
    first_after_s = time.perf_counter() - start
    rest = list(chunks)
    all_after_s = time.perf_counter() - start

    assert len([first, *rest]) == 3
    whole = SpeechAudio.concatenate([first, *rest])
    assert first.seconds < 0.6 * whole.seconds
    assert first_after_s < all_after_s
    assert all(ac_dbfs(chunk.samples) > SILENCE_FLOOR_DBFS for chunk in [first, *rest])


def test_faster_speed_gives_shorter_speech(piper):
    fast = PiperTTS(speed=2.0)
    normal_s = piper.synthesize(LIGHTHOUSE).seconds
    assert fast.synthesize(LIGHTHOUSE).seconds < 0.75 * normal_s


def test_long_text_is_spoken_in_many_chunks(piper):
    long_reply = " ".join(["The lamp turns slowly over the dark water, and the waves answer"] * 6)
    sentences = split_sentences(long_reply)
    assert len(sentences) > 1 and all(len(s) <= MAX_SENTENCE_CHARS for s in sentences)
    assert len(list(piper.stream(long_reply))) == len(sentences)


def test_a_synthesis_failure_is_tts_failed_with_its_cause(piper, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr(piper._voice, "synthesize", broken)
    with pytest.raises(VoiceError) as caught:
        piper.synthesize(LIGHTHOUSE)
    assert caught.value.code == "tts-failed"
    assert isinstance(caught.value.__cause__, RuntimeError)


# --- hibari (the default voice) -----------------------------------------------------------------


def test_the_default_engine_is_the_gpl_free_hibari_voice():
    from assistant.config import load_config

    assert DEFAULT_ENGINE == "hibari" == load_config(environ={}).tts.engine
    tts = build_tts(DEFAULT_ENGINE, fallback=False)
    assert isinstance(tts, HibariTTS) and tts.name == "hibari:heart"


def test_hibari_speaks_a_sentence_to_a_valid_wav(hibari, tmp_path):
    path = hibari.synthesize(LIGHTHOUSE).write_wav(tmp_path / "lighthouse.wav")

    samples, rate, info = read_wav(path)
    assert rate == HIBARI_RATE_HZ == hibari.sample_rate
    assert info.channels == 1 and info.subtype == "PCM_16"
    assert 1.0 <= len(samples) / rate <= 6.0
    assert ac_dbfs(samples) > SILENCE_FLOOR_DBFS
    assert isinstance(hibari, TextToSpeech)


def test_hibari_streams_one_chunk_per_sentence(hibari):
    chunks = list(hibari.stream(REPLY))
    assert len(chunks) == 3
    assert all(c.sample_rate == HIBARI_RATE_HZ for c in chunks)
    assert all(ac_dbfs(c.samples) > SILENCE_FLOOR_DBFS for c in chunks)


def test_hibari_same_seed_same_audio_and_faster_speed_is_shorter(hibari):
    again = hibari.synthesize(LIGHTHOUSE).samples
    np.testing.assert_array_equal(hibari.synthesize(LIGHTHOUSE).samples, again)
    fast = HibariTTS(speed=2.0)
    assert fast.synthesize(LIGHTHOUSE).seconds < 0.75 * hibari.synthesize(LIGHTHOUSE).seconds


def test_hibari_voice_outside_the_package_is_model_missing_without_download(monkeypatch):
    import urllib.request

    def no_download(*args, **kwargs):
        raise AssertionError("hibari tried to download a voice")

    monkeypatch.setattr(urllib.request, "urlopen", no_download)
    start = time.perf_counter()
    with pytest.raises(VoiceError) as caught:
        build_tts("hibari", voice="emma", fallback=False)
    assert time.perf_counter() - start < FAIL_FAST_S
    assert caught.value.code == "model-missing" and "tts.voice" in caught.value.message
    assert "heart" in caught.value.message


def test_a_hibari_failure_is_tts_failed_with_its_cause(hibari, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr(hibari._model, "from_ids", broken)
    with pytest.raises(VoiceError) as caught:
        hibari.synthesize(LIGHTHOUSE)
    assert caught.value.code == "tts-failed"
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.fixture(scope="module")
def whisper(data_dir):
    from voice.asr import build_asr

    return build_asr(
        "openai-whisper", model="packaged:base", device="cpu", cache_dir=data_dir / "whisper"
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["hibari", "piper"])
def test_whisper_hears_the_words_each_packaged_voice_says(engine, whisper):
    from voice.audio import SAMPLE_RATE, load_audio

    speech = build_tts(engine, fallback=False).synthesize(REPLY)
    heard = whisper.transcribe(load_audio((speech.sample_rate, speech.samples), SAMPLE_RATE))
    words = set(re.findall(r"[a-z]+", heard.text.lower()))
    assert {"lighthouse", "night", "sky", "blue", "stars", "storm"} <= words, heard.text


# --- Coqui ---------------------------------------------------------------------------------------


def test_coqui_speaks_with_a_local_vits_folder(tiny_vits, tmp_path):
    folder, checkpoint, _ = tiny_vits
    tts = build_tts("coqui", voice=str(folder), fallback=False)
    assert isinstance(tts, CoquiTTS)

    path = tts.synthesize(LIGHTHOUSE).write_wav(tmp_path / "coqui.wav")
    samples, rate, info = read_wav(path)
    assert rate == tts.sample_rate == 22050 and info.channels == 1
    assert len(samples) / rate > 0.1
    assert ac_dbfs(samples) > SILENCE_FLOOR_DBFS

    by_checkpoint = build_tts("coqui", voice=str(checkpoint), fallback=False)
    assert len(list(by_checkpoint.stream(REPLY))) == 3


def test_coqui_model_name_loads_from_the_local_cache_offline(offline_coqui):
    from voice.coqui_local import build_tiny_vits

    build_tiny_vits(offline_coqui / UNAVAILABLE_COQUI_MODEL.replace("/", "--"))
    tts = build_tts("coqui", voice=UNAVAILABLE_COQUI_MODEL, fallback=False)
    assert isinstance(tts, CoquiTTS) and tts.name == f"coqui:{UNAVAILABLE_COQUI_MODEL}"
    assert ac_dbfs(tts.synthesize(LIGHTHOUSE).samples) > SILENCE_FLOOR_DBFS


def test_coqui_unavailable_model_name_is_model_missing_fast(offline_coqui):
    start = time.perf_counter()
    with pytest.raises(VoiceError) as caught:
        build_tts("coqui", voice=UNAVAILABLE_COQUI_MODEL, fallback=False)
    assert time.perf_counter() - start < FAIL_FAST_S
    assert caught.value.code == "model-missing"
    assert "tts.engine" in caught.value.message and "tts.voice" in caught.value.message


def test_coqui_unreachable_host_is_model_missing_without_download(offline_coqui, monkeypatch):
    import voice.tts_coqui

    monkeypatch.delenv("HF_HUB_OFFLINE")  # downloads allowed, but the host does not answer
    monkeypatch.setattr(voice.tts_coqui, "_host_reachable", lambda host, timeout_s=0: False)
    with pytest.raises(VoiceError) as caught:
        CoquiTTS(model_name=UNAVAILABLE_COQUI_MODEL)
    assert caught.value.code == "model-missing"
    assert "github.com" in caught.value.message


def test_coqui_unavailable_model_falls_back_to_the_default_voice(offline_coqui):
    tts = build_tts("coqui", voice=UNAVAILABLE_COQUI_MODEL, fallback=True)
    assert isinstance(tts, HibariTTS)
    assert ac_dbfs(tts.synthesize("Okay.").samples) > SILENCE_FLOOR_DBFS


@pytest.mark.parametrize(
    "voice", ["tts_models/en/nobody/vits", "not-a-model", "/no/such/model.pth"]
)
def test_coqui_unknown_name_or_path_is_model_missing(offline_coqui, voice):
    with pytest.raises(VoiceError) as caught:
        build_tts("coqui", voice=voice, fallback=False)
    assert caught.value.code == "model-missing"


# --- espeak-ng and the builder -------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_speaks(tmp_path):
    tts = build_tts("espeak", fallback=False)
    assert isinstance(tts, EspeakTTS)
    path = tts.synthesize(LIGHTHOUSE).write_wav(tmp_path / "espeak.wav")
    samples, rate, _ = read_wav(path)
    assert rate == tts.sample_rate
    assert 1.0 <= len(samples) / rate <= 6.0
    assert ac_dbfs(samples) > SILENCE_FLOOR_DBFS


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_unknown_voice_is_model_missing():
    with pytest.raises(VoiceError) as caught:
        EspeakTTS(voice="nosuchvoice")
    assert caught.value.code == "model-missing"


def test_missing_piper_voice_falls_back_to_the_packaged_voice(tmp_path):
    missing = str(tmp_path / "missing.onnx")
    with pytest.raises(VoiceError) as caught:
        build_tts("piper", voice=missing, fallback=False)
    assert caught.value.code == "model-missing" and "tts.voice" in caught.value.message

    tts = build_tts("piper", voice=missing)
    assert isinstance(tts, PiperTTS) and "joe" in tts.name


def test_unknown_engine_is_input_invalid():
    with pytest.raises(VoiceError) as caught:
        build_tts("festival")
    assert caught.value.code == "input-invalid" and "tts.engine" in caught.value.message


@pytest.mark.parametrize("text", ["", "   ", "?!"])
def test_empty_text_is_input_invalid(piper, text):
    for speak in (piper.synthesize, piper.stream):
        with pytest.raises(VoiceError) as caught:
            speak(text)
        assert caught.value.code == "input-invalid"


# --- text and audio helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Mr. Smith paid 3.5 dollars. Thanks!", ["Mr. Smith paid 3.5 dollars.", "Thanks!"]),
        ("Warm colours, e.g. Orange or red. Done.", ["Warm colours, e.g. Orange or red.", "Done."]),
        ("J. R. R. Tolkien wrote it. Wow!", ["J. R. R. Tolkien wrote it.", "Wow!"]),
        ('She said "Stop." Then left.', ['She said "Stop."', "Then left."]),
        ("Version 2.0 is out... maybe.", ["Version 2.0 is out... maybe."]),
        ("First line\nSecond line.", ["First line", "Second line."]),
        ("  ", []),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_int16_pcm_is_normalised_to_minus_one_plus_one():
    pcm = np.array([-32768, 0, 32767, 16384], dtype=np.int16)
    header_size = 0x7FFFFFFF  # what espeak-ng writes when it cannot seek back on a pipe
    wav = (
        b"RIFF" + struct.pack("<I", header_size) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16)
        + b"data" + struct.pack("<I", header_size) + pcm.tobytes()
    )  # fmt: skip
    audio = decode_wav_pcm16(wav)
    assert audio.sample_rate == 22050 and audio.samples.dtype == np.float32
    np.testing.assert_allclose(audio.samples, [-1.0, 0.0, 32767 / 32768, 0.5])

    round_trip = decode_wav_pcm16(SpeechAudio.from_float([-1.0, 0.5, 1.0], 16000).to_wav_bytes())
    np.testing.assert_allclose(round_trip.samples, [-1.0, 0.5, 1.0], atol=1 / 16384)
