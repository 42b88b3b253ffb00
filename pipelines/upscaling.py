"""Enlarging a picture: a diffusion upscaler when one is configured, Lanczos otherwise.

A diffusion upscaler (SD x4, or the latent x2) adds detail in one pass at its native factor;
other factors are reached with a final Lanczos resize. Without one the picture is resampled
with Lanczos and labelled so (``LANCZOS_LABEL``), with no seed, steps or model recorded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from pipelines.errors import ImageError
from pipelines.image_types import (
    ImageRequest,
    ImageResult,
    ProgressFn,
    check_image,
    check_request,
    is_number,
    label,
    resize,
    work_size,
)
from pipelines.operations import Operation

if TYPE_CHECKING:
    from PIL import Image

    from pipelines.image_engine import ImageEngine

UPSCALER_STEPS = 20  # denoising steps of a diffusion upscaler when the request leaves them out
MAX_UPSCALE_FACTOR = 8
MAX_UPSCALE_SIDE = 4096  # pixels: the longest side an upscale may produce
LANCZOS_LABEL = "lanczos (no upscaler model configured)"
# The models' published guidance: the latent x2 upscaler runs without CFG, the x4 at 9.
UPSCALER_GUIDANCE = {2: 0.0, 4: 9.0}


def upscale(
    engine: ImageEngine,
    image: Image.Image,
    factor: float = 2,
    request: ImageRequest | None = None,
    on_progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ImageResult:
    """Enlarge ``image`` by ``factor``; see ``ImageEngine.upscale``."""
    # 1. Check inputs.
    rgb = check_image(image, "image", min_side=8, max_side=MAX_UPSCALE_SIDE)
    if not is_number(factor) or not 1.0 < factor <= MAX_UPSCALE_FACTOR:
        raise ImageError(
            "input-invalid",
            f"`factor` must be more than 1 and at most {MAX_UPSCALE_FACTOR} (got {factor!r}).",
        )
    width, height = round(rgb.width * factor), round(rgb.height * factor)
    if max(width, height) > MAX_UPSCALE_SIDE:
        raise ImageError(
            "input-invalid",
            f"`factor` {factor:g} would make {rgb.width}x{rgb.height} into {width}x{height}; "
            f"the longest side may be at most {MAX_UPSCALE_SIDE} px. Use a smaller factor.",
        )
    if request is not None and request.prompt.strip():
        check_request(request, Operation.UPSCALE)
    # 2. No upscaler model: Lanczos, no lock needed (no pipeline state is touched).
    if engine.tasks.upscaler_model is None:
        return _lanczos(engine, rgb, factor, (width, height), request)
    # 3. A diffusion upscaler: one pass, then Lanczos to the exact size.
    from pipelines.extra_models import upscaler_factor

    pipe = engine.tasks.upscaler()
    native = upscaler_factor(pipe)
    request = request or ImageRequest(prompt="")
    params = engine.params_for(replace(request, prompt=request.prompt or ""), Operation.UPSCALE)
    if request.steps is None:
        params["steps"] = UPSCALER_STEPS
    if request.guidance is None:
        params["guidance"] = UPSCALER_GUIDANCE[2] if native == 2 else UPSCALER_GUIDANCE[4]
    params.update(
        width=width,
        height=height,
        factor=float(factor),
        upscaler=label(engine.tasks.upscaler_model),
        scheduler=type(pipe.scheduler).__name__,
        source_size=list(rgb.size),
    )
    source = resize(rgb, work_size(rgb.size, min_side=8))
    return engine.runner.run(
        pipe,
        params,
        {"image": source},
        on_progress,
        cancel,
        legacy=True,
        finish=lambda out: resize(out, (width, height)),
    )


def _lanczos(
    engine: ImageEngine,
    rgb: Image.Image,
    factor: float,
    size: tuple[int, int],
    request: ImageRequest | None,
) -> ImageResult:
    from PIL import Image

    start = time.perf_counter()
    out = rgb.resize(size, Image.Resampling.LANCZOS)
    # No seed, steps, guidance, scheduler or model: a resampler has none of them.
    params = {
        "prompt": request.prompt if request else "",
        "negative_prompt": request.negative_prompt if request else "",
        "strength": None,
        "width": size[0],
        "height": size[1],
        "operation": str(Operation.UPSCALE),
        "placeholder": False,
        "factor": float(factor),
        "upscaler": LANCZOS_LABEL,
        "source_size": list(rgb.size),
        "elapsed_s": round(time.perf_counter() - start, 3),
    }
    return ImageResult(image=engine.postprocess(out, params), params=params)
