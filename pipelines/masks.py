"""Masks and canvases for inpainting and outpainting: pure PIL / numpy, no model.

Conventions: a mask is a single-channel ``L`` image, white (255) = repaint, black (0) =
keep. The pipeline gets a hard (binary) mask; the final composite uses a soft "blend
alpha" that is 255 where the model's pixels win and exactly 0 where the original must
stay untouched, so everything outside a known border keeps its exact pixels.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pipelines.errors import ImageError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

MASK_THRESHOLD = 128  # grey levels >= this count as "repaint" (diffusers binarises at 0.5 too)
BLEND_RADIUS = 4  # pixels: the repainted area grows by this and then fades out over as many
SEAM_PIXELS = 24  # pixels of the old image that outpainting redraws and blends into
FILL_NOISE = 24.0  # grey levels (std) of the noise added to the stretched edge fill
OUTPAINT_DIRECTIONS = ("left", "right", "up", "down", "all")
MIN_OUTPAINT, MAX_OUTPAINT = 8, 1024  # pixels, multiples of 8


def prepare_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Turn a user mask into a binary ``L`` mask, checking it against the image.

    Parameters
    ----------
    mask: a PIL image. ``L``/``1``/``RGB`` are read as grey levels; ``RGBA``/``LA`` use
        the alpha channel (a brush stroke painted on a transparent layer).
    size: (width, height) of the image being repainted; the mask must match it.

    Returns
    -------
    An ``L`` image of 0 and 255.

    Raises
    ------
    ImageError("input-invalid") for a non-image, a size mismatch or an empty mask.
    """
    from PIL import Image

    if not isinstance(mask, Image.Image):
        raise ImageError("input-invalid", "`mask` must be a PIL image (white = repaint).")
    if mask.size != tuple(size):
        raise ImageError(
            "input-invalid",
            f"`mask` is {mask.size[0]}x{mask.size[1]} but the image is {size[0]}x{size[1]}: "
            "draw the mask on the image itself so both have the same size.",
        )
    if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        grey = mask.convert("RGBA").getchannel("A")
    else:
        grey = mask.convert("L")
    binary = grey.point(lambda v: 255 if v >= MASK_THRESHOLD else 0)
    if binary.getbbox() is None:
        raise ImageError(
            "input-invalid",
            "`mask` is empty, so there is nothing to repaint: paint the area to change in "
            "white (or opaque) and leave the rest black (or transparent).",
        )
    return binary


def blend_alpha(mask: Image.Image, radius: int = BLEND_RADIUS) -> Image.Image:
    """A soft alpha for pasting the model's pixels back over the original.

    The binary mask is dilated by ``radius`` and box-blurred by ``radius``: alpha is 255
    on the whole mask and exactly 0 farther than ``2 * radius`` from it.

    Parameters
    ----------
    mask: a binary ``L`` mask (``prepare_mask``).
    radius: pixels; 0 gives the hard mask back.

    Returns
    -------
    An ``L`` image.
    """
    from PIL import ImageFilter

    if radius <= 0:
        return mask.copy()
    grown = mask.filter(ImageFilter.MaxFilter(2 * radius + 1))
    return grown.filter(ImageFilter.BoxBlur(radius))


def composite(original: Image.Image, generated: Image.Image, alpha: Image.Image) -> Image.Image:
    """``generated`` where ``alpha`` is 255, ``original`` where it is 0, mixed in between."""
    from PIL import Image

    if generated.size != original.size:
        generated = generated.resize(original.size, Image.Resampling.LANCZOS)
    return Image.composite(generated.convert("RGB"), original.convert("RGB"), alpha)


