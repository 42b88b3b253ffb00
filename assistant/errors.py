"""The assistant's own errors, and the table of every stable error code a user can meet.

:data:`ERROR_CODES` lists the codes of every stage (``AssistantError``, ``VoiceError``,
``ImageError``, ``TextInputError``, ``ConfigError``); the HTTP layer's own codes are in
``frontends.api_errors.API_ERROR_CODES``. ``tests/test_error_codes.py`` fails when a code is
raised anywhere in the source but listed in neither table.
"""

from __future__ import annotations

# Every code a turn can end with, and what it means; front ends and the API show these.
ERROR_CODES: dict[str, str] = {
    "input-invalid": "the request was empty, too long, or otherwise unusable",
    "config-invalid": "a configuration value was refused (the message names the key and the "
    "allowed values)",
    "audio-invalid": "the audio could not be read (corrupt, empty, or an unknown format)",
    "audio-too-long": "the recording is longer than asr.max_seconds",
    "asr-no-speech": "the audio held no speech (silence, noise, or a known hallucination)",
    "asr-failed": "speech recognition failed",
    "asr-cancelled": "the transcription was stopped because its caller left",
    "language-unsupported": "a typed request in another language, and no translator is set up",
    "translation-failed": "a typed request in another language could not be translated",
    "model-missing": "a configured model could not be found or loaded",
    "no-image": "the request needs a current image and there is none yet",
    "nothing-to-undo": "undo or redo has nothing to move to",
    "image-too-large": "an uploaded picture has more pixels than api.max_image_pixels (refused "
    "before it is decoded)",
    "budget-exceeded": "the picture(s) asked for would cost more than api.cost_budget allows on "
    "this device (width x height x steps x images)",
    "image-oom": "the device ran out of memory while generating",
    "image-cancelled": "the image was cancelled",
    "image-failed": "the image engine failed",
    "tts-failed": "speech synthesis failed (the reply text is still shown)",
    "audio-device-missing": "the configured microphone or speaker is not there (voice.*_device)",
    "audio-device-failed": "the audio device stopped delivering sound",
    "internal-error": "an unexpected failure; the session is kept",
}


class AssistantError(Exception):
    """A failure of the dialogue stage that the user can act on."""

    def __init__(self, code: str, message: str):
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
