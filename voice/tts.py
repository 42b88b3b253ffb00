"""Text-to-speech: one interface, four engines, chosen by config.

``build_tts(engine, voice, speed)`` returns a ``TextToSpeech``:

- ``hibari``: the packaged "heart" voice (ONNX, Apache-2.0, no espeak): the default engine;
- ``piper``: natural ONNX voice, the packaged Joe voice by default (piper-tts is GPL-3.0);
- ``coqui``: any Coqui TTS model, by catalogue name or from a local checkpoint;
- ``espeak``: espeak-ng, robotic but always there.

Every engine speaks sentence by sentence (``stream``), so playback can start
before the whole reply is rendered. If the chosen engine cannot load, the
builder tries that engine's own packaged voice, then hibari, Piper and espeak-ng,
so the user still hears a reply. Heavy libraries (torch, TTS, piper, onnxruntime)
are imported only when an engine loads.
"""

from __future__ import annotations

import logging
from pathlib import Path

from voice.errors import VoiceError
from voice.tts_audio import SpeechAudio, decode_wav_pcm16
from voice.tts_base import SentenceSynthesizer, TextToSpeech
from voice.tts_coqui import DEFAULT_COQUI_MODEL, CoquiTTS
from voice.tts_espeak import DEFAULT_WPM, EspeakTTS
from voice.tts_hibari import HibariTTS
from voice.tts_piper import PiperTTS
from voice.tts_text import split_sentences

__all__ = [
    "DEFAULT_COQUI_MODEL",
    "ENGINES",
    "CoquiTTS",
    "EspeakTTS",
    "HibariTTS",
    "PiperTTS",
    "SentenceSynthesizer",
    "SpeechAudio",
    "TextToSpeech",
    "VoiceError",
    "build_tts",
    "decode_wav_pcm16",
    "split_sentences",
]

logger = logging.getLogger(__name__)

ENGINES = ("hibari", "piper", "coqui", "espeak")
DEFAULT_ENGINE = "hibari"  # GPL-free and ahead of Piper on `bench tts` (docs/BENCHMARKS.md)
_ALIASES = {
    "espeak-ng": "espeak",
    "coqui-tts": "coqui",
    "piper-tts": "piper",
    "hibari-tts": "hibari",
}
_FALLBACK_ORDER = ("hibari", "piper", "espeak")
_COQUI_PATH_HINTS = (".pth", ".pt", ".tar", ".json")


def build_tts(
    engine: str,
    voice: str | None = None,
    speed: float = 1.0,
    device: str = "cpu",
    fallback: bool = True,
) -> TextToSpeech:
    """Load the configured text-to-speech engine.

    Parameters
    ----------
    engine:
        ``hibari``, ``piper``, ``coqui`` or ``espeak`` (setting ``tts.engine``).
    voice:
        Engine-specific voice (setting ``tts.voice``): a hibari voice name (``heart``) or
        ``.onnx`` path; a Piper ``.onnx`` path; a Coqui
        model name or a local checkpoint / folder with ``config.json``; an espeak-ng
        voice name. ``None`` takes the engine's default.
    speed:
        Speaking-rate multiplier, 1.0 = the voice's own pace.
    device:
        Torch device for Coqui (``cpu``, ``cuda``, ``mps``, ``auto``); Piper and
        espeak-ng run on the CPU.
    fallback:
        If the engine cannot load, log a warning and try the engine's own default voice,
        then hibari's, Piper's and espeak-ng's. ``False`` raises the engine's error instead.

    Returns
    -------
    TextToSpeech
        A loaded engine; ``.name`` says which one, when a fallback was taken.

    Raises
    ------
    VoiceError
        ``input-invalid`` for an unknown engine; otherwise the first engine's error
        (``model-missing`` or ``tts-failed``) when nothing could load.
    """
    wanted = _ALIASES.get(engine.strip().lower(), engine.strip().lower())
    if wanted not in ENGINES:
        raise VoiceError(
            "input-invalid",
            f"Unknown text-to-speech engine {engine!r}: set `tts.engine` to one of {ENGINES}.",
        )
    attempts = [(wanted, voice)]
    if fallback:
        # The engine's own packaged voice first (a wrong Piper path still speaks as Piper).
        order = sorted(_FALLBACK_ORDER, key=lambda name: name != wanted)
        attempts += [(name, None) for name in order if (name, None) != (wanted, voice)]

    first_error: VoiceError | None = None
    for index, (name, engine_voice) in enumerate(attempts):
        try:
            tts = _load(name, engine_voice, speed, device)
        except VoiceError as e:
            if not fallback:
                raise
            first_error = first_error or e
            logger.warning("Text-to-speech engine %s could not load (%s): %s", name, e.code, e)
            continue
        if index > 0:
            logger.warning("Speaking with %s instead of the configured %s", tts.name, wanted)
        return tts
    assert first_error is not None
    raise VoiceError(
        first_error.code,
        f"{first_error.message} No fallback voice could load either (tried {_FALLBACK_ORDER}).",
    ) from first_error


def _load(engine: str, voice: str | None, speed: float, device: str) -> TextToSpeech:
    """Load one engine, mapping the generic ``voice`` and ``speed`` to its own arguments."""
    if engine == "hibari":
        return HibariTTS(voice=voice, speed=speed)
    if engine == "piper":
        return PiperTTS(model_path=voice, speed=speed)
    if engine == "espeak":
        return EspeakTTS(voice=voice or "en-us", speed_wpm=round(DEFAULT_WPM * speed))
    if voice is not None and _looks_like_path(voice):
        return CoquiTTS(model_path=voice, device=device, speed=speed)
    return CoquiTTS(model_name=voice, device=device, speed=speed)


def _looks_like_path(voice: str) -> bool:
    """Return True if a Coqui voice exists on disk or is written like a path, not a name."""
    path = Path(voice).expanduser()
    return (
        path.exists()
        or voice.startswith(("/", ".", "~"))
        or voice.endswith(_COQUI_PATH_HINTS)
        or "\\" in voice
    )
