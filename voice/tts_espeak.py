"""espeak-ng text-to-speech through its command line: robotic but always there (the last resort)."""

from __future__ import annotations

import logging
import shutil
import subprocess

import numpy as np

from voice.errors import VoiceError
from voice.tts_audio import SpeechAudio, decode_wav_pcm16
from voice.tts_base import SentenceSynthesizer

logger = logging.getLogger(__name__)

ESPEAK_BINARY = "espeak-ng"
DEFAULT_WPM = 170  # words per minute, espeak-ng's own default pace
MIN_WPM = 80  # espeak-ng's slowest rate, words per minute
MAX_WPM = 450  # fast enough for anyone, words per minute
ESPEAK_TIMEOUT_S = 60.0  # one sentence never takes this long; a stuck process is killed


class EspeakTTS(SentenceSynthesizer):
    """Speak with ``espeak-ng --stdout``, one process per sentence.

    Parameters
    ----------
    voice:
        An espeak-ng voice name (``espeak-ng --voices`` lists them), e.g. ``en-us``.
    speed_wpm:
        Speaking rate in words per minute.

    Raises
    ------
    VoiceError
        ``model-missing`` when espeak-ng is not installed or lacks the voice.
    """

    def __init__(self, voice: str = "en-us", speed_wpm: int = DEFAULT_WPM) -> None:
        super().__init__()
        binary = shutil.which(ESPEAK_BINARY)
        if binary is None:
            raise VoiceError(
                "model-missing",
                "espeak-ng is not installed: install it (Debian/Ubuntu: "
                "`apt-get install espeak-ng`) or set `tts.engine` to `piper`.",
            )
        self._binary = binary
        self.voice = voice
        self.speed_wpm = int(min(max(speed_wpm, MIN_WPM), MAX_WPM))
        self.name = f"espeak-ng:{voice}"
        # Speaking one word checks the voice and tells the sample rate (22050 Hz, 16000 for mbrola).
        try:
            probe = self._run("a")
        except VoiceError as e:
            raise VoiceError(
                "model-missing",
                f"espeak-ng cannot speak with voice {voice!r}: set `tts.voice` to a name from "
                "`espeak-ng --voices` (e.g. en-us).",
            ) from e
        self.sample_rate = probe.sample_rate

    def _run(self, text: str) -> SpeechAudio:
        """Run espeak-ng on ``text`` (given on stdin, so it is never read as an option)."""
        command = [self._binary, "--stdout", "-v", self.voice, "-s", str(self.speed_wpm)]
        try:
            done = subprocess.run(
                command,
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=ESPEAK_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise VoiceError("tts-failed", f"espeak-ng did not run: {e}") from e
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip()
            raise VoiceError("tts-failed", f"espeak-ng exited with {done.returncode}: {message}")
        try:
            return decode_wav_pcm16(done.stdout)
        except ValueError as e:
            raise VoiceError("tts-failed", f"espeak-ng wrote no usable WAV: {e}") from e

    def _render(self, sentence: str) -> np.ndarray:
        return self._run(sentence).samples
