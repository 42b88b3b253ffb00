"""An optional NSFW safety check: flagged images are blurred and labelled, never blacked out.

The checker is diffusers' ``StableDiffusionSafetyChecker`` (CLIP ViT-L/14 image tower plus
concept embeddings) with its ``CLIPImageProcessor``, loaded on first use from a hub id
(``CompVis/stable-diffusion-safety-checker``), a folder holding both, or a full Stable
Diffusion folder (its ``safety_checker/`` and ``feature_extractor/`` subfolders). Only its
flags are used: diffusers would replace a flagged image by black, which tells the user
nothing; here it is blurred strongly (Gaussian radius = longest side / 16) and the result's
params say so (``nsfw: true``, ``safety: "blurred"``). A checker that fails at run time
blurs too (``safety: "check-failed"``): the check fails closed, and the engine raises nothing.

Any object with ``check(images) -> list[bool]`` can stand in for the model (tests, other
classifiers).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipelines.errors import ImageError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

DEFAULT_CHECKER = "CompVis/stable-diffusion-safety-checker"  # hub id of the SD 1.x checker
BLUR_FRACTION = 1 / 16  # Gaussian blur radius as a fraction of the image's longest side


class Checker(Protocol):
    def check(self, images: list[Image.Image]) -> list[bool]: ...


class SafetyChecker:
    """diffusers' ``StableDiffusionSafetyChecker`` used for its flags only.

    Parameters
    ----------
    model: a ``StableDiffusionSafetyChecker``.
    feature_extractor: the ``CLIPImageProcessor`` that prepares its input.
    device: where ``model`` runs.
    """

    def __init__(self, model, feature_extractor, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.feature_extractor = feature_extractor
        self.device = device

    @classmethod
    def load(cls, source: str | os.PathLike, device: str = "cpu") -> SafetyChecker:
        """Load the checker and its image processor from a hub id or a local folder.

        Raises
        ------
        ImageError("model-missing") naming the setting, with the loader's error as cause.
        """
        from diffusers.pipelines.stable_diffusion.safety_checker import (
            StableDiffusionSafetyChecker,
        )
        from transformers import CLIPImageProcessor

        # 1. A full SD folder keeps the two parts in subfolders; a checker folder at its root.
        model_kw, extractor_kw = {}, {}
        if (Path(source) / "safety_checker").is_dir():
            model_kw, extractor_kw = (
                {"subfolder": "safety_checker"},
                {"subfolder": "feature_extractor"},
            )
        # 2. Load both; any failure names the setting to fix.
        try:
            model = StableDiffusionSafetyChecker.from_pretrained(source, **model_kw)
            extractor = CLIPImageProcessor.from_pretrained(source, **extractor_kw)
        except Exception as e:
            raise ImageError(
                "model-missing",
                f"Could not load the safety checker {str(source)!r} (setting "
                f"`image.safety_checker`): {type(e).__name__}: {e}. Use a hub id such as "
                f"{DEFAULT_CHECKER}, a folder holding it, or null to turn the check off.",
            ) from e
        logger.info("Safety checker loaded from %s on %s", source, device)
        return cls(model, extractor, device)

    def check(self, images: list[Image.Image]) -> list[bool]:
        """One flag per image: True when the checker finds NSFW content.

        Parameters
        ----------
        images: RGB PIL images.

        Returns
        -------
        The flags, in order.
        """
        import numpy as np
        import torch

        clip_input = self.feature_extractor(images=images, return_tensors="pt").pixel_values
        clip_input = clip_input.to(self.device, dtype=self.model.dtype)
        # The model blacks out flagged images in the array it is given: give it a scratch one.
        scratch = np.zeros((len(images), 1, 1, 3), dtype=np.float32)
        with torch.no_grad():
            _, flags = self.model(clip_input=clip_input, images=scratch)
        return [bool(f) for f in flags]


def resolve_checker(setting: Any, device: str = "cpu") -> Checker | None:
    """Turn the ``safety_checker`` setting into a checker.

    Parameters
    ----------
    setting: None (off), a hub id or path (loaded now), or an object with ``check``.
    device: where a loaded model runs.

    Returns
    -------
    A checker, or None when the check is off.
    """
    if setting is None or setting is False:
        return None
    if hasattr(setting, "check"):
        return setting
    if isinstance(setting, str | os.PathLike):
        return SafetyChecker.load(setting, device)
    raise ImageError(
        "input-invalid",
        f"`safety_checker` must be null, a hub id or path, or a checker object "
        f"(got {type(setting).__name__}).",
    )


def blur(image: Image.Image) -> Image.Image:
    """Blur ``image`` beyond recognition: Gaussian radius = longest side / 16."""
    from PIL import ImageFilter

    radius = max(2.0, max(image.size) * BLUR_FRACTION)
    return image.filter(ImageFilter.GaussianBlur(radius))


def apply_safety(checker: Checker | None, image: Image.Image, params: dict) -> Image.Image:
    """The engine's safety step: check ``image``; blur and label it when flagged.

    Parameters
    ----------
    checker: from ``resolve_checker``; None leaves the image and params untouched.
    image: the finished RGB image.
    params: its parameters; ``nsfw`` (bool) and ``safety`` ("passed", "blurred" or
        "check-failed") are set.

    Returns
    -------
    ``image`` itself when it passed, else a blurred copy.
    """
    if checker is None:
        return image
    try:
        flagged = bool(checker.check([image])[0])
    except Exception:
        logger.exception("Safety check failed; blurring the image to be safe")
        params.update(nsfw=None, safety="check-failed")
        return blur(image)
    if not flagged:
        params.update(nsfw=False, safety="passed")
        return image
    logger.info("Safety checker flagged the %s image; blurring it", params.get("operation"))
    params.update(nsfw=True, safety="blurred")
    return blur(image)
