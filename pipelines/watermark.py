"""An optional invisible watermark, as the Stable Diffusion reference scripts put on every image.

``invisible-watermark`` (import name ``imwatermark``) hides a few bytes in the DWT-DCT
domain of the blue-difference channel ("dwtDct", the method of Stability's txt2img.py,
payload ``b"SDV2"``). The mark survives PNG save/load and mild JPEG; it does not survive
heavy resizing or cropping. The method needs images of at least 256x256 pixels: smaller
ones are left unmarked (``params["watermark"]`` says "skipped: too small").

Package: ``invisible-watermark==0.2.0`` installed with ``--no-deps`` plus ``PyWavelets``:
its metadata asks for ``opencv-python``, which would clash with the ``opencv-python-headless``
already installed (both provide ``cv2``); the headless build serves it fine.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

DEFAULT_PAYLOAD = b"SDV2"  # what the SD 2.x reference scripts embed
METHOD = "dwtDct"
MIN_PIXELS = 256 * 256  # imwatermark refuses smaller images
MAX_BIT_ERRORS = 2  # of 32: a random image matches this closely with odds below 1e-6


def watermark_payload(setting: bool | str | bytes | None) -> bytes | None:
    """Turn the ``watermark`` setting into the bytes to embed.

    Parameters
    ----------
    setting: False/None (off), True (``b"SDV2"``), or a text / bytes payload.

    Returns
    -------
    The payload, or None when watermarking is off.
    """
    if setting is None or setting is False:
        return None
    if setting is True:
        return DEFAULT_PAYLOAD
    payload = setting.encode("utf-8") if isinstance(setting, str) else bytes(setting)
    if not payload:
        raise ValueError("`watermark` payload is empty: use true, false or some text.")
    return payload


def _bgr(image: Image.Image):
    import numpy as np

    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def add_watermark(image: Image.Image, payload: bytes = DEFAULT_PAYLOAD) -> Image.Image:
    """Embed ``payload`` invisibly.

    Parameters
    ----------
    image: an RGB image of at least 256x256 pixels.
    payload: the bytes to hide (the detector must be given the same length).

    Returns
    -------
    A new RGB image.
    """
    from imwatermark import WatermarkEncoder
    from PIL import Image

    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", payload)
    marked = encoder.encode(_bgr(image), METHOD)
    return Image.fromarray(marked[:, :, ::-1].copy())


def detect_watermark(image: Image.Image, payload: bytes = DEFAULT_PAYLOAD) -> bool:
    """True when ``image`` carries ``payload`` (allowing ``MAX_BIT_ERRORS`` flipped bits).

    Parameters
    ----------
    image: the picture to inspect; too small ones (< 256x256) return False.
    payload: the expected bytes.

    Returns
    -------
    Whether the mark was found.
    """
    from imwatermark import WatermarkDecoder

    if image.width * image.height < MIN_PIXELS:
        return False
    n_bits = len(payload) * 8
    decoder = WatermarkDecoder("bits", n_bits)
    bits = decoder.decode(_bgr(image), METHOD)
    expected = [(byte >> (7 - i)) & 1 for byte in payload for i in range(8)]
    errors = sum(int(a) != b for a, b in zip(bits, expected, strict=True))
    return errors <= MAX_BIT_ERRORS


def apply_watermark(image: Image.Image, params: dict[str, Any], payload: bytes) -> Image.Image:
    """The engine's watermark step: mark ``image`` and record it in ``params["watermark"]``.

    Parameters
    ----------
    image: the finished image.
    params: its parameters; ``watermark`` is set to the payload text, or to why it was skipped.
    payload: the bytes to embed.

    Returns
    -------
    The marked image (or ``image`` unchanged when it is too small or the package is missing).
    """
    if image.width * image.height < MIN_PIXELS:
        params["watermark"] = "skipped: too small"
        return image
    try:
        marked = add_watermark(image, payload)
    except ImportError as e:
        logger.warning("Watermark is on but invisible-watermark is not installed: %s", e)
        params["watermark"] = "skipped: invisible-watermark missing"
        return image
    params["watermark"] = payload.decode("utf-8", errors="replace")
    return marked
