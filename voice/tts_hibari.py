"""hibari text-to-speech: a small ONNX English voice with no espeak and no GPL (Apache-2.0).

The ``hibari-tts`` wheel ships one voice, "heart" (American English), distilled from
Kokoro's af_heart: a 7.9 MB ONNX model plus lexicons and a grapheme-to-phoneme net, run by
onnxruntime. Its other voices are downloaded from a hub on first use; this engine refuses
them up front, so nothing reaches for the network.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from voice.errors import VoiceError
from voice.tts_base import SentenceSynthesizer, check_speed

logger = logging.getLogger(__name__)

DEFAULT_HIBARI_VOICE = "heart"  # the voice inside the wheel
HIBARI_THREADS = 1  # onnxruntime threads: one core renders ~100x real time; two spin on a busy box


def packaged_hibari_voices() -> list[str]:
    """Names of the hibari voices inside the installed wheel (no download needed)."""
    from hibari.voices import VOICES

    return [name for name, info in VOICES.items() if info.get("bundled")]


class HibariTTS(SentenceSynthesizer):
    """Speak with a hibari voice, loaded once and warmed (lexicons, G2P, ONNX session).

    Parameters
    ----------
    voice:
        A packaged hibari voice name (``heart``), or a path to an ``.onnx`` file with the same
        inputs (e.g. a voice downloaded beforehand); ``None`` is ``heart``.
    speed:
        Speaking-rate multiplier, 1.0 = the voice's pace.
    seed:
        Seed of the voice's noise component; a fixed seed gives the same audio every call.

    Raises
    ------
    VoiceError
        ``model-missing`` if hibari is not installed or the voice is not in the wheel,
        ``tts-failed`` if it cannot load, ``input-invalid`` for a speed out of range.
    """

    def __init__(self, voice: str | None = None, speed: float = 1.0, seed: int | None = 0) -> None:
        super().__init__()
        self.speed = check_speed(speed)
        self._seed = seed
        voice = voice or DEFAULT_HIBARI_VOICE
        start = time.perf_counter()
        try:
            from hibari import SAMPLE_RATE, Hibari
        except ImportError as e:
            raise VoiceError(
                "model-missing",
                "The hibari voice is not installed: `pip install hibari-tts`, or set "
                "`tts.engine` to piper or espeak.",
            ) from e
        model_path = None
        if voice.endswith(".onnx"):
            model_path, voice_name = voice, DEFAULT_HIBARI_VOICE
        elif voice in packaged_hibari_voices():
            voice_name = voice
        else:
            raise VoiceError(
                "model-missing",
                f"hibari voice {voice!r} is not in the installed package (only "
                f"{packaged_hibari_voices()}; others would be downloaded). Set `tts.voice` to "
                "one of those, a hibari .onnx path, or leave it empty.",
            )
        try:
            self._model = Hibari(voice=voice_name, model=model_path, threads=HIBARI_THREADS)
            self._model("Ready.", speed=self.speed, seed=0)  # loads the G2P and lexicons now
        except Exception as e:
            raise VoiceError("tts-failed", f"hibari could not load voice {voice!r}: {e}") from e
        self.sample_rate = int(SAMPLE_RATE)
        self.name = f"hibari:{voice_name if model_path is None else model_path}"
        logger.info(
            "Loaded %s (%s Hz) in %.2f s", self.name, self.sample_rate, time.perf_counter() - start
        )

    def _render(self, sentence: str) -> np.ndarray:
        """Render one sentence; hibari cuts over-long ones at clause marks and joins them."""
        return self._model(sentence, speed=self.speed, seed=self._seed)
