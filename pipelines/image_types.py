"""What goes into the image engine and what comes out, with the checks on the way in.

``ImageRequest`` is what to draw; ``check_request`` refuses a bad one up front with an
``ImageError("input-invalid")`` that names the field and the accepted range (before any model
work starts). ``ImageResult`` is the one record that carries a finished picture from the
engine to its node in the edit tree: the pixels plus every parameter needed to make it again.
The small input helpers (``check_image``, ``work_size``, ...) are shared by every operation.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.errors import ImageError
from pipelines.operations import Operation

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

# on_progress(step, total, preview): after every denoising step; preview is a small RGB picture.
ProgressFn = Callable[[int, int, "Image.Image | None"], None]

MIN_SIDE, MAX_SIDE = 64, 2048  # pixels; both multiples of 8
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes 64-bit seeds
RANDOM_SEED_BITS = 32  # random seeds stay in the range other SD tools show
MAX_BATCH = 8  # candidates per generate_batch call
# The operations a request may be checked for, in the order the error message lists them.
OPERATIONS = tuple(
    str(op)
    for op in (
        Operation.GENERATE,
        Operation.IMG2IMG,
        Operation.GENERATE_BATCH,
        Operation.INPAINT,
        Operation.OUTPAINT,
        Operation.VARIATION,
        Operation.UPSCALE,
        Operation.INSTRUCT_EDIT,
        Operation.DEPTH,
        Operation.CONTROLNET,
    )
)


@dataclass
class ImageRequest:
    """What to draw. ``None`` for steps / guidance means the model's default."""

    prompt: str
    negative_prompt: str = ""
    seed: int = -1  # -1 draws a random seed; the seed actually used is recorded
    steps: int | None = None  # denoising steps, 1..150
    guidance: float | None = None  # classifier-free guidance scale, 0..30 (<= 1 turns CFG off)
    width: int = 512  # pixels, multiple of 8, 64..2048
    height: int = 512  # pixels, multiple of 8, 64..2048
    strength: float = 0.6  # img2img only: how much of the init image is re-noised, (0, 1]


@dataclass
class ImageResult:
    """A finished image and every parameter needed to make it again.

    ``image`` is the RGB picture. ``params`` is what the PNG metadata and the edit tree's node
    record; it always holds:

    - ``operation``: what ran (an ``Operation`` value; a fallback records what really ran,
      e.g. "img2img", with ``requested_operation`` and ``edit_path`` saying why),
    - ``prompt``, ``negative_prompt``: the texts as the model read them,
    - ``width``, ``height``: the picture's size in pixels,
    - ``strength``: how much of a source picture was re-noised, None for generate / Lanczos,
    - ``placeholder``: True when random weights drew it (the picture is noise),
    - ``elapsed_s``: seconds of model work (None until it ran).

    Every model run also records ``seed``, ``steps``, ``guidance``, ``model``, ``scheduler``
    (the diffusers class) and ``sampler`` (its table name, or None). A Lanczos upscale has no
    seed, steps, guidance or model: ``node_fields`` fills the neutral values. Operations add
    their own keys (``mask_bbox``, ``direction``, ``factor``, ``depth_source``, ...; see each
    engine method), and ``prompt_chunks`` / ``prompt_weighting`` say how the text was encoded.
    """

    image: Image.Image  # RGB
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def operation(self) -> Operation:
        """What ran, typed (an unknown recorded name raises ``ValueError``)."""
        return Operation(self.params["operation"])

    @property
    def elapsed_s(self) -> float:
        return float(self.params.get("elapsed_s") or 0.0)

    def node_fields(self) -> dict[str, Any]:
        """The fields an edit-tree node copies from this result, with neutral values where an
        operation has none (a resampled upscale: seed 0, steps 0, guidance 0.0, model "")."""
        p = self.params
        return {
            "operation": str(p["operation"]),
            "prompt": p["prompt"],
            "negative_prompt": p.get("negative_prompt", ""),
            "seed": int(p.get("seed", 0)),
            "steps": int(p.get("steps", 0)),
            "guidance": float(p.get("guidance", 0.0)),
            "strength": p.get("strength"),
            "width": int(p["width"]),
            "height": int(p["height"]),
            "model": str(p.get("model", "")),
            "placeholder": bool(p.get("placeholder", False)),
        }


