"""Lazy loading of the optional, task-specific models: an inpainting UNet, an InstructPix2Pix
UNet, ControlNets and an upscaler.

Each slot takes what ``image.model`` takes (a hub id, a local diffusers folder, a single
``.safetensors`` file) or an already built object (tests, or callers that build their
own). Only the part that differs from the base model is loaded: an inpainting or
InstructPix2Pix checkpoint contributes its UNet, and the engine derives a pipeline from
the base with ``from_pipe(base, unet=...)``, so VAE and text encoder stay shared. A
missing or unreadable model ends in ``ImageError("model-missing")`` naming the setting.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.hub import first_line as _first_line
from common.hub import hub_offline as _hub_offline
from common.hub import hub_reachable as _hub_reachable
from pipelines.errors import ImageError
from pipelines.loading import SINGLE_FILE_SUFFIXES

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

logger = logging.getLogger(__name__)


def _missing(setting: str, model: Any, reason: str) -> ImageError:
    return ImageError(
        "model-missing",
        f"Could not load {model!r} (setting `{setting}`): {reason} Set `{setting}` to a local "
        "diffusers folder, a .safetensors file or a hub id, or leave it empty to go without.",
    )


def _load(cls, model: str, setting: str, subfolder: str | None, dtype, cache_dir=None):
    """``cls.from_pretrained`` / ``from_single_file`` for a path or hub id, offline first."""
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise _missing(setting, model, "this file is neither a .safetensors nor a .ckpt.")
        return cls.from_single_file(str(path), dtype=dtype)
    if path.is_dir():
        sub = subfolder if subfolder and (path / subfolder / "config.json").is_file() else None
        if sub is None and not (path / "config.json").is_file():
            raise _missing(
                setting, model, f"the folder has neither config.json nor {subfolder}/config.json."
            )
        return cls.from_pretrained(str(path), subfolder=sub, dtype=dtype)
    if path.exists() or "/" not in model:
        raise _missing(setting, model, "no such file or folder.")
    try:  # a hub id: the local cache first, with no network at all
        return cls.from_pretrained(
            model,
            subfolder=subfolder,
            dtype=dtype,
            cache_dir=cache_dir,
            local_files_only=True,
        )
    except OSError as e:
        offline = _hub_offline()
        if offline or not _hub_reachable():
            why = "the hub is offline (HF_HUB_OFFLINE)" if offline else "the hub is unreachable"
            raise _missing(setting, model, f"it is not in the local cache and {why}.") from e
    logger.info("Downloading %s (setting %s) from the hub", model, setting)
    return cls.from_pretrained(model, subfolder=subfolder, dtype=dtype, cache_dir=cache_dir)


def _guarded(setting: str, model: Any, loader):
    """Run ``loader`` and turn any failure into ``model-missing`` (keeping the cause)."""
    start = time.perf_counter()
    try:
        loaded = loader()
    except ImageError:
        raise
    except Exception as e:
        raise _missing(setting, model, f"{type(e).__name__}: {_first_line(e)}.") from e
    logger.info("Loaded %s (%s) in %.1f s", model, setting, time.perf_counter() - start)
    return loaded


def load_unet(model: Any, setting: str, base: DiffusionPipeline, in_channels: int) -> Any:
    """Load a task UNet (inpainting: 9 input channels, InstructPix2Pix: 8) to pair with ``base``.

    Parameters
    ----------
    model: a ``UNet2DConditionModel``, or where to load one from (a pipeline folder's
        ``unet/`` subfolder is used when there is one).
    setting: the config key, for error messages (e.g. ``image.inpaint_model``).
    base: the loaded base pipeline; the UNet goes to its device and dtype.
    in_channels: the input channels the task needs.

    Returns
    -------
    The UNet, in eval mode on the base's device.

    Raises
    ------
    ImageError("model-missing") when it cannot be loaded or does not fit the base model.
    """
    from diffusers import UNet2DConditionModel

    unet = model
    if not isinstance(model, UNet2DConditionModel):
        unet = _guarded(
            setting,
            model,
            lambda: _load(UNet2DConditionModel, str(model), setting, "unet", base.unet.dtype),
        )
    label = model if isinstance(model, str) else type(model).__name__
    if unet.config.in_channels != in_channels:
        raise _missing(
            setting,
            label,
            f"its UNet takes {unet.config.in_channels} input channels; this task needs "
            f"{in_channels}.",
        )
    text_dim = base.text_encoder.config.hidden_size
    if unet.config.cross_attention_dim != text_dim:
        raise _missing(
            setting,
            label,
            f"it was trained for a text encoder of width {unet.config.cross_attention_dim}, "
            f"but `image.model` has {text_dim} (a different Stable Diffusion family); pick the "
            "matching checkpoint (SD 1.5-based with SD 1.5, SD 2-based with SD 2 / SD-Turbo).",
        )
    return unet.to(base.device, base.unet.dtype).eval()


def load_controlnet(model: Any, setting: str, base: DiffusionPipeline) -> Any:
    """Load a ``ControlNetModel`` for ``base`` (see ``load_unet`` for ``model`` forms)."""
    from diffusers import ControlNetModel

    net = model
    if not isinstance(model, ControlNetModel):
        net = _guarded(
            setting,
            model,
            lambda: _load(ControlNetModel, str(model), setting, "controlnet", base.unet.dtype),
        )
    text_dim = base.text_encoder.config.hidden_size
    if net.config.cross_attention_dim != text_dim:
        raise _missing(
            setting,
            model if isinstance(model, str) else type(model).__name__,
            f"this ControlNet expects a text encoder of width {net.config.cross_attention_dim}, "
            f"but `image.model` has {text_dim}; use the ControlNet made for your base model.",
        )
    return net.to(base.device, base.unet.dtype).eval()


def load_upscaler(model: Any, setting: str, base: DiffusionPipeline) -> DiffusionPipeline:
    """Load a diffusion upscaler: ``StableDiffusionUpscalePipeline`` (x4) or
    ``StableDiffusionLatentUpscalePipeline`` (x2). It is a separate model with its own weights.

    Returns
    -------
    The pipeline on the base's device, progress bar off.
    """
    from diffusers import (
        DiffusionPipeline,
        StableDiffusionLatentUpscalePipeline,
        StableDiffusionUpscalePipeline,
    )

    kinds = (StableDiffusionUpscalePipeline, StableDiffusionLatentUpscalePipeline)
    pipe = model
    if not isinstance(model, DiffusionPipeline):
        path = Path(str(model)).expanduser()
        if path.exists() and not (path / "model_index.json").is_file():
            raise _missing(setting, model, "an upscaler must be a diffusers pipeline folder.")
        pipe = _guarded(
            setting,
            model,
            lambda: DiffusionPipeline.from_pretrained(
                str(model),
                dtype=base.unet.dtype,
                local_files_only=_hub_offline() or not _hub_reachable(),
            ),
        )
    if not isinstance(pipe, kinds):
        raise _missing(
            setting,
            model if isinstance(model, str) else type(model).__name__,
            f"it is a {type(pipe).__name__}, not an SD x4 or latent x2 upscaler.",
        )
    pipe = pipe.to(base.device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def upscaler_factor(pipe) -> int:
    """How much one pass of an upscaler pipeline enlarges: 4 (x4) or 2 (latent x2)."""
    from diffusers import StableDiffusionLatentUpscalePipeline

    return 2 if isinstance(pipe, StableDiffusionLatentUpscalePipeline) else 4
