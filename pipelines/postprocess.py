"""What happens to every finished picture: the optional safety check and invisible watermark."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pipelines.watermark import watermark_payload

if TYPE_CHECKING:
    from PIL import Image


class Postprocess:
    """Safety check (flagged: blurred and labelled, never blacked out) and watermark.

    Parameters
    ----------
    safety_checker: None (off), a checker id or folder (loaded on first use) or a checker
        object (``pipelines.safety``).
    watermark: False (off), True (the invisible "SDV2" mark) or the payload text/bytes.
    device: where a checker loaded from an id runs.
    """

    def __init__(self, safety_checker: Any = None, watermark: Any = False, device: str = "cpu"):
        self.safety_checker = safety_checker  # setting; resolved to a checker on first use
        self.watermark = watermark_payload(watermark)  # bytes, or None when off
        self.device = device
        self._safety = None
        self._load_lock = threading.Lock()

    def __call__(self, image: Image.Image, params: dict[str, Any]) -> Image.Image:
        """The picture after the checks that are on; ``params`` records what they did. With
        both off it is ``image`` itself, untouched."""
        from pipelines import safety, watermark

        if self.safety_checker is not None:
            with self._load_lock:
                if self._safety is None:
                    self._safety = safety.resolve_checker(self.safety_checker, self.device)
            image = safety.apply_safety(self._safety, image, params)
        if self.watermark is not None:
            image = watermark.apply_watermark(image, params, self.watermark)
        return image
