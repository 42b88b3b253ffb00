"""Edits that keep a picture's structure: depth2img (what is near, what far) and ControlNet.

Both run pipelines derived from the base (``TaskPipelines.depth`` / ``.controlnet``). Without
a depth model a depth edit falls back to img2img and records so; a ControlNet condition that
is not configured is refused with the setting to fill in.
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any

from pipelines.errors import ImageError
from pipelines.image_types import (
    ImageRequest,
    ImageResult,
    ProgressFn,
    check_image,
    check_request,
    fit_steps,
    is_number,
    label,
    resize,
    work_size,
)
from pipelines.operations import Operation

if TYPE_CHECKING:
    from PIL import Image

    from pipelines.image_engine import ImageEngine

logger = logging.getLogger(__name__)

MAX_CONDITIONING_SCALE = 2.0


def depth_edit(
    engine: ImageEngine,
    request: ImageRequest,
    image: Image.Image,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    depth_map: Any = None,
) -> ImageResult:
    """Redraw ``image`` keeping its depth; see ``ImageEngine.depth_edit``."""
    from pipelines import depth

    # 1. Check inputs, the depth map too, so a bad request fails the same on either path.
    check_request(request, Operation.DEPTH)
    rgb = check_image(image, "image")
    given = None if depth_map is None else depth.prepare_depth_map(depth_map, rgb.size)
    size = work_size(rgb.size)
    strength = float(request.strength)
    call = {"image": resize(rgb, size), "strength": strength}

    def back_to_size(out: Image.Image) -> Image.Image:  # work size -> the input's size
        return resize(out, rgb.size)

    # 2. Without a depth model: img2img on the prompt. The node records what ran
    #    ("img2img"); edit_path says why.
    depth_model = engine.tasks.depth_model
    if depth_model is None:
        if given is not None:
            logger.info("depth: no `image.depth_model` configured; the depth map is unused")
        params = engine.params_for(request, Operation.IMG2IMG)
        fit_steps(params, strength)
        params.update(
            width=rgb.width,
            height=rgb.height,
            strength=strength,
            requested_operation=str(Operation.DEPTH),
            edit_path="img2img-fallback",
        )
        return engine.runner.run(
            engine.tasks.img2img, params, call, on_progress, cancel, finish=back_to_size
        )
    # 3. depth2img, derived from the base pipeline (its VAE and text encoder, shared).
    pipe = engine.tasks.depth()
    params = engine.params_for(request, Operation.DEPTH)
    if request.steps is None:
        params["steps"] = max(params["steps"], depth.DEPTH_MIN_STEPS)
    if request.guidance is None:
        params["guidance"] = depth.DEPTH_GUIDANCE
    fit_steps(params, strength)
    params.update(
        width=rgb.width,
        height=rgb.height,
        strength=strength,
        edit_path="depth2img",
        depth_source="estimator" if given is None else "given",
        depth_model=label(depth_model),
    )
    if depth.is_random(depth_model):
        params["placeholder"] = True  # random depth weights: noise even on a real base
    if given is not None:
        call["depth_map"] = given
    with warnings.catch_warnings():
        # diffusers' depth2img asks for CPU autocast in float32 on every call, which torch
        # declines with a warning each time; nothing is wrong.
        warnings.filterwarnings("ignore", message="In CPU autocast", category=UserWarning)
        return engine.runner.run(pipe, params, call, on_progress, cancel, finish=back_to_size)


def controlnet(
    engine: ImageEngine,
    request: ImageRequest,
    image: Image.Image,
    condition: str = "canny",
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    conditioning_scale: float = 1.0,
) -> ImageResult:
    """Follow the structure of ``image`` through a ControlNet; see ``ImageEngine.controlnet``."""
    from pipelines.conditions import CONDITIONS, canny_map

    # 1. Check inputs; an unconfigured condition names the setting to fill in.
    check_request(request, Operation.CONTROLNET)
    rgb = check_image(image, "image")
    models = engine.tasks.controlnet_models
    if condition not in models:
        configured = ", ".join(models) or "none"
        raise ImageError(
            "model-missing",
            f"No ControlNet is configured for `condition` {condition!r} (configured: "
            f"{configured}). Set `image.controlnet_models.{condition}` to a ControlNet "
            "id or path, e.g. lllyasviel/sd-controlnet-canny for SD 1.5.",
        )
    if not is_number(conditioning_scale) or not 0.0 <= conditioning_scale <= MAX_CONDITIONING_SCALE:
        raise ImageError(
            "input-invalid",
            f"`conditioning_scale` must be 0..2 (got {conditioning_scale!r}).",
        )
    width, height = work_size(rgb.size)
    # 2. The condition map.
    if condition == "canny":
        control = canny_map(rgb)
    else:
        if condition not in CONDITIONS:
            logger.info("controlnet: using the image as the %s map as it is", condition)
        control = rgb
    control = resize(control, (width, height))
    # 3. Run the ControlNet pipeline derived from the base (shared weights).
    pipe = engine.tasks.controlnet(condition)
    params = engine.params_for(request, Operation.CONTROLNET)
    params.update(
        width=width,
        height=height,
        condition=condition,
        controlnet_model=label(models[condition]),
        conditioning_scale=float(conditioning_scale),
    )
    call = {
        "image": control,
        "width": width,
        "height": height,
        "controlnet_conditioning_scale": float(conditioning_scale),
    }
    return engine.runner.run(pipe, params, call, on_progress, cancel)
