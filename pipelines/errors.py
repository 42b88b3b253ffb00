"""Errors of the image stage. Each carries a stable code that front ends show and tests assert."""


class ImageError(Exception):
    """The image engine refused a request or failed in a way the user can act on.

    Codes: ``input-invalid`` (bad size, steps, strength, image), ``image-oom``,
    ``image-cancelled``, ``model-missing``, ``image-failed``.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
