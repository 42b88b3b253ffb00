"""The image engine: every image operation on one shared Stable Diffusion pipeline.

One loaded text-to-image pipeline holds the weights; image-to-image, inpainting,
outpainting, variations, InstructPix2Pix, depth2img and ControlNet are derived from it with
``from_pipe`` (same UNet, VAE and text encoder objects, no second copy). Task models
(an inpainting, InstructPix2Pix or depth UNet, ControlNets, an upscaler) load lazily, only
when configured and first used. Each call validates its request up front, draws all noise
from a CPU ``torch.Generator`` (a seed gives the same image on any device), streams
progress with a preview, and honours cancel within one step.

This module is the facade; the work lives in modules by job:

- ``pipelines.image_types``: ``ImageRequest`` / ``ImageResult`` and the input checks;
- ``pipelines.operations``: the ``Operation`` names;
- ``pipelines.denoise``: one denoising run (previews, cancel, NaN and OOM handling);
- ``pipelines.task_pipelines``: the pipelines derived from the base, built on first use;
- ``pipelines.repaint`` (inpaint, outpaint), ``pipelines.image_edits`` (variation,
  instruct edit), ``pipelines.structure_edits`` (depth, ControlNet), ``pipelines.upscaling``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipelines import image_edits, masks, repaint, structure_edits, upscaling
from pipelines.denoise import AUTO_TILING_SIDE, DenoiseRunner
from pipelines.errors import ImageError
from pipelines.image_edits import (
    PIX2PIX_GUIDANCE,
    PIX2PIX_IMAGE_GUIDANCE,
    PIX2PIX_MIN_STEPS,
    VARIATION_STRENGTHS,
)
from pipelines.image_types import (
    MAX_BATCH,
    MAX_GUIDANCE,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_SIDE,
    MAX_STEPS,
    MIN_SIDE,
    OPERATIONS,
    RANDOM_SEED_BITS,
    ImageRequest,
    ImageResult,
    ProgressFn,
    check_request,
    fit_steps,
    is_int,
    prepare_init_image,
)
from pipelines.operations import Operation
from pipelines.postprocess import Postprocess
from pipelines.previews import LATENT_RGB_FACTORS, PREVIEW_MAX_SIDE, latents_to_preview
from pipelines.repaint import INPAINT_STRENGTH, OUTPAINT_STRENGTH
from pipelines.task_pipelines import TaskPipelines
from pipelines.text_conditioning import PromptEncoder
from pipelines.upscaling import LANCZOS_LABEL, MAX_UPSCALE_FACTOR, MAX_UPSCALE_SIDE, UPSCALER_STEPS

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline
    from PIL import Image

    from pipelines.loading import ModelInfo

__all__ = [  # what other packages import from here; each name lives in its own module
    "AUTO_TILING_SIDE",
    "INPAINT_STRENGTH",
    "LANCZOS_LABEL",
    "LATENT_RGB_FACTORS",
    "MAX_BATCH",
    "MAX_GUIDANCE",
    "MAX_PROMPT_CHARS",
    "MAX_SEED",
    "MAX_SIDE",
    "MAX_STEPS",
    "MAX_UPSCALE_FACTOR",
    "MAX_UPSCALE_SIDE",
    "MIN_SIDE",
    "OPERATIONS",
    "OUTPAINT_STRENGTH",
    "PIX2PIX_GUIDANCE",
    "PIX2PIX_IMAGE_GUIDANCE",
    "PIX2PIX_MIN_STEPS",
    "PREVIEW_MAX_SIDE",
    "UPSCALER_STEPS",
    "VARIATION_STRENGTHS",
    "ImageEngine",
    "ImageRequest",
    "ImageResult",
    "Operation",
    "ProgressFn",
    "check_request",
    "latents_to_preview",
]

logger = logging.getLogger(__name__)


class ImageEngine:
    """Generate and edit images with one loaded pipeline.

    Parameters
    ----------
    pipe: a loaded text-to-image pipeline (``pipelines.loading.load_pipeline``).
    info: its ``ModelInfo`` (label, defaults, device, the speed-ups applied).
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
    state, so a second caller waits. ``info.speedups`` holding ``bf16_autocast`` runs every
    call under CPU bf16 autocast, ``prompt_cache`` reuses prompt embeddings.
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
        from pipelines.schedulers import scheduler_name_of

        self.info = info
        self.tasks = TaskPipelines(
            pipe,
            inpaint_model=inpaint_model,
            upscaler_model=upscaler_model,
            pix2pix_model=pix2pix_model,
            depth_model=depth_model,
            controlnet_models=controlnet_models,
        )
        self.postprocess = Postprocess(safety_checker, watermark, info.device)
        speedups = set(getattr(info, "speedups", ()) or ())
        self.runner = DenoiseRunner(
            info.device,
            self.postprocess,
            PromptEncoder(cache="prompt_cache" in speedups),
            bf16_autocast="bf16_autocast" in speedups,
        )
        self.sampler = scheduler_name_of(pipe.scheduler)  # table name, None if outside it

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

    # -- the shared state, as attributes callers (and tests) read and replace ----------------

    @property
    def pipe(self) -> DiffusionPipeline:
        """The loaded text-to-image pipeline every other pipeline derives from."""
        return self.tasks.base

    @pipe.setter
    def pipe(self, value: DiffusionPipeline) -> None:
        self.tasks.base = value

    @property
    def img2img_pipe(self) -> DiffusionPipeline:
        return self.tasks.img2img

    @property
    def inpaint_pipe(self) -> DiffusionPipeline:
        """The inpainting pipeline (built on first use)."""
        return self.tasks.inpaint()

    inpaint_model = property(
        lambda self: self.tasks.inpaint_model,
        lambda self, value: setattr(self.tasks, "inpaint_model", value),
    )
    upscaler_model = property(
        lambda self: self.tasks.upscaler_model,
        lambda self, value: setattr(self.tasks, "upscaler_model", value),
    )
    pix2pix_model = property(
        lambda self: self.tasks.pix2pix_model,
        lambda self, value: setattr(self.tasks, "pix2pix_model", value),
    )
    depth_model = property(
        lambda self: self.tasks.depth_model,
        lambda self, value: setattr(self.tasks, "depth_model", value),
    )
    controlnet_models = property(lambda self: self.tasks.controlnet_models)
    # The task pipelines as built so far (None / empty until first use).
    _inpaint_pipe = property(lambda self: self.tasks.inpaint_pipe)
    _pix2pix_pipe = property(lambda self: self.tasks.pix2pix_pipe)
    _depth_pipe = property(lambda self: self.tasks.depth_pipe)
    _upscaler_pipe = property(lambda self: self.tasks.upscaler_pipe)
    _controlnet_pipes = property(lambda self: self.tasks.controlnet_pipes)

    def _get_pix2pix_pipe(self) -> DiffusionPipeline:
        return self.tasks.pix2pix()

    def _get_depth_pipe(self) -> DiffusionPipeline:
        return self.tasks.depth()

    def _get_controlnet_pipe(self, condition: str) -> DiffusionPipeline:
        return self.tasks.controlnet(condition)

    def _get_upscaler_pipe(self) -> DiffusionPipeline:
        return self.tasks.upscaler()

    def _postprocess(self, image: Image.Image, params: dict[str, Any]) -> Image.Image:
        return self.postprocess(image, params)

    @property
    def safety_checker(self) -> Any:
        return self.postprocess.safety_checker

    @property
    def watermark(self) -> bytes | None:
        return self.postprocess.watermark

    @property
    def prompt_cache_hits(self) -> int:
        """Runs whose prompt embeddings came from the cache (``prompt_cache`` speed-up)."""
        return self.runner.prompts.hits

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
        check_request(request, Operation.GENERATE)
        params = self.params_for(request, Operation.GENERATE)
        # 2. Run the denoising loop on the shared pipeline.
        call = {"width": request.width, "height": request.height}
        return self.runner.run(self.pipe, params, call, on_progress, cancel)

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
        check_request(request, Operation.GENERATE_BATCH)
        if not is_int(count) or not 1 <= count <= MAX_BATCH:
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
            result.params.update(
                operation=str(Operation.GENERATE_BATCH), batch_index=index, batch_size=count
            )
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
        check_request(request, Operation.IMG2IMG)
        if not isinstance(init_image, Image.Image):
            raise ImageError("input-invalid", "`init_image` must be a PIL image.")
        image = prepare_init_image(init_image, request.width, request.height)
        params = self.params_for(request, Operation.IMG2IMG)
        # 2. Make sure at least one denoising step runs (diffusers runs int(steps * strength)).
        fit_steps(params, request.strength)
        params["strength"] = float(request.strength)
        # 3. Run the denoising loop on the derived img2img pipeline (shared weights).
        call = {"image": image, "strength": float(request.strength)}
        return self.runner.run(self.img2img_pipe, params, call, on_progress, cancel)

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
        return image_edits.variation(self, request, image, strength, on_progress, cancel)

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
        return repaint.inpaint(
            self,
            request,
            image,
            mask,
            on_progress,
            cancel,
            strength=strength,
            blend_radius=blend_radius,
        )

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
        return repaint.outpaint(
            self, request, image, direction, pixels, on_progress, cancel, strength=strength
        )

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
        return image_edits.instruct_edit(
            self, request, image, instruction, on_progress, cancel, image_guidance=image_guidance
        )

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
        return structure_edits.depth_edit(
            self, request, image, on_progress, cancel, depth_map=depth_map
        )

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
        return structure_edits.controlnet(
            self,
            request,
            image,
            condition,
            on_progress,
            cancel,
            conditioning_scale=conditioning_scale,
        )

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
        return upscaling.upscale(self, image, factor, request, on_progress, cancel)

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

        with self.runner.lock:
            scheduler = make_scheduler(name, self.pipe.scheduler.config)
            for pipe in self.tasks.sharing():
                pipe.scheduler = scheduler  # runs are serialised, so one instance is enough
            self.sampler = scheduler_name_of(scheduler)
        return type(scheduler).__name__

    # -- what every run records --------------------------------------------------------------

    def params_for(self, request: ImageRequest, operation: str) -> dict[str, Any]:
        """The recorded parameters of a run of ``operation`` for ``request``: the seed drawn
        (for -1), the model's default steps and guidance filled in, the model and sampler."""
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
            "operation": str(operation),
            "scheduler": type(self.pipe.scheduler).__name__,
            "sampler": self.sampler,
            "placeholder": self.info.placeholder,
            "elapsed_s": None,
        }

    _base_params = params_for  # the name before the split
