"""One denoising run on a diffusers pipeline: the part every image operation shares.

``DenoiseRunner.run`` takes a pipeline, the run's recorded parameters and the call arguments,
and does, under one lock (the pipelines share their modules, so runs are serialised):

1. refuse at once if the run was cancelled before it started;
2. the text arguments (``pipelines.text_conditioning``: plain text, weighted embeddings, or
   cached ones);
3. the diffusers call with a CPU ``torch.Generator`` (a seed gives the same noise on any
   device), under bf16 autocast when ``image.cpu_speedups`` holds ``bf16_autocast``, and VAE
   tiling switched on for that run alone above ``AUTO_TILING_SIDE``;
4. after each step: cancel (diffusers' ``_interrupt`` flag plus an exception, so the VAE
   decode is skipped too) and a preview (``pipelines.previews``) to ``on_progress``;
5. NaN latents (which diffusers casts to a garbage picture with only a warning) and
   out-of-memory errors become ``ImageError``s that say what to change;
6. the finish (composite, final resize) and the post-processing (safety check, watermark).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from common.devices import is_out_of_memory, release_cached_memory
from pipelines.errors import ImageError
from pipelines.image_types import ImageResult, ProgressFn
from pipelines.previews import latents_to_preview, step_preview
from pipelines.text_conditioning import PromptEncoder

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline
    from PIL import Image

logger = logging.getLogger(__name__)

AUTO_TILING_SIDE = 1024  # pixels: above this the VAE decodes in tiles, whatever the setting


class _Cancelled(Exception):
    """Raised inside the step callback to leave the denoising loop at once."""


class DenoiseRunner:
    """Runs one denoising call at a time and turns its failures into ``ImageError``s.

    Parameters
    ----------
    device: the pipelines' device (named in out-of-memory messages).
    postprocess: called on every finished picture with its params (safety, watermark).
    prompts: the text-argument builder (and its embedding cache).
    bf16_autocast: run each call under ``torch.autocast("cpu", torch.bfloat16)``.
    """

    def __init__(
        self,
        device: str,
        postprocess: Callable[[Image.Image, dict[str, Any]], Image.Image],
        prompts: PromptEncoder | None = None,
        bf16_autocast: bool = False,
    ):
        self.device = device
        self.postprocess = postprocess
        self.prompts = prompts or PromptEncoder()
        self.bf16_autocast = bf16_autocast
        self.lock = threading.Lock()  # one denoising run at a time

    def run(
        self,
        pipe: DiffusionPipeline,
        params: dict[str, Any],
        call: dict[str, Any],
        on_progress: ProgressFn | None,
        cancel: threading.Event | None,
        legacy: bool = False,
        finish: Callable[[Image.Image], Image.Image] | None = None,
    ) -> ImageResult:
        """One denoising run under the lock.

        ``legacy`` is for pipelines that only offer the old ``callback(step, t, latents)``
        (the diffusers upscalers); all others use ``callback_on_step_end``. ``finish``
        (composite, final resize) runs on the decoded image before the post-processing.
        """
        import torch

        def on_step_end(p, step: int, timestep, tensors: dict) -> dict:
            if cancel is not None and cancel.is_set():
                # diffusers' own flag, and an exception so the VAE decode is skipped too.
                p._interrupt = True
                raise _Cancelled
            if on_progress is not None:
                total = p.num_timesteps
                on_progress(step + 1, total, step_preview(p, tensors["latents"], step + 1, total))
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
        with self.lock:
            if cancel is not None and cancel.is_set():
                raise ImageError("image-cancelled", "The image was cancelled before it started.")
            start = time.perf_counter()
            tiled_here = auto_tiling(pipe, params)
            try:
                # NaN latents would be cast to a garbage picture with only a warning; raise.
                with np.errstate(invalid="raise"), self._precision():
                    output = pipe(
                        **self.prompts.arguments(pipe, params, autocast=self.bf16_autocast),
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
                raise self.translate_error(e) from e
            finally:
                if tiled_here:
                    pipe.vae.disable_tiling()
            params["elapsed_s"] = round(time.perf_counter() - start, 3)
        image = output.images[0].convert("RGB")
        image = self.postprocess(finish(image) if finish else image, params)
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

    def _precision(self):
        """bf16 autocast on the CPU when it is on (matmuls and convolutions in bf16, norms and
        softmax kept in float32 by torch's autocast policy); otherwise nothing."""
        if not self.bf16_autocast:
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)

    def translate_error(self, error: Exception) -> ImageError:
        """An ``ImageError`` for a failure inside the pipeline: out of memory says what to
        try; anything else is "image-failed" with its type and message."""
        if is_out_of_memory(error):
            release_cached_memory(self.device)
            logger.warning("Image generation ran out of memory on %s", self.device)
            return ImageError(
                "image-oom",
                f"Out of memory on {self.device}: try a smaller size, fewer images, "
                "or enable cpu offload.",
            )
        logger.error("Image generation failed: %s", error, exc_info=error)
        return ImageError(
            "image-failed", f"Image generation failed: {type(error).__name__}: {error}"
        )


def auto_tiling(pipe: DiffusionPipeline, params: dict[str, Any]) -> bool:
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
