"""The image engine: every image operation on one shared Stable Diffusion pipeline.

One loaded text-to-image pipeline holds the weights; image-to-image, inpainting,
outpainting, variations, InstructPix2Pix, depth2img and ControlNet are derived from it with
``from_pipe`` (same UNet, VAE and text encoder objects, no second copy). Task models
(an inpainting, InstructPix2Pix or depth UNet, ControlNets, an upscaler) load lazily, only
when configured and first used. Each call validates its request up front, draws all noise
from a CPU ``torch.Generator`` (a seed gives the same image on any device), streams
progress with a cheap latent preview, and honours cancel within one step.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines import masks
from pipelines.errors import ImageError
from pipelines.watermark import watermark_payload

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
MAX_BATCH = 8  # candidates per generate_batch call
INPAINT_STRENGTH = 1.0  # inpaint: the masked area is redrawn from pure noise
OUTPAINT_STRENGTH = 0.9  # outpaint: keeps a hint of the stretched edge colours in the new area
VARIATION_STRENGTHS = {"subtle": 0.3, "strong": 0.7}  # img2img strength of a variation
PIX2PIX_GUIDANCE = 7.5  # text guidance of InstructPix2Pix when the request leaves it out
PIX2PIX_IMAGE_GUIDANCE = 1.5  # how closely InstructPix2Pix sticks to the input image
PIX2PIX_MIN_STEPS = 10  # InstructPix2Pix is not distilled: 1-4 steps give mush
UPSCALER_STEPS = 20  # denoising steps of a diffusion upscaler when the request leaves them out
MAX_UPSCALE_FACTOR = 8
MAX_UPSCALE_SIDE = 4096  # pixels: the longest side an upscale may produce
LANCZOS_LABEL = "lanczos (no upscaler model configured)"
AUTO_TILING_SIDE = 1024  # pixels: above this the VAE decodes in tiles, whatever the setting
OPERATIONS = (
    "generate",
    "img2img",
    "generate_batch",
    "inpaint",
    "outpaint",
    "variation",
    "upscale",
    "instruct_edit",
    "depth",
    "controlnet",
)
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
    if operation not in OPERATIONS:
        raise bad(f"Unknown operation {operation!r}; one of {', '.join(OPERATIONS)}.")


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
    inpaint_model: a dedicated inpainting checkpoint (9-channel UNet): hub id, folder,
        .safetensors or a ``UNet2DConditionModel``. None inpaints with the base UNet.
    upscaler_model: an SD x4 or latent x2 upscaler pipeline (id, folder or pipeline).
        None upscales with a Lanczos resampler.
    pix2pix_model: an InstructPix2Pix checkpoint (8-channel UNet). None makes
        ``instruct_edit`` fall back to img2img.
    depth_model: a depth2img checkpoint (5-channel UNet + DPT estimator, e.g.
        ``stabilityai/stable-diffusion-2-depth``), ``random`` (placeholder) or a loaded
        ``StableDiffusionDepth2ImgPipeline``. None makes ``depth_edit`` fall back to img2img.
    controlnet_models: condition name ("canny", "depth", ...) -> ControlNet id/path/model.
    safety_checker: None (off), a safety-checker id or folder (e.g.
        ``CompVis/stable-diffusion-safety-checker``, loaded on first use) or a checker object
        (``pipelines.safety``). Flagged images are blurred and labelled, never blacked out.
    watermark: False (off), True (the invisible "SDV2" mark) or the payload text/bytes.

    Task models load on first use. Calls are serialised: the pipeline is one piece of
    state, so a second caller waits.
    """

    def __init__(
        self,
        pipe: DiffusionPipeline,
        info: ModelInfo,
        *,
        inpaint_model: Any = None,
        upscaler_model: Any = None,
        pix2pix_model: Any = None,
        depth_model: Any = None,
        controlnet_models: dict[str, Any] | None = None,
        safety_checker: Any = None,
        watermark: bool | str | bytes = False,
    ):
        from diffusers import AutoPipelineForImage2Image

        from pipelines.schedulers import scheduler_name_of

        self.pipe = pipe
        self.info = info
        # Shares every module with ``pipe`` (from_pipe): no second copy of the weights.
        self.img2img_pipe = AutoPipelineForImage2Image.from_pipe(pipe)
        self.img2img_pipe.set_progress_bar_config(disable=True)
        self.inpaint_model = inpaint_model
        self.upscaler_model = upscaler_model
        self.pix2pix_model = pix2pix_model
        self.depth_model = depth_model
        self.controlnet_models = dict(controlnet_models or {})
        self.safety_checker = safety_checker  # setting; resolved to a checker on first use
        self.watermark = watermark_payload(watermark)  # bytes, or None when off
        self._safety = None
        self.sampler = scheduler_name_of(pipe.scheduler)  # table name, None if outside it
        # Derived and task pipelines, built on first use.
        self._inpaint_pipe: DiffusionPipeline | None = None
        self._pix2pix_pipe: DiffusionPipeline | None = None
        self._depth_pipe: DiffusionPipeline | None = None
        self._upscaler_pipe: DiffusionPipeline | None = None
        self._controlnet_pipes: dict[str, DiffusionPipeline] = {}
        self._lock = threading.Lock()  # one denoising run at a time
        self._load_lock = threading.Lock()  # one lazy load at a time

    @classmethod
    def from_model(
        cls,
        model: str,
        device: str = "auto",
        *,
        inpaint_model: Any = None,
        upscaler_model: Any = None,
        pix2pix_model: Any = None,
        depth_model: Any = None,
        controlnet_models: dict[str, Any] | None = None,
        safety_checker: Any = None,
        watermark: bool | str | bytes = False,
        **load_kwargs,
    ) -> ImageEngine:
        """Load ``model`` (see ``load_pipeline``) and wrap it in an engine."""
        from pipelines.loading import load_pipeline

        pipe, info = load_pipeline(model, device, **load_kwargs)
        return cls(
            pipe,
            info,
            inpaint_model=inpaint_model,
            upscaler_model=upscaler_model,
            pix2pix_model=pix2pix_model,
            depth_model=depth_model,
            controlnet_models=controlnet_models,
            safety_checker=safety_checker,
            watermark=watermark,
        )

    def warm_up(self, width: int = 64, height: int = 64, guidance: float | None = None) -> float:
        """Run one tiny generation so the first real request does not pay for first-call setup.

        A compiled model (``image.compile``) specialises on shapes: warm it at the size and
        guidance of real requests, or the first of them compiles again.

        Returns
        -------
        Seconds it took.
        """
        start = time.perf_counter()
        self.generate(
            ImageRequest("warm-up", seed=0, steps=1, guidance=guidance, width=width, height=height)
        )
        elapsed = time.perf_counter() - start
        logger.info("Image engine warmed up in %.2f s", elapsed)
        return elapsed

    # -- text to image -----------------------------------------------------------------------

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

    def generate_batch(
        self,
        request: ImageRequest,
        count: int,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> list[ImageResult]:
        """Draw ``count`` candidates for one prompt, each with its own recorded seed.

        Candidates run one after another, so candidate ``i`` is exactly what ``generate``
        gives for its seed (the edit tree can replay any of them alone).

        Parameters
        ----------
        request: prompt and settings; a seed ``s`` gives the seeds s, s+1, ..., and -1 a
            random seed per candidate.
        count: how many, 1..8.
        on_progress: called with the step over all candidates (``total = count * steps``).
        cancel: stops the current candidate within one step; no result is returned.

        Returns
        -------
        One ``ImageResult`` per candidate (``operation`` "generate_batch", ``batch_index``,
        ``batch_size``).
        """
        # 1. Check inputs, then pick every seed up front.
        check_request(request, "generate_batch")
        if not _is_int(count) or not 1 <= count <= MAX_BATCH:
            raise ImageError(
                "input-invalid",
                f"`count` must be a whole number from 1 to {MAX_BATCH} (got {count!r}).",
            )
        if request.seed == -1:
            seeds = [secrets.randbits(RANDOM_SEED_BITS) for _ in range(count)]
        else:
            seeds = [(request.seed + i) % (MAX_SEED + 1) for i in range(count)]
        # 2. Run each candidate, mapping its progress onto the whole batch.
        results = []
        for index, seed in enumerate(seeds):

            def progress(step, total, preview, index=index):
                if on_progress is not None:
                    on_progress(index * total + step, count * total, preview)

            result = self.generate(replace(request, seed=seed), progress, cancel)
            result.params.update(operation="generate_batch", batch_index=index, batch_size=count)
            results.append(result)
        return results

    # -- image to image ----------------------------------------------------------------------

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
        self._fit_steps(params, request.strength)
        params["strength"] = float(request.strength)
        # 3. Run the denoising loop on the derived img2img pipeline (shared weights).
        call = {"image": image, "strength": float(request.strength)}
        return self._run(self.img2img_pipe, params, call, on_progress, cancel)

    def variation(
        self,
        request: ImageRequest,
        image: Image.Image,
        strength: str | float = "subtle",
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> ImageResult:
        """Another take on ``image``: img2img at a named strength with a fresh seed.

        Parameters
        ----------
        request: prompt and settings (``seed`` -1 draws a new seed; width/height and
            ``strength`` are ignored: the image sets the size, ``strength`` below the change).
        image: the picture to vary; its size is kept (rounded down to a multiple of 8).
        strength: "subtle" (0.3), "strong" (0.7) or a number in (0, 1].
        on_progress, cancel: as for ``generate``.

        Returns
        -------
        The image and its parameters (``operation`` "variation", ``strength``,
        ``variation`` the name or "custom").
        """
        # 1. Resolve the strength and the working size.
        label = strength if isinstance(strength, str) else "custom"
        if isinstance(strength, str):
            if strength not in VARIATION_STRENGTHS:
                raise ImageError(
                    "input-invalid",
                    f"`strength` must be 'subtle', 'strong' or a number in (0, 1] "
                    f"(got {strength!r}).",
                )
            strength = VARIATION_STRENGTHS[strength]
        rgb = _check_image(image, "image")
        width, height = _work_size(rgb.size)
        # 2. img2img at that strength (validates the number too).
        result = self.img2img(
            replace(request, strength=strength, width=width, height=height),
            rgb,
            on_progress,
            cancel,
        )
        result.params.update(operation="variation", variation=label)
        return result

    # -- inpainting and outpainting ----------------------------------------------------------

    def inpaint(
        self,
        request: ImageRequest,
        image: Image.Image,
        mask: Image.Image,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        *,
        strength: float | None = None,
        blend_radius: int = masks.BLEND_RADIUS,
    ) -> ImageResult:
        """Repaint the white part of ``mask``; everything else keeps its exact pixels.

        Parameters
        ----------
        request: prompt and settings (width/height and ``strength`` are ignored: the image
            sets the size and ``strength`` below the change).
        image: the picture to edit, 64..2048 px a side.
        mask: same size as ``image``; white = repaint (``L``/``RGB`` grey levels, or the
            alpha channel of an ``RGBA`` brush layer).
        on_progress, cancel: as for ``generate``.
        strength: how much of the masked area is re-noised, (0, 1]; None = 1.0.
        blend_radius: pixels over which the repainted area fades into the original;
            pixels farther than ``2 * blend_radius`` from the mask are never changed.

        Returns
        -------
        The image (same size as ``image``) and its parameters (``operation`` "inpaint",
        ``strength``, ``mask_bbox``, ``inpaint_model``).
        """
        # 1. Check inputs: the request, the image, the mask against the image.
        check_request(request, "inpaint")
        rgb = _check_image(image, "image")
        hard = masks.prepare_mask(mask, rgb.size)
        strength = _check_strength(INPAINT_STRENGTH if strength is None else strength)
        if not _is_int(blend_radius) or not 0 <= blend_radius <= 64:
            raise ImageError(
                "input-invalid", f"`blend_radius` must be 0..64 pixels (got {blend_radius!r})."
            )
        # 2. Record everything, then repaint and paste the original back outside the mask.
        params = self._base_params(request, "inpaint")
        params.update(
            width=rgb.width,
            height=rgb.height,
            mask_bbox=list(hard.getbbox()),
            blend_radius=blend_radius,
        )
        alpha = masks.blend_alpha(hard, blend_radius)
        return self._repaint(params, rgb, hard, alpha, strength, on_progress, cancel)

    def outpaint(
        self,
        request: ImageRequest,
        image: Image.Image,
        direction: str,
        pixels: int,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        *,
        strength: float | None = None,
    ) -> ImageResult:
        """Extend the picture by ``pixels`` in ``direction`` and paint the new area.

        The new area starts as the stretched edge plus noise; the model redraws it and a
        seam band of the old image, which is then faded back in, so the original farther
        than the seam (``masks.SEAM_PIXELS``) from the new edge keeps its exact pixels.

        Parameters
        ----------
        request: prompt and settings (width/height and ``strength`` are ignored).
        image: the picture to extend, 64..2048 px a side.
        direction: "left", "right", "up", "down" or "all".
        pixels: how far, a multiple of 8 from 8 to 1024; the result stays within 2048 px.
        on_progress, cancel: as for ``generate``.
        strength: re-noising of the filled area, (0, 1]; None = 0.9.

        Returns
        -------
        The larger image and its parameters (``operation`` "outpaint", ``direction``,
        ``pixels``, ``offset``: where the original sits in the new canvas).
        """
        # 1. Check inputs.
        check_request(request, "outpaint")
        rgb = _check_image(image, "image")
        masks.check_outpaint(direction, pixels, rgb.size, MAX_SIDE)
        strength = _check_strength(OUTPAINT_STRENGTH if strength is None else strength)
        params = self._base_params(request, "outpaint")
        # 2. Build the canvas (seeded fill), the repaint mask and the seam alpha.
        canvas, hard, alpha, offset = masks.outpaint_canvas(
            rgb, direction, pixels, seed=params["seed"]
        )
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
        return self._repaint(params, canvas, hard, alpha, strength, on_progress, cancel)

    # -- instruct edit, depth, ControlNet, upscale -------------------------------------------

    def instruct_edit(
        self,
        request: ImageRequest,
        image: Image.Image,
        instruction: str,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        *,
        image_guidance: float = PIX2PIX_IMAGE_GUIDANCE,
    ) -> ImageResult:
        """Apply an instruction ("make it snowy") to ``image``.

        With ``pix2pix_model`` configured this runs InstructPix2Pix on the instruction;
        otherwise img2img on ``request.prompt`` (the caller's rewrite of the whole picture
        with the change applied) at ``request.strength``.

        Parameters
        ----------
        request: prompt and settings; width/height are ignored (the image sets the size).
        image: the picture to edit.
        instruction: the user's words, e.g. "turn the sky purple".
        on_progress, cancel: as for ``generate``.
        image_guidance: InstructPix2Pix only: > 1 keeps closer to the input image.

        Returns
        -------
        The image and its parameters: ``instruction``, ``edit_path`` "pix2pix" (``operation``
        "instruct_edit") or "img2img-fallback" (``operation`` "img2img", what actually ran,
        with ``requested_operation`` "instruct_edit").
        """
        # 1. Check inputs.
        check_request(request, "instruct_edit")
        rgb = _check_image(image, "image")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ImageError(
                "input-invalid", "`instruction` is empty: say what to change, e.g. 'add snow'."
            )
        if len(instruction) > MAX_PROMPT_CHARS:
            raise ImageError(
                "input-invalid", f"`instruction` is over {MAX_PROMPT_CHARS} characters."
            )
        width, height = _work_size(rgb.size)
        # 2. Without InstructPix2Pix: img2img on the rewritten prompt.
        if self.pix2pix_model is None:
            result = self.img2img(
                replace(request, width=width, height=height), rgb, on_progress, cancel
            )
            # The node records what ran ("img2img"); edit_path says why.
            result.params.update(
                requested_operation="instruct_edit",
                instruction=instruction,
                edit_path="img2img-fallback",
            )
            return result
        # 3. InstructPix2Pix: the instruction is the prompt; guidance needs CFG on.
        pipe = self._get_pix2pix_pipe()
        params = self._base_params(replace(request, prompt=instruction), "instruct_edit")
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
            pix2pix_model=_label(self.pix2pix_model),
        )
        call = {"image": _resize(rgb, (width, height)), "image_guidance_scale": image_guidance}
        return self._run(pipe, params, call, on_progress, cancel)

    def depth_edit(
        self,
        request: ImageRequest,
        image: Image.Image,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        *,
        depth_map: Any = None,
    ) -> ImageResult:
        """Redraw ``image`` on ``request.prompt`` while keeping its depth (what is near, what far).

        With ``depth_model`` configured this runs depth2img: the picture's depth map (from the
        DPT estimator, or ``depth_map``) conditions every step, so the layout holds even at a
        high ``request.strength``. Otherwise plain img2img at ``request.strength``.

        Parameters
        ----------
        request: prompt and settings; width/height are ignored (the image sets the size).
            depth2img only: steps left out become at least 10 and guidance 7.5 (depth models
            are not distilled).
        image: the picture to redraw, 64..2048 px a side.
        on_progress, cancel: as for ``generate``.
        depth_map: the picture's depth at its size, a numpy array (h, w) or a PIL image,
            larger = nearer (``pipelines.depth.prepare_depth_map``); skips the estimator.
            None estimates it. Checked even when no depth model is configured.

        Returns
        -------
        The image (same size as ``image``) and its parameters: ``edit_path`` "depth2img"
        (``operation`` "depth", ``depth_source`` "estimator" or "given", ``depth_model``) or
        "img2img-fallback" (``operation`` "img2img", what actually ran, with
        ``requested_operation`` "depth").
        """
        from pipelines import depth

        # 1. Check inputs, the depth map too, so a bad request fails the same on either path.
        check_request(request, "depth")
        rgb = _check_image(image, "image")
        given = None if depth_map is None else depth.prepare_depth_map(depth_map, rgb.size)
        size = _work_size(rgb.size)
        strength = float(request.strength)
        call = {"image": _resize(rgb, size), "strength": strength}

        def back_to_size(out: Image.Image) -> Image.Image:  # work size -> the input's size
            return _resize(out, rgb.size)

        # 2. Without a depth model: img2img on the prompt. The node records what ran
        #    ("img2img"); edit_path says why.
        if self.depth_model is None:
            if given is not None:
                logger.info("depth: no `image.depth_model` configured; the depth map is unused")
            params = self._base_params(request, "img2img")
            self._fit_steps(params, strength)
            params.update(
                width=rgb.width,
                height=rgb.height,
                strength=strength,
                requested_operation="depth",
                edit_path="img2img-fallback",
            )
            return self._run(
                self.img2img_pipe, params, call, on_progress, cancel, finish=back_to_size
            )
        # 3. depth2img, derived from the base pipeline (its VAE and text encoder, shared).
        pipe = self._get_depth_pipe()
        params = self._base_params(request, "depth")
        if request.steps is None:
            params["steps"] = max(params["steps"], depth.DEPTH_MIN_STEPS)
        if request.guidance is None:
            params["guidance"] = depth.DEPTH_GUIDANCE
        self._fit_steps(params, strength)
        params.update(
            width=rgb.width,
            height=rgb.height,
            strength=strength,
            edit_path="depth2img",
            depth_source="estimator" if given is None else "given",
            depth_model=_label(self.depth_model),
        )
        if depth.is_random(self.depth_model):
            params["placeholder"] = True  # random depth weights: noise even on a real base
        if given is not None:
            call["depth_map"] = given
        with warnings.catch_warnings():
            # diffusers' depth2img asks for CPU autocast in float32 on every call, which torch
            # declines with a warning each time; nothing is wrong.
            warnings.filterwarnings("ignore", message="In CPU autocast", category=UserWarning)
            return self._run(pipe, params, call, on_progress, cancel, finish=back_to_size)

    def controlnet(
        self,
        request: ImageRequest,
        image: Image.Image,
        condition: str = "canny",
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        *,
        conditioning_scale: float = 1.0,
    ) -> ImageResult:
        """Draw a new picture that follows the structure of ``image`` through a ControlNet.

        Parameters
        ----------
        request: prompt and settings; width/height are ignored (the image sets the size).
        image: the source picture. For "canny" its edges are computed here (OpenCV, or a
            numpy fallback); for any other condition it must already be the condition map
            (a depth map, a pose skeleton, ...).
        condition: a key of the ``controlnet_models`` setting.
        on_progress, cancel: as for ``generate``.
        conditioning_scale: how strongly the ControlNet steers, 0..2.

        Returns
        -------
        The image and its parameters (``operation`` "controlnet", ``condition``,
        ``controlnet_model``, ``conditioning_scale``).
        """
        from pipelines.conditions import CONDITIONS, canny_map

        # 1. Check inputs; an unconfigured condition names the setting to fill in.
        check_request(request, "controlnet")
        rgb = _check_image(image, "image")
        if condition not in self.controlnet_models:
            configured = ", ".join(self.controlnet_models) or "none"
            raise ImageError(
                "model-missing",
                f"No ControlNet is configured for `condition` {condition!r} (configured: "
                f"{configured}). Set `image.controlnet_models.{condition}` to a ControlNet "
                "id or path, e.g. lllyasviel/sd-controlnet-canny for SD 1.5.",
            )
        if not _is_number(conditioning_scale) or not 0.0 <= conditioning_scale <= 2.0:
            raise ImageError(
                "input-invalid",
                f"`conditioning_scale` must be 0..2 (got {conditioning_scale!r}).",
            )
        width, height = _work_size(rgb.size)
        # 2. The condition map.
        if condition == "canny":
            control = canny_map(rgb)
        else:
            if condition not in CONDITIONS:
                logger.info("controlnet: using the image as the %s map as it is", condition)
            control = rgb
        control = _resize(control, (width, height))
        # 3. Run the ControlNet pipeline derived from the base (shared weights).
        pipe = self._get_controlnet_pipe(condition)
        params = self._base_params(request, "controlnet")
        params.update(
            width=width,
            height=height,
            condition=condition,
            controlnet_model=_label(self.controlnet_models[condition]),
            conditioning_scale=float(conditioning_scale),
        )
        call = {
            "image": control,
            "width": width,
            "height": height,
            "controlnet_conditioning_scale": float(conditioning_scale),
        }
        return self._run(pipe, params, call, on_progress, cancel)

    def upscale(
        self,
        image: Image.Image,
        factor: float = 2,
        request: ImageRequest | None = None,
        on_progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> ImageResult:
        """Enlarge ``image`` by ``factor``.

        With ``upscaler_model`` configured a diffusion upscaler adds detail (x4 or latent
        x2; other factors are reached with a final Lanczos resize). Otherwise a plain
        Lanczos resampler, labelled so in the parameters.

        Parameters
        ----------
        image: the picture to enlarge.
        factor: more than 1, at most 8; the longest output side must stay within 4096 px.
        request: prompt and settings for a diffusion upscaler (optional; prompt may be
            empty). Width/height and strength are ignored.
        on_progress, cancel: as for ``generate`` (diffusion upscaler only).

        Returns
        -------
        The enlarged image and its parameters (``operation`` "upscale", ``factor``,
        ``upscaler``, ``source_size``).
        """
        # 1. Check inputs.
        rgb = _check_image(image, "image", min_side=8, max_side=MAX_UPSCALE_SIDE)
        if not _is_number(factor) or not 1.0 < factor <= MAX_UPSCALE_FACTOR:
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
            check_request(request, "upscale")
        # 2. No upscaler model: Lanczos, no lock needed (no pipeline state is touched).
        if self.upscaler_model is None:
            from PIL import Image

            start = time.perf_counter()
            out = rgb.resize((width, height), Image.Resampling.LANCZOS)
            # No seed, steps, guidance, scheduler or model: a resampler has none of them.
            params = {
                "prompt": request.prompt if request else "",
                "negative_prompt": request.negative_prompt if request else "",
                "strength": None,
                "width": width,
                "height": height,
                "operation": "upscale",
                "placeholder": False,
                "factor": float(factor),
                "upscaler": LANCZOS_LABEL,
                "source_size": list(rgb.size),
                "elapsed_s": round(time.perf_counter() - start, 3),
            }
            return ImageResult(image=self._postprocess(out, params), params=params)
        # 3. A diffusion upscaler: one pass, then Lanczos to the exact size.
        from pipelines.extra_models import upscaler_factor

        pipe = self._get_upscaler_pipe()
        native = upscaler_factor(pipe)
        request = request or ImageRequest(prompt="")
        params = self._base_params(replace(request, prompt=request.prompt or ""), "upscale")
        if request.steps is None:
            params["steps"] = UPSCALER_STEPS
        if request.guidance is None:
            params["guidance"] = 0.0 if native == 2 else 9.0  # the models' published defaults
        params.update(
            width=width,
            height=height,
            factor=float(factor),
            upscaler=_label(self.upscaler_model),
            scheduler=type(pipe.scheduler).__name__,
            source_size=list(rgb.size),
        )
        source = _resize(rgb, _work_size(rgb.size, min_side=8))
        return self._run(
            pipe,
            params,
            {"image": source},
            on_progress,
            cancel,
            legacy=True,
            finish=lambda image: _resize(image, (width, height)),
        )

    # -- schedulers --------------------------------------------------------------------------

    def set_scheduler(self, name: str) -> str:
        """Switch the sampler of the base pipeline and every pipeline derived from it.

        Parameters
        ----------
        name: a key of ``pipelines.schedulers.SCHEDULERS`` ("euler_a", "dpm++_2m_karras", ...).

        Returns
        -------
        The diffusers class name now in use. Later results record ``sampler`` (the name)
        and ``scheduler`` (the class).

        Raises
        ------
        ImageError("input-invalid") listing the known names.
        """
        from pipelines.schedulers import make_scheduler, scheduler_name_of

        with self._lock:
            scheduler = make_scheduler(name, self.pipe.scheduler.config)
            for pipe in self._derived_pipes():
                pipe.scheduler = scheduler  # runs are serialised, so one instance is enough
            self.sampler = scheduler_name_of(scheduler)
        return type(scheduler).__name__

    # -- internals ---------------------------------------------------------------------------

    def _derived_pipes(self) -> list:
        """The base pipeline and every pipeline sharing its weights (not the upscaler)."""
        pipes = [self.pipe, self.img2img_pipe, self._inpaint_pipe, self._pix2pix_pipe]
        pipes.append(self._depth_pipe)
        pipes += list(self._controlnet_pipes.values())
        return [p for p in pipes if p is not None]

    def _derive(self, factory, **components) -> DiffusionPipeline:
        """``factory.from_pipe(self.pipe, **components)`` on the current scheduler, quiet."""
        pipe = factory.from_pipe(self.pipe, **components)
        pipe.scheduler = self.pipe.scheduler
        pipe.set_progress_bar_config(disable=True)
        return pipe

    @property
    def inpaint_pipe(self) -> DiffusionPipeline:
        """The inpainting pipeline: the base UNet ("legacy" 4-channel inpainting) or the
        configured inpainting UNet, with the base's VAE and text encoder."""
        with self._load_lock:
            if self._inpaint_pipe is None:
                from diffusers import AutoPipelineForInpainting

                components = {}
                if self.inpaint_model is not None:
                    from pipelines.extra_models import load_unet

                    components["unet"] = load_unet(
                        self.inpaint_model, "image.inpaint_model", self.pipe, in_channels=9
                    )
                self._inpaint_pipe = self._derive(AutoPipelineForInpainting, **components)
            return self._inpaint_pipe

    def _get_pix2pix_pipe(self) -> DiffusionPipeline:
        with self._load_lock:
            if self._pix2pix_pipe is None:
                from diffusers import StableDiffusionInstructPix2PixPipeline

                from pipelines.extra_models import load_unet

                unet = load_unet(self.pix2pix_model, "image.pix2pix_model", self.pipe, 8)
                self._pix2pix_pipe = self._derive(StableDiffusionInstructPix2PixPipeline, unet=unet)
            return self._pix2pix_pipe

    def _get_depth_pipe(self) -> DiffusionPipeline:
        with self._load_lock:
            if self._depth_pipe is None:
                from diffusers import StableDiffusionDepth2ImgPipeline

                from pipelines.depth import load_depth_parts

                parts = load_depth_parts(self.depth_model, self.pipe)
                self._depth_pipe = self._derive(StableDiffusionDepth2ImgPipeline, **parts)
            return self._depth_pipe

    def _get_controlnet_pipe(self, condition: str) -> DiffusionPipeline:
        with self._load_lock:
            if condition not in self._controlnet_pipes:
                from diffusers import StableDiffusionControlNetPipeline

                from pipelines.extra_models import load_controlnet

                net = load_controlnet(
                    self.controlnet_models[condition],
                    f"image.controlnet_models.{condition}",
                    self.pipe,
                )
                self._controlnet_pipes[condition] = self._derive(
                    StableDiffusionControlNetPipeline, controlnet=net
                )
            return self._controlnet_pipes[condition]

    def _get_upscaler_pipe(self) -> DiffusionPipeline:
        with self._load_lock:
            if self._upscaler_pipe is None:
                from pipelines.extra_models import load_upscaler

                self._upscaler_pipe = load_upscaler(
                    self.upscaler_model, "image.upscaler_model", self.pipe
                )
            return self._upscaler_pipe

    def _repaint(
        self,
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
        size = _work_size(canvas.size)
        image = _resize(canvas, size)
        mask = hard if hard.size == size else hard.resize(size, Image.Resampling.NEAREST)
        # 2. Record the strength and make sure at least one step runs.
        params["strength"] = float(strength)
        params["inpaint_model"] = (
            _label(self.inpaint_model) if self.inpaint_model is not None else None
        )
        self._fit_steps(params, strength)
        # 3. Denoise on the inpainting pipeline (shared weights).
        call = {
            "image": image,
            "mask_image": mask,
            "width": size[0],
            "height": size[1],
            "strength": float(strength),
        }
        # 4. Paste the original back wherever alpha is 0: those pixels stay exactly as they were.
        return self._run(
            self.inpaint_pipe,
            params,
            call,
            on_progress,
            cancel,
            finish=lambda image: masks.composite(canvas, image, alpha),
        )

    def _fit_steps(self, params: dict[str, Any], strength: float) -> None:
        """Raise ``params["steps"]`` so diffusers runs at least one step at ``strength``."""
        steps = _steps_for_strength(params["steps"], strength)
        if steps != params["steps"]:
            logger.info(
                "%s: %d steps at strength %.2f would run no step; using %d steps",
                params["operation"],
                params["steps"],
                strength,
                steps,
            )
            params["steps"] = steps

    def _base_params(self, request: ImageRequest, operation: str) -> dict[str, Any]:
        seed = request.seed if request.seed != -1 else secrets.randbits(RANDOM_SEED_BITS)
        steps = request.steps if request.steps is not None else self.info.default_steps
        guidance = request.guidance if request.guidance is not None else self.info.default_guidance
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
            "sampler": self.sampler,
            "placeholder": self.info.placeholder,
            "elapsed_s": None,
        }

    def _encode(self, pipe: DiffusionPipeline, params: dict[str, Any]) -> dict[str, Any]:
        """The text arguments of one run: the prompts as text, or weighted / long-prompt
        embeddings (``pipelines.prompt_weighting``). Records ``prompt_chunks`` (75-token
        windows) and ``prompt_weighting`` (weights applied) in ``params``.
        """
        from pipelines import prompt_weighting

        prompt, negative = params["prompt"], params["negative_prompt"]
        text = {"prompt": prompt, "negative_prompt": negative or None}
        if getattr(pipe, "tokenizer", None) is None:
            return text
        plan = prompt_weighting.plan_prompt(pipe.tokenizer, prompt, negative)
        supported = prompt_weighting.supports(pipe)
        params["prompt_chunks"] = plan.n_chunks if supported else 1
        params["prompt_weighting"] = plan.weighted and supported
        if plan.plain:
            return text
        if not supported:
            logger.warning(
                "%s: prompt weights and long prompts are not supported by %s; "
                "the text goes in as typed",
                params["operation"],
                type(pipe).__name__,
            )
            for name, value in (("prompt", prompt), ("negative_prompt", negative)):
                if value:
                    self._warn_if_truncated(value, name)
            return text
        if plan.n_chunks > 1:
            logger.info(
                "`prompt` is over %d CLIP tokens: encoded in %d windows, not truncated",
                prompt_weighting.CHUNK_TOKENS,
                plan.n_chunks,
            )
        embeds, negative_embeds = prompt_weighting.encode_prompt(pipe, prompt, negative)
        return {"prompt_embeds": embeds, "negative_prompt_embeds": negative_embeds}

    def _postprocess(self, image: Image.Image, params: dict[str, Any]) -> Image.Image:
        """Optional safety check (flagged: blurred and labelled) and invisible watermark."""
        from pipelines import safety, watermark

        if self.safety_checker is not None:
            with self._load_lock:
                if self._safety is None:
                    self._safety = safety.resolve_checker(self.safety_checker, self.info.device)
            image = safety.apply_safety(self._safety, image, params)
        if self.watermark is not None:
            image = watermark.apply_watermark(image, params, self.watermark)
        return image

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
        legacy: bool = False,
        finish: Callable[[Image.Image], Image.Image] | None = None,
    ) -> ImageResult:
        """One denoising run under the engine lock.

        ``legacy`` is for pipelines that only offer the old ``callback(step, t, latents)``
        (the diffusers upscalers); all others use ``callback_on_step_end``. ``finish``
        (composite, final resize) runs on the decoded image before ``_postprocess``.
        """
        import torch

        def on_step_end(p, step: int, timestep, tensors: dict) -> dict:
            if cancel is not None and cancel.is_set():
                # diffusers' own flag, and an exception so the VAE decode is skipped too.
                p._interrupt = True
                raise _Cancelled
            if on_progress is not None:
                on_progress(step + 1, p.num_timesteps, latents_to_preview(tensors["latents"]))
            return tensors

        def on_step_legacy(step: int, timestep, latents) -> None:
            if cancel is not None and cancel.is_set():
                raise _Cancelled
            if on_progress is not None:
                on_progress(step + 1, params["steps"], latents_to_preview(latents))

        if legacy:
            callbacks = {"callback": on_step_legacy, "callback_steps": 1}
        else:
            callbacks = {
                "callback_on_step_end": on_step_end,
                "callback_on_step_end_tensor_inputs": ["latents"],
            }
        with self._lock:
            if cancel is not None and cancel.is_set():
                raise ImageError("image-cancelled", "The image was cancelled before it started.")
            start = time.perf_counter()
            tiled_here = self._auto_tiling(pipe, params)
            try:
                # NaN latents would be cast to a garbage picture with only a warning; raise.
                with np.errstate(invalid="raise"):
                    output = pipe(
                        **self._encode(pipe, params),
                        num_inference_steps=params["steps"],
                        guidance_scale=params["guidance"],
                        # CPU generator: the same seed gives the same noise on any device.
                        generator=torch.Generator(device="cpu").manual_seed(params["seed"]),
                        output_type="pil",
                        **callbacks,
                        **call,
                    )
            except FloatingPointError as e:
                raise ImageError(
                    "image-failed",
                    f"The {params['operation']} model produced invalid numbers (NaN) instead of a "
                    "picture. In float16 this is the known VAE overflow: set image.dtype to "
                    "float32, or use a VAE fixed for float16.",
                ) from e
            except _Cancelled:
                logger.info("Image %s cancelled", params["operation"])
                raise ImageError("image-cancelled", "The image was cancelled.") from None
            except ImageError:
                raise
            except Exception as e:
                raise self._translate_error(e) from e
            finally:
                if tiled_here:
                    pipe.vae.disable_tiling()
            params["elapsed_s"] = round(time.perf_counter() - start, 3)
        image = output.images[0].convert("RGB")
        image = self._postprocess(finish(image) if finish else image, params)
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

    @staticmethod
    def _auto_tiling(pipe: DiffusionPipeline, params: dict[str, Any]) -> bool:
        """Turn VAE tiling on for one run of a large image; True if it was off before."""
        vae = getattr(pipe, "vae", None)
        big = max(params.get("width") or 0, params.get("height") or 0) > AUTO_TILING_SIDE
        if not big or vae is None or getattr(vae, "use_tiling", True):
            return False
        logger.info(
            "%dx%d is over %d px: decoding with VAE tiling for this image",
            params["width"],
            params["height"],
            AUTO_TILING_SIDE,
        )
        vae.enable_tiling()
        return True

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


def _check_strength(strength) -> float:
    if not _is_number(strength) or not 0.0 < strength <= 1.0:
        raise ImageError(
            "input-invalid", f"`strength` must be above 0 and at most 1 (got {strength!r})."
        )
    return float(strength)


def _check_image(
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


def _work_size(size: tuple[int, int], min_side: int = MIN_SIDE) -> tuple[int, int]:
    """``size`` rounded down to multiples of 8 (the VAE factor), at least ``min_side``."""
    return tuple(max(min_side, side // 8 * 8) for side in size)


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    from PIL import Image

    return image if image.size == tuple(size) else image.resize(size, Image.Resampling.LANCZOS)


def _label(model: Any) -> str:
    """How a model setting is recorded in params: its id/path, or the class of an object."""
    return str(model) if isinstance(model, str | os.PathLike) else type(model).__name__


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
