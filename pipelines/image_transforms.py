"""Plain image operations that need no model: flip, rotate, crop to a shape, zoom, resize.

They are exact and instant, so the reply says plainly what was done ("flipped left to right,
now 512 by 512"), unlike a diffusion edit, which redraws the picture.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from PIL import Image

from pipelines.image_types import ImageResult

# Aspect ratios (width / height) of the crop shapes.
_ASPECTS = {"square": 1.0, "portrait": 2 / 3, "landscape": 3 / 2, "wide": 16 / 9}
MULTIPLE = 8  # Stable Diffusion needs sizes divisible by 8 for later edits
MAX_SIDE = 2048  # resizing never goes past the engine's largest size


def apply_transform(
    image: Image.Image, name: str, size: tuple[int, int] | None = None
) -> Image.Image:
    """``image`` after one named transform (``assistant.plan.Transform`` values); ``size`` is
    the (width, height) of "resize"."""
    match name:
        case "resize" if size is not None:
            width, height = (max(MULTIPLE, min(MAX_SIDE, v) // MULTIPLE * MULTIPLE) for v in size)
            return image.resize((width, height), Image.Resampling.LANCZOS)
        case "flip-horizontal":
            return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        case "flip-vertical":
            return image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        case "rotate-left":
            return image.transpose(Image.Transpose.ROTATE_90)
        case "rotate-right":
            return image.transpose(Image.Transpose.ROTATE_270)
        case "rotate-180":
            return image.transpose(Image.Transpose.ROTATE_180)
        case "square" | "portrait" | "landscape" | "wide":
            return centre_crop(image, _ASPECTS[name])
        case "zoom-in":
            w, h = image.size
            box = (w // 4, h // 4, w // 4 + w // 2, h // 4 + h // 2)
            return image.crop(box).resize((w, h), Image.Resampling.LANCZOS)
        case "bigger":
            return _resize(image, 2.0)
        case "smaller":
            return _resize(image, 0.5)
    raise ValueError(f"unknown transform {name!r}")


def centre_crop(image: Image.Image, aspect: float) -> Image.Image:
    """The largest centred crop of ``image`` with width / height = ``aspect`` (sides a multiple
    of 8, so the picture can still be edited)."""
    w, h = image.size
    if w / h > aspect:
        new_w, new_h = round(h * aspect), h
    else:
        new_w, new_h = w, round(w / aspect)
    new_w, new_h = (
        max(MULTIPLE, new_w // MULTIPLE * MULTIPLE),
        max(MULTIPLE, new_h // MULTIPLE * MULTIPLE),
    )
    left, top = (w - new_w) // 2, (h - new_h) // 2
    return image.crop((left, top, left + new_w, top + new_h))


def _resize(image: Image.Image, factor: float) -> Image.Image:
    w, h = image.size
    scale = min(factor, MAX_SIDE / max(w, h))
    size = (
        max(MULTIPLE, round(w * scale) // MULTIPLE * MULTIPLE),
        max(MULTIPLE, round(h * scale) // MULTIPLE * MULTIPLE),
    )
    return image.resize(size, Image.Resampling.LANCZOS)


def transformed(
    image: Image.Image,
    names: Sequence[str],
    parent: dict[str, Any],
    size: tuple[int, int] | None = None,
) -> ImageResult:
    """``image`` after ``names`` in order, with the parent's parameters and its new size."""
    start = time.perf_counter()
    for name in names:
        image = apply_transform(image, str(name), size)
    params = {
        key: parent.get(key)
        for key in ("prompt", "negative_prompt", "seed", "steps", "guidance", "strength", "model")
    }
    params.update(
        operation="transform",
        transforms=[str(n) for n in names],
        width=image.width,
        height=image.height,
        placeholder=bool(parent.get("placeholder", False)),
        elapsed_s=time.perf_counter() - start,
    )
    return ImageResult(image, params)
