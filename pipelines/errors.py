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


def checked_choice(setting: str, value: object, choices: tuple[str, ...], default: str) -> str:
    """``value`` of a named-choice setting, trimmed and lower-cased (None: ``default``);
    ImageError("input-invalid") naming the setting and its choices when it is none of them."""
    name = default if value is None or value is False else str(value).strip().lower()
    if name not in choices:
        raise ImageError(
            "input-invalid", f"Unknown `{setting}` {value!r}: use one of {', '.join(choices)}."
        )
    return name
