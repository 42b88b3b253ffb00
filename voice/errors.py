"""Errors of the voice stages. Each carries a stable code that front ends show and tests assert."""


class VoiceError(Exception):
    """A speech-recognition or speech-synthesis stage failed in a way the user can act on.

    Parameters
    ----------
    code:
        Stable machine-readable code, e.g. ``audio-invalid``, ``asr-no-speech``, ``tts-failed``.
    message:
        One or two sentences for a person: what was wrong and what to do.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
