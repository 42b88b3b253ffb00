"""Edits that redraw a whole picture from itself: variations and instructions.

A variation is img2img at a named strength with a fresh seed. An instruction ("make it
snowy") runs InstructPix2Pix when ``image.pix2pix_model`` is configured, otherwise img2img on
the caller's rewritten prompt; the result then records what really ran.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from pipelines.errors import ImageError
from pipelines.image_types import (
    MAX_PROMPT_CHARS,
    ImageRequest,
    ImageResult,
    ProgressFn,
    check_image,
    check_request,
    label,
    resize,
    work_size,
)
from pipelines.operations import Operation

if TYPE_CHECKING:
    from PIL import Image

    from pipelines.image_engine import ImageEngine

VARIATION_STRENGTHS = {"subtle": 0.3, "strong": 0.7}  # img2img strength of a variation
PIX2PIX_GUIDANCE = 7.5  # text guidance of InstructPix2Pix when the request leaves it out
PIX2PIX_IMAGE_GUIDANCE = 1.5  # how closely InstructPix2Pix sticks to the input image
PIX2PIX_MIN_STEPS = 10  # InstructPix2Pix is not distilled: 1-4 steps give mush


def variation(
    engine: ImageEngine,
    request: ImageRequest,
    image: Image.Image,
    strength: str | float = "subtle",
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ImageResult:
    """Another take on ``image``; see ``ImageEngine.variation``."""
    # 1. Resolve the strength and the working size.
    name = strength if isinstance(strength, str) else "custom"
    if isinstance(strength, str):
        if strength not in VARIATION_STRENGTHS:
            raise ImageError(
                "input-invalid",
                f"`strength` must be 'subtle', 'strong' or a number in (0, 1] (got {strength!r}).",
            )
        strength = VARIATION_STRENGTHS[strength]
    rgb = check_image(image, "image")
    width, height = work_size(rgb.size)
    # 2. img2img at that strength (validates the number too).
    result = engine.img2img(
        replace(request, strength=strength, width=width, height=height),
        rgb,
        on_progress,
        cancel,
    )
    result.params.update(operation=str(Operation.VARIATION), variation=name)
    return result


def instruct_edit(
    engine: ImageEngine,
    request: ImageRequest,
    image: Image.Image,
    instruction: str,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    image_guidance: float = PIX2PIX_IMAGE_GUIDANCE,
) -> ImageResult:
    """Apply an instruction to ``image``; see ``ImageEngine.instruct_edit``."""
    # 1. Check inputs.
    check_request(request, Operation.INSTRUCT_EDIT)
    rgb = check_image(image, "image")
    if not isinstance(instruction, str) or not instruction.strip():
        raise ImageError(
            "input-invalid", "`instruction` is empty: say what to change, e.g. 'add snow'."
        )
    if len(instruction) > MAX_PROMPT_CHARS:
        raise ImageError("input-invalid", f"`instruction` is over {MAX_PROMPT_CHARS} characters.")
    width, height = work_size(rgb.size)
    # 2. Without InstructPix2Pix: img2img on the rewritten prompt.
    if engine.tasks.pix2pix_model is None:
        result = engine.img2img(
            replace(request, width=width, height=height), rgb, on_progress, cancel
        )
        # The node records what ran ("img2img"); edit_path says why.
        result.params.update(
            requested_operation=str(Operation.INSTRUCT_EDIT),
            instruction=instruction,
            edit_path="img2img-fallback",
        )
        return result
    # 3. InstructPix2Pix: the instruction is the prompt; guidance needs CFG on.
    pipe = engine.tasks.pix2pix()
    params = engine.params_for(replace(request, prompt=instruction), Operation.INSTRUCT_EDIT)
    if request.steps is None:
        params["steps"] = max(params["steps"], PIX2PIX_MIN_STEPS)
    if request.guidance is None:
        params["guidance"] = PIX2PIX_GUIDANCE
    params.update(
        width=width,
        height=height,
        instruction=instruction,
        edit_path="pix2pix",
        image_guidance=float(image_guidance),
        pix2pix_model=label(engine.tasks.pix2pix_model),
    )
    call = {"image": resize(rgb, (width, height)), "image_guidance_scale": image_guidance}
    return engine.runner.run(pipe, params, call, on_progress, cancel)
