"""The image engine: text-to-image and image-to-image on one shared Stable Diffusion pipeline.

One loaded text-to-image pipeline holds the weights; image-to-image is derived
from it with ``from_pipe`` (same UNet, VAE and text encoder objects, no second
copy). Each call validates its request up front, draws all noise from a CPU
``torch.Generator`` (a seed gives the same image on any device), streams
progress with a cheap latent preview, and honours cancel within one step.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.errors import ImageError

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline
    from PIL import Image

    from pipelines.loading import ModelInfo

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, "Image.Image | None"], None]

MIN_SIDE, MAX_SIDE = 64, 2048  # pixels; both multiples of 8
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes 64-bit seeds
RANDOM_SEED_BITS = 32  # random seeds stay in the range other SD tools show
PREVIEW_MAX_SIDE = 512  # pixels; previews are upsampled from the latent grid up to this
# Fixed 4x3 projection from SD 1.x/2.x latent channels to RGB (the community "cheap
# approximation"): good enough to see composition emerge, costs no VAE call.
LATENT_RGB_FACTORS = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
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
    """A finished image and every parameter needed to make it again."""

    image: Image.Image  # RGB
    params: dict[str, Any] = field(default_factory=dict)


class _Cancelled(Exception):
    """Raised inside the step callback to leave the denoising loop at once."""


def check_request(request: ImageRequest, operation: str = "generate") -> None:
    """Validate a request before any work starts.

    Parameters
    ----------
    request: the request to check.
    operation: "generate" or "img2img" (strength matters only for img2img).

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
        if not _is_int(value) or not MIN_SIDE <= value <= MAX_SIDE or value % 8:
            hint = ""
            if _is_int(value) and MIN_SIDE <= value <= MAX_SIDE:
                hint = f"; try {value // 8 * 8} or {value // 8 * 8 + 8}"
            raise bad(
                f"`{name}` must be a multiple of 8 between {MIN_SIDE} and {MAX_SIDE} pixels "
                f"(got {value!r}){hint}."
            )
    if request.steps is not None and (
        not _is_int(request.steps) or not 1 <= request.steps <= MAX_STEPS
    ):
        raise bad(f"`steps` must be a whole number from 1 to {MAX_STEPS} (got {request.steps!r}).")
    if request.guidance is not None and (
        not _is_number(request.guidance) or not 0.0 <= request.guidance <= MAX_GUIDANCE
    ):
        raise bad(
            f"`guidance` must be between 0 and {MAX_GUIDANCE:g} (got {request.guidance!r}); "
            "0-1 turns guidance off, 5-9 is usual for SD 1.5."
        )
    if not _is_number(request.strength) or not 0.0 < request.strength <= 1.0:
        raise bad(
            f"`strength` must be above 0 and at most 1 (got {request.strength!r}); "
            "0.3 keeps most of the picture, 0.8 changes most of it."
        )
    if not _is_int(request.seed) or not -1 <= request.seed <= MAX_SEED:
        raise bad(f"`seed` must be -1 (random) or a whole number from 0 (got {request.seed!r}).")
    if operation not in ("generate", "img2img"):
        raise bad(f"Unknown operation {operation!r}.")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def latents_to_preview(latents: torch.Tensor, max_side: int = PREVIEW_MAX_SIDE) -> Image.Image:
    """Approximate RGB of the first latent in a batch, without the VAE.

    Parameters
    ----------
    latents: (batch, 4, h, w) SD latents.
    max_side: the preview is upsampled x8 (the VAE factor) but no larger than this.

    Returns
    -------
    A small RGB PIL image.
    """
    import torch
    from PIL import Image

    latent = latents[0].detach().to("cpu", torch.float32)
    factors = torch.tensor(LATENT_RGB_FACTORS, dtype=torch.float32)
    rgb = torch.einsum("chw,cr->hwr", latent[: factors.shape[0]], factors)
    pixels = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    image = Image.fromarray(pixels)  # (h, w, 3) uint8 -> RGB
    h, w = pixels.shape[:2]
    scale = max(1, min(8, max_side // max(h, w)))
    return image.resize((w * scale, h * scale), Image.Resampling.BILINEAR)


class ImageEngine:
    """Generate and edit images with one loaded pipeline.

    Parameters
    ----------
    pipe: a loaded text-to-image pipeline (``pipelines.loading.load_pipeline``).
    info: its ``ModelInfo`` (label, defaults, device).

    Calls are serialised: the pipeline is one piece of state, so a second caller waits.
    """

    def __init__(self, pipe: DiffusionPipeline, info: ModelInfo):
        from diffusers import AutoPipelineForImage2Image

        self.pipe = pipe
        self.info = info
        # Shares every module with ``pipe`` (from_pipe): no second copy of the weights.
        self.img2img_pipe = AutoPipelineForImage2Image.from_pipe(pipe)
        self.img2img_pipe.set_progress_bar_config(disable=True)
        self._lock = threading.Lock()

    @classmethod
    def from_model(cls, model: str, device: str = "auto", **load_kwargs) -> ImageEngine:
        """Load ``model`` (see ``load_pipeline``) and wrap it in an engine."""
        from pipelines.loading import load_pipeline

        pipe, info = load_pipeline(model, device, **load_kwargs)
        return cls(pipe, info)

    def warm_up(self) -> float:
        """Run one tiny generation so the first real request does not pay for first-call setup.

        Returns
        -------
        Seconds it took.
        """
        start = time.perf_counter()
        self.generate(ImageRequest(prompt="warm-up", seed=0, steps=1, width=64, height=64))
        elapsed = time.perf_counter() - start
        logger.info("Image engine warmed up in %.2f s", elapsed)
        return elapsed

    def generate(
        self,
        request: ImageRequest,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> ImageResult:
        """Draw a new image from text.

        Parameters
        ----------
        request: prompt and settings.
        on_progress: called as ``on_progress(step, total, preview)`` after every step.
        cancel: when set, the run stops within one step with ``ImageError("image-cancelled")``.

        Returns
        -------
        The image and its parameters (``operation`` "generate", ``strength`` None).
        """
        # 1. Check inputs and fill in the model's defaults.
        check_request(request, "generate")
        params = self._base_params(request, "generate")
        # 2. Run the denoising loop on the shared pipeline.
        call = {
            "width": request.width,
            "height": request.height,
        }
        return self._run(self.pipe, params, call, on_progress, cancel)

    def img2img(
        self,
        request: ImageRequest,
        init_image: Image.Image,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> ImageResult:
        """Redraw ``init_image`` guided by the prompt; ``request.strength`` sets how much changes.

        Parameters
        ----------
        request: prompt and settings; width/height give the output size.
        init_image: the picture to start from; converted to RGB and resized if needed.
        on_progress, cancel: as for ``generate``.

        Returns
        -------
        The image and its parameters (``operation`` "img2img", the effective ``steps``).
        """
        from PIL import Image

        # 1. Check inputs and fill in the model's defaults.
        check_request(request, "img2img")
        if not isinstance(init_image, Image.Image):
            raise ImageError("input-invalid", "`init_image` must be a PIL image.")
        image = _prepare_init_image(init_image, request.width, request.height)
        params = self._base_params(request, "img2img")
        # 2. Make sure at least one denoising step runs (diffusers runs int(steps * strength)).
        steps = _steps_for_strength(params["steps"], request.strength)
        if steps != params["steps"]:
            logger.info(
                "img2img: %d steps at strength %.2f would run no step; using %d steps",
                params["steps"],
                request.strength,
                steps,
            )
            params["steps"] = steps
        params["strength"] = float(request.strength)
        # 3. Run the denoising loop on the derived img2img pipeline (shared weights).
        call = {"image": image, "strength": float(request.strength)}
        return self._run(self.img2img_pipe, params, call, on_progress, cancel)

    # -- internals ---------------------------------------------------------------------------

    def _base_params(self, request: ImageRequest, operation: str) -> dict[str, Any]:
        seed = request.seed if request.seed != -1 else secrets.randbits(RANDOM_SEED_BITS)
        steps = request.steps if request.steps is not None else self.info.default_steps
        guidance = request.guidance if request.guidance is not None else self.info.default_guidance
        self._warn_if_truncated(request.prompt, "prompt")
        if request.negative_prompt:
            self._warn_if_truncated(request.negative_prompt, "negative_prompt")
        return {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seed": int(seed),
            "steps": int(steps),
            "guidance": float(guidance),
            "strength": None,
            "width": request.width,
            "height": request.height,
            "model": self.info.label,
            "operation": operation,
            "scheduler": type(self.pipe.scheduler).__name__,
            "placeholder": self.info.placeholder,
            "elapsed_s": None,
        }

    def _warn_if_truncated(self, text: str, name: str) -> None:
        tokenizer = getattr(self.pipe, "tokenizer", None)
        if tokenizer is None:
            return
        backend = getattr(tokenizer, "backend_tokenizer", None)  # fast path, no length warning
        if backend is not None:
            n_tokens = len(backend.encode(text).ids)
        else:
            n_tokens = len(tokenizer.tokenize(text)) + 2  # + start and end tokens
        if n_tokens > tokenizer.model_max_length:
            logger.warning(
                "`%s` is %d CLIP tokens; only the first %d are read, the rest is truncated",
                name,
                n_tokens,
                tokenizer.model_max_length,
            )

    def _run(
        self,
        pipe: DiffusionPipeline,
        params: dict[str, Any],
        call: dict[str, Any],
        on_progress: ProgressFn | None,
        cancel: threading.Event | None,
    ) -> ImageResult:
        import torch

        def on_step_end(p, step: int, timestep, tensors: dict) -> dict:
            if cancel is not None and cancel.is_set():
                # diffusers' own flag, and an exception so the VAE decode is skipped too.
                p._interrupt = True
                raise _Cancelled
            if on_progress is not None:
                on_progress(step + 1, p.num_timesteps, latents_to_preview(tensors["latents"]))
            return tensors

        with self._lock:
            if cancel is not None and cancel.is_set():
                raise ImageError("image-cancelled", "The image was cancelled before it started.")
            start = time.perf_counter()
            try:
                output = pipe(
                    prompt=params["prompt"],
                    negative_prompt=params["negative_prompt"] or None,
                    num_inference_steps=params["steps"],
                    guidance_scale=params["guidance"],
                    # CPU generator: the same seed gives the same noise on any device.
                    generator=torch.Generator(device="cpu").manual_seed(params["seed"]),
                    callback_on_step_end=on_step_end,
                    callback_on_step_end_tensor_inputs=["latents"],
                    output_type="pil",
                    **call,
                )
            except _Cancelled:
                logger.info("Image %s cancelled", params["operation"])
                raise ImageError("image-cancelled", "The image was cancelled.") from None
            except ImageError:
                raise
            except Exception as e:
                raise self._translate_error(e) from e
            params["elapsed_s"] = round(time.perf_counter() - start, 3)
        image = output.images[0].convert("RGB")
        logger.info(
            "%s %dx%d, %d steps, seed %d in %.2f s",
            params["operation"],
            params["width"],
            params["height"],
            params["steps"],
            params["seed"],
            params["elapsed_s"],
        )
        return ImageResult(image=image, params=params)

    def _translate_error(self, error: Exception) -> ImageError:
        import torch

        is_oom = isinstance(error, torch.cuda.OutOfMemoryError) or (
            isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
        )
        if is_oom:
            if self.info.device.startswith("cuda") and torch.cuda.is_available():
                torch.cuda.empty_cache()
            logger.warning("Image generation ran out of memory on %s", self.info.device)
            return ImageError(
                "image-oom",
                f"Out of memory on {self.info.device}: try a smaller size, fewer images, "
                "or enable cpu offload.",
            )
        logger.error("Image generation failed: %s", error, exc_info=error)
        return ImageError(
            "image-failed", f"Image generation failed: {type(error).__name__}: {error}"
        )


def _steps_for_strength(steps: int, strength: float) -> int:
    """Smallest step count >= ``steps`` for which diffusers runs at least one img2img step."""
    while int(steps * strength) < 1:
        steps = max(steps + 1, math.ceil(1.0 / strength))
    return steps


def _prepare_init_image(image: Image.Image, width: int, height: int) -> Image.Image:
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
