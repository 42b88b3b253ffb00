"""Inpainting and outpainting: repaint part of a picture, keep every other pixel exactly.

Both run the inpainting pipeline (``TaskPipelines.inpaint``) on a hard mask, then composite
the result over the original with a soft alpha (``pipelines.masks``), so pixels outside the
blend band are the original's, bit for bit.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pipelines import masks
from pipelines.errors import ImageError
from pipelines.image_types import (
    MAX_SIDE,
    ImageRequest,
    ImageResult,
    ProgressFn,
    check_image,
    check_request,
    check_strength,
    fit_steps,
    is_int,
    label,
    resize,
    work_size,
)
from pipelines.operations import Operation

if TYPE_CHECKING:
    from PIL import Image

    from pipelines.image_engine import ImageEngine

INPAINT_STRENGTH = 1.0  # inpaint: the masked area is redrawn from pure noise
OUTPAINT_STRENGTH = 0.9  # outpaint: keeps a hint of the stretched edge colours in the new area
MAX_BLEND_RADIUS = 64  # pixels


def inpaint(
    engine: ImageEngine,
    request: ImageRequest,
    image: Image.Image,
    mask: Image.Image,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    strength: float | None = None,
    blend_radius: int = masks.BLEND_RADIUS,
) -> ImageResult:
    """Repaint the white part of ``mask``; see ``ImageEngine.inpaint``."""
    # 1. Check inputs: the request, the image, the mask against the image.
    check_request(request, Operation.INPAINT)
    rgb = check_image(image, "image")
    hard = masks.prepare_mask(mask, rgb.size)
    strength = check_strength(INPAINT_STRENGTH if strength is None else strength)
    if not is_int(blend_radius) or not 0 <= blend_radius <= MAX_BLEND_RADIUS:
        raise ImageError(
            "input-invalid",
            f"`blend_radius` must be 0..{MAX_BLEND_RADIUS} pixels (got {blend_radius!r}).",
        )
    # 2. Record everything, then repaint and paste the original back outside the mask.
    params = engine.params_for(request, Operation.INPAINT)
    params.update(
        width=rgb.width,
        height=rgb.height,
        mask_bbox=list(hard.getbbox()),
        blend_radius=blend_radius,
    )
    alpha = masks.blend_alpha(hard, blend_radius)
    return _repaint(engine, params, rgb, hard, alpha, strength, on_progress, cancel)


def outpaint(
    engine: ImageEngine,
    request: ImageRequest,
    image: Image.Image,
    direction: str,
    pixels: int,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    strength: float | None = None,
) -> ImageResult:
    """Extend the picture and paint the new area; see ``ImageEngine.outpaint``."""
    # 1. Check inputs.
    check_request(request, Operation.OUTPAINT)
    rgb = check_image(image, "image")
    masks.check_outpaint(direction, pixels, rgb.size, MAX_SIDE)
    strength = check_strength(OUTPAINT_STRENGTH if strength is None else strength)
    params = engine.params_for(request, Operation.OUTPAINT)
    # 2. Build the canvas (seeded fill), the repaint mask and the seam alpha.
    canvas, hard, alpha, offset = masks.outpaint_canvas(rgb, direction, pixels, seed=params["seed"])
    params.update(
        width=canvas.width,
        height=canvas.height,
        direction=direction,
        pixels=pixels,
        seam=masks.SEAM_PIXELS,
        offset=list(offset),
        source_size=list(rgb.size),
    )
    # 3. Inpaint the new area and blend the seam.
    return _repaint(engine, params, canvas, hard, alpha, strength, on_progress, cancel)


def _repaint(
    engine: ImageEngine,
    params: dict[str, Any],
    canvas: Image.Image,
    hard: Image.Image,
    alpha: Image.Image,
    strength: float,
    on_progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> ImageResult:
    """Inpaint ``hard`` on ``canvas``, then composite with ``alpha`` over the canvas."""
    from PIL import Image

    # 1. The model works at a multiple of 8; the result is brought back to canvas size.
    size = work_size(canvas.size)
    picture = resize(canvas, size)
    mask = hard if hard.size == size else hard.resize(size, Image.Resampling.NEAREST)
    # 2. Record the strength and make sure at least one step runs.
    inpaint_model = engine.tasks.inpaint_model
    params["strength"] = float(strength)
    params["inpaint_model"] = label(inpaint_model) if inpaint_model is not None else None
    fit_steps(params, strength)
    # 3. Denoise on the inpainting pipeline (shared weights).
    call = {
        "image": picture,
        "mask_image": mask,
        "width": size[0],
        "height": size[1],
        "strength": float(strength),
    }
    # 4. Paste the original back wherever alpha is 0: those pixels stay exactly as they were.
    return engine.runner.run(
        engine.tasks.inpaint(),
        params,
        call,
        on_progress,
        cancel,
        finish=lambda out: masks.composite(canvas, out, alpha),
    )