def check_request(request: ImageRequest, operation: str = "generate") -> None:
    """Validate a request before any work starts.

    Parameters
    ----------
    request: the request to check.
    operation: one of ``OPERATIONS``.

    Raises
    ------
    ImageError("input-invalid") whose message names the field and the accepted range.
    """

    def bad(message: str) -> ImageError:
        return ImageError("input-invalid", message)

    if not isinstance(request.prompt, str) or not request.prompt.strip():
        raise bad("`prompt` is empty: describe the picture, e.g. 'a red fox in the snow'.")
    for name in ("prompt", "negative_prompt"):
        text = getattr(request, name)
        if not isinstance(text, str):
            raise bad(f"`{name}` must be text.")
        if len(text) > MAX_PROMPT_CHARS:
            raise bad(
                f"`{name}` is {len(text)} characters; keep it under {MAX_PROMPT_CHARS} "
                "(the text encoder reads only about 60 words anyway)."
            )
    for name in ("width", "height"):
        value = getattr(request, name)
        if not is_int(value) or not MIN_SIDE <= value <= MAX_SIDE or value % 8:
            hint = ""
            if is_int(value) and MIN_SIDE <= value <= MAX_SIDE:
                hint = f"; try {value // 8 * 8} or {value // 8 * 8 + 8}"
            raise bad(
                f"`{name}` must be a multiple of 8 between {MIN_SIDE} and {MAX_SIDE} pixels "
                f"(got {value!r}){hint}."
            )
    if request.steps is not None and (
        not is_int(request.steps) or not 1 <= request.steps <= MAX_STEPS
    ):
        raise bad(f"`steps` must be a whole number from 1 to {MAX_STEPS} (got {request.steps!r}).")
    if request.guidance is not None and (
        not is_number(request.guidance) or not 0.0 <= request.guidance <= MAX_GUIDANCE
    ):
        raise bad(
            f"`guidance` must be between 0 and {MAX_GUIDANCE:g} (got {request.guidance!r}); "
            "0-1 turns guidance off, 5-9 is usual for SD 1.5."
        )
    if not is_number(request.strength) or not 0.0 < request.strength <= 1.0:
        raise bad(
            f"`strength` must be above 0 and at most 1 (got {request.strength!r}); "
            "0.3 keeps most of the picture, 0.8 changes most of it."
        )
    if not is_int(request.seed) or not -1 <= request.seed <= MAX_SEED:
        raise bad(f"`seed` must be -1 (random) or a whole number from 0 (got {request.seed!r}).")
    if operation not in OPERATIONS:
        raise bad(f"Unknown operation {operation!r}; one of {', '.join(OPERATIONS)}.")


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_strength(strength) -> float:
    if not is_number(strength) or not 0.0 < strength <= 1.0:
        raise ImageError(
            "input-invalid", f"`strength` must be above 0 and at most 1 (got {strength!r})."
        )
    return float(strength)


def check_image(
    image, name: str, min_side: int = MIN_SIDE, max_side: int = MAX_SIDE
) -> Image.Image:
    """Check that ``image`` is a PIL image of a workable size; return it as RGB."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise ImageError("input-invalid", f"`{name}` must be a PIL image.")
    if min(image.size) < min_side or max(image.size) > max_side:
        raise ImageError(
            "input-invalid",
            f"`{name}` is {image.width}x{image.height}; each side must be {min_side} to "
            f"{max_side} pixels.",
        )
    return image if image.mode == "RGB" else image.convert("RGB")


def work_size(size: tuple[int, int], min_side: int = MIN_SIDE) -> tuple[int, int]:
    """``size`` rounded down to multiples of 8 (the VAE factor), at least ``min_side``."""
    return tuple(max(min_side, side // 8 * 8) for side in size)


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    from PIL import Image

    return image if image.size == tuple(size) else image.resize(size, Image.Resampling.LANCZOS)


def label(model: Any) -> str:
    """How a model setting is recorded in params: its id/path, or the class of an object."""
    return str(model) if isinstance(model, str | os.PathLike) else type(model).__name__


def prepare_init_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Convert the init image to RGB at the requested size, saying so when it changes."""
    from PIL import Image

    if image.mode != "RGB":
        logger.info("img2img: converting the init image from %s to RGB", image.mode)
        image = image.convert("RGB")
    if image.size != (width, height):
        logger.info(
            "img2img: resizing the init image from %dx%d to %dx%d", *image.size, width, height
        )
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image


def steps_for_strength(steps: int, strength: float) -> int:
    """Smallest step count >= ``steps`` for which diffusers runs at least one img2img step."""
    while int(steps * strength) < 1:
        steps = max(steps + 1, math.ceil(1.0 / strength))
    return steps


def fit_steps(params: dict[str, Any], strength: float) -> None:
    """Raise ``params["steps"]`` so diffusers runs at least one step at ``strength``."""
    steps = steps_for_strength(params["steps"], strength)
    if steps != params["steps"]:
        logger.info(
            "%s: %d steps at strength %.2f would run no step; using %d steps",
            params["operation"],
            params["steps"],
            strength,
            steps,
        )
        params["steps"] = steps
