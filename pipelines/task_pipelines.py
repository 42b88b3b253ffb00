"""The pipelines every operation runs on, all derived from the one loaded base pipeline.

image-to-image comes with the base; inpainting, InstructPix2Pix, depth2img and each ControlNet
are derived from it with ``from_pipe`` on first use (the same UNet, VAE and text encoder
objects: no second copy of the weights), taking a task UNet / ControlNet / depth estimator only
when one is configured. The upscaler is a pipeline of its own (its own UNet and VAE). Loads are
serialised, so two callers never load the same model twice.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline


class TaskPipelines:
    """The base pipeline, its image-to-image twin and the task pipelines, built lazily.

    Parameters
    ----------
    pipe: the loaded text-to-image pipeline.
    inpaint_model, upscaler_model, pix2pix_model, depth_model, controlnet_models: the task
        model settings (see ``ImageEngine``); None goes without.
    """

    def __init__(
        self,
        pipe: DiffusionPipeline,
        *,
        inpaint_model: Any = None,
        upscaler_model: Any = None,
        pix2pix_model: Any = None,
        depth_model: Any = None,
        controlnet_models: dict[str, Any] | None = None,
    ):
        from diffusers import AutoPipelineForImage2Image

        self.base = pipe
        # Shares every module with ``pipe`` (from_pipe): no second copy of the weights.
        self.img2img = AutoPipelineForImage2Image.from_pipe(pipe)
        self.img2img.set_progress_bar_config(disable=True)
        self.inpaint_model = inpaint_model
        self.upscaler_model = upscaler_model
        self.pix2pix_model = pix2pix_model
        self.depth_model = depth_model
        self.controlnet_models = dict(controlnet_models or {})
        self.inpaint_pipe: DiffusionPipeline | None = None
        self.pix2pix_pipe: DiffusionPipeline | None = None
        self.depth_pipe: DiffusionPipeline | None = None
        self.upscaler_pipe: DiffusionPipeline | None = None
        self.controlnet_pipes: dict[str, DiffusionPipeline] = {}
        self._load_lock = threading.Lock()  # one lazy load at a time

    def sharing(self) -> list:
        """The base pipeline and every pipeline sharing its weights (not the upscaler)."""
        pipes = [self.base, self.img2img, self.inpaint_pipe, self.pix2pix_pipe, self.depth_pipe]
        pipes += list(self.controlnet_pipes.values())
        return [p for p in pipes if p is not None]

    def derive(self, factory, **components) -> DiffusionPipeline:
        """``factory.from_pipe(base, **components)`` on the current scheduler, quiet."""
        pipe = factory.from_pipe(self.base, **components)
        pipe.scheduler = self.base.scheduler
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def inpaint(self) -> DiffusionPipeline:
        """The inpainting pipeline: the base UNet ("legacy" 4-channel inpainting) or the
        configured inpainting UNet, with the base's VAE and text encoder."""
        with self._load_lock:
            if self.inpaint_pipe is None:
                from diffusers import AutoPipelineForInpainting

                components = {}
                if self.inpaint_model is not None:
                    from pipelines.extra_models import load_unet

                    components["unet"] = load_unet(
                        self.inpaint_model, "image.inpaint_model", self.base, in_channels=9
                    )
                self.inpaint_pipe = self.derive(AutoPipelineForInpainting, **components)
            return self.inpaint_pipe

    def pix2pix(self) -> DiffusionPipeline:
        """InstructPix2Pix on the configured 8-channel UNet."""
        with self._load_lock:
            if self.pix2pix_pipe is None:
                from diffusers import StableDiffusionInstructPix2PixPipeline

                from pipelines.extra_models import load_unet

                unet = load_unet(self.pix2pix_model, "image.pix2pix_model", self.base, 8)
                self.pix2pix_pipe = self.derive(StableDiffusionInstructPix2PixPipeline, unet=unet)
            return self.pix2pix_pipe

    def depth(self) -> DiffusionPipeline:
        """depth2img: the configured 5-channel UNet and DPT estimator, the base's VAE and text
        encoder."""
        with self._load_lock:
            if self.depth_pipe is None:
                from diffusers import StableDiffusionDepth2ImgPipeline

                from pipelines.depth import load_depth_parts

                parts = load_depth_parts(self.depth_model, self.base)
                self.depth_pipe = self.derive(StableDiffusionDepth2ImgPipeline, **parts)
            return self.depth_pipe

    def controlnet(self, condition: str) -> DiffusionPipeline:
        """The ControlNet pipeline of ``condition`` (a key of ``controlnet_models``)."""
        with self._load_lock:
            if condition not in self.controlnet_pipes:
                from diffusers import StableDiffusionControlNetPipeline

                from pipelines.extra_models import load_controlnet

                net = load_controlnet(
                    self.controlnet_models[condition],
                    f"image.controlnet_models.{condition}",
                    self.base,
                )
                self.controlnet_pipes[condition] = self.derive(
                    StableDiffusionControlNetPipeline, controlnet=net
                )
            return self.controlnet_pipes[condition]

    def upscaler(self) -> DiffusionPipeline:
        """The configured diffusion upscaler (x4 or latent x2)."""
        with self._load_lock:
            if self.upscaler_pipe is None:
                from pipelines.extra_models import load_upscaler

                self.upscaler_pipe = load_upscaler(
                    self.upscaler_model, "image.upscaler_model", self.base
                )
            return self.upscaler_pipe
