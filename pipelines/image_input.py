"""Uploaded pictures: opened within a pixel limit, and fitted to what the engine can edit.

A 285 kB PNG can declare 10000x10000 pixels (a "decompression bomb": 300 MB once decoded,
seconds of CPU). :func:`open_upload` reads only the header first and refuses such a picture
before any pixel is decoded; it opens only the formats in :data:`UPLOAD_FORMATS` (Pillow's
EPS plugin, for one, would run Ghostscript). :func:`fit_upload` then turns what was decoded
into a picture the engine accepts (each side a multiple of 8 from ``MIN_SIDE`` to
``MAX_SIDE``, the aspect kept), so the size recorded for it is its real size.
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any

from pipelines.errors import ImageError
from pipelines.image_engine import MAX_SIDE, MIN_SIDE

logger = logging.getLogger(__name__)

MAX_UPLOAD_PIXELS = 50_000_000  # width x height; a 48 MP phone photo (8064x6048) still fits
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
TINY_SIDE = 16  # pixels; a smaller side holds too little to upscale into a picture
VAE_FACTOR = 8  # sides are multiples of this


def open_upload(data: bytes, field: str = "image", max_pixels: int = MAX_UPLOAD_PIXELS) -> Any:
    """Decode uploaded image bytes, refusing a picture above ``max_pixels`` before decoding.

    Parameters
    ----------
    data: the file's bytes.
    field: what the upload is called, for messages (``image``, ``mask``).
    max_pixels: the most pixels (width x height) accepted.

    Returns
    -------
    A fully loaded PIL image, turned upright when its EXIF says so (phone photos).

    Raises
    ------
    ImageError
        ``image-too-large`` above ``max_pixels`` (the message says the limit),
        ``input-invalid`` for empty bytes, a format not in :data:`UPLOAD_FORMATS`, or a
        damaged file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageError("input-invalid", f"The `{field}` upload is empty.")
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit and raises above twice that: ours comes first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS)  # the header only
            width, height = image.size
            if width * height > max_pixels:
                raise _too_large(field, width, height, max_pixels)
            image.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(
            "image-too-large",
            f"The `{field}` upload has too many pixels; the limit is "
            f"{_megapixels(max_pixels)} megapixels. Send a smaller picture.",
        ) from e
    except UnidentifiedImageError as e:
        raise ImageError(
            "input-invalid",
            f"The `{field}` upload is not a picture in a format accepted here "
            f"({', '.join(UPLOAD_FORMATS)}).",
        ) from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(
            "input-invalid",
            f"The `{field}` upload could not be read as a picture (damaged or cut short): {e}",
        ) from e
    return ImageOps.exif_transpose(image)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:g}"


def _too_large(field: str, width: int, height: int, max_pixels: int) -> ImageError:
    return ImageError(
        "image-too-large",
        f"The `{field}` upload is {width}x{height} pixels "
        f"({_megapixels(width * height)} megapixels); the limit is "
        f"{_megapixels(max_pixels)} megapixels. Send a smaller picture.",
    )


def fit_upload(
    image: Any, min_side: int = MIN_SIDE, max_side: int = MAX_SIDE
) -> tuple[Any, str | None]:
    """The picture at a size the engine can edit, and a note when it had to change.

    Scaled down (aspect kept) so the long side fits ``max_side``, scaled up so the short
    side reaches ``min_side``, then each side rounded down to a multiple of 8.

    Parameters
    ----------
    image: a PIL image (any mode; the result is RGB).
    min_side, max_side: the engine's accepted range per side, in pixels.

    Returns
    -------
    (the RGB picture, None or a sentence saying how its size changed).

    Raises
    ------
    ImageError
        ``input-invalid`` for a side under :data:`TINY_SIDE` pixels, or an aspect ratio
        beyond ``max_side / min_side`` (no size in range keeps it).
    """
    from PIL import Image

    width, height = image.size
    if min(width, height) < TINY_SIDE:
        raise ImageError(
            "input-invalid",
            f"The uploaded picture is {width}x{height} pixels: too small to work from. Send "
            f"one at least {min_side} pixels on each side.",
        )
    if max(width, height) / min(width, height) > max_side / min_side:
        raise ImageError(
            "input-invalid",
            f"The uploaded picture is {width}x{height} pixels: too long and thin to edit "
            f"(at most {max_side // min_side}:1). Crop it first.",
        )
    scale = min(1.0, max_side / max(width, height))
    scale = max(scale, min_side / min(width, height))
    size = tuple(
        max(min_side, min(max_side, int(side * scale) // VAE_FACTOR * VAE_FACTOR))
        for side in (width, height)
    )
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if size == (width, height):
        return rgb, None
    verb = "scaled up" if scale > 1.0 else "scaled down" if scale < 1.0 else "trimmed"
    note = f"The uploaded picture was {width}x{height}; it was {verb} to {size[0]}x{size[1]}."
    logger.info(note)
    return rgb.resize(size, Image.Resampling.LANCZOS), note