def check_outpaint(direction: str, pixels: int, size: tuple[int, int], max_side: int) -> None:
    """Validate an outpaint request; raises ``ImageError("input-invalid")`` naming the field."""
    if direction not in OUTPAINT_DIRECTIONS:
        raise ImageError(
            "input-invalid",
            f"`direction` must be one of {', '.join(OUTPAINT_DIRECTIONS)} (got {direction!r}).",
        )
    if (
        not isinstance(pixels, int)
        or isinstance(pixels, bool)
        or not MIN_OUTPAINT <= pixels <= MAX_OUTPAINT
        or pixels % 8
    ):
        hint = f"; try {max(MIN_OUTPAINT, pixels // 8 * 8)}" if isinstance(pixels, int) else ""
        raise ImageError(
            "input-invalid",
            f"`pixels` must be a multiple of 8 from {MIN_OUTPAINT} to {MAX_OUTPAINT} "
            f"(got {pixels!r}){hint}.",
        )
    width, height = outpaint_size(direction, pixels, size)
    if max(width, height) > max_side:
        raise ImageError(
            "input-invalid",
            f"`pixels`: extending {size[0]}x{size[1]} by {pixels} ({direction}) gives "
            f"{width}x{height}, over the {max_side}-pixel limit; extend by less.",
        )


def _margins(direction: str, pixels: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixels added for ``direction``."""
    return (
        pixels if direction in ("left", "all") else 0,
        pixels if direction in ("up", "all") else 0,
        pixels if direction in ("right", "all") else 0,
        pixels if direction in ("down", "all") else 0,
    )


def outpaint_size(direction: str, pixels: int, size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the canvas after extending ``size``."""
    left, top, right, bottom = _margins(direction, pixels)
    return size[0] + left + right, size[1] + top + bottom


def outpaint_canvas(
    image: Image.Image,
    direction: str,
    pixels: int,
    seed: int,
    seam: int = SEAM_PIXELS,
) -> tuple[Image.Image, Image.Image, Image.Image, tuple[int, int]]:
    """Build everything outpainting needs.

    Parameters
    ----------
    image: the RGB picture to extend.
    direction: "left", "right", "up", "down" or "all".
    pixels: how far to extend (validated by ``check_outpaint``).
    seed: seeds the fill noise, so a seed gives the same result.
    seam: pixels of the old image redrawn next to the new area and faded back in.

    Returns
    -------
    (canvas, mask, alpha, offset):
    canvas: the extended RGB image, new area filled by stretching the edge plus noise;
    mask: binary ``L``, white over the new area and the seam band (what the model redraws);
    alpha: ``L`` blend alpha, 255 on the new area, a linear fade over the seam, 0 beyond;
    offset: (x, y) of the original image inside the canvas.
    """
    import numpy as np
    from PIL import Image

    left, top, right, bottom = _margins(direction, pixels)
    src = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width = src.shape[:2]
    # 1. Stretch the edge rows/columns outward, then add seeded noise to the new area only.
    filled = np.pad(src, ((top, bottom), (left, right), (0, 0)), mode="edge")
    new_area = np.ones(filled.shape[:2], dtype=bool)
    new_area[top : top + height, left : left + width] = False
    noise = np.random.default_rng(seed).normal(0.0, FILL_NOISE, filled.shape).astype(np.float32)
    filled[new_area] += noise[new_area]
    canvas = Image.fromarray(np.clip(filled, 0, 255).astype(np.uint8))
    canvas.paste(image.convert("RGB"), (left, top))  # the old pixels, exactly
    # 2. Distance (in pixels) from each old pixel to the nearest edge that was extended.
    ys, xs = np.mgrid[0:height, 0:width]
    far = np.full((height, width), np.inf, dtype=np.float32)
    for added, dist in ((left, xs), (top, ys), (right, width - 1 - xs), (bottom, height - 1 - ys)):
        if added:
            far = np.minimum(far, dist.astype(np.float32))
    # 3. Mask: the new area plus a seam band of the old image; alpha fades over that band.
    seam = max(1, min(seam, width // 2, height // 2))
    mask = new_area.astype(np.uint8) * 255
    alpha = mask.astype(np.float32)
    inner = np.clip(1.0 - far / seam, 0.0, 1.0)  # 1 at the old edge, 0 at `seam` px inside
    mask[top : top + height, left : left + width] = np.where(far < seam, 255, 0)
    alpha[top : top + height, left : left + width] = inner * 255.0
    return (
        canvas,
        Image.fromarray(mask),
        Image.fromarray(np.round(alpha).astype(np.uint8)),
        (left, top),
    )
