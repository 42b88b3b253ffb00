"""Depth-guided image-to-image (depth2img): redraw a picture while keeping its 3-D layout.

``StableDiffusionDepth2ImgPipeline`` feeds the UNet a fifth input channel, a depth map of
the input picture, so a new prompt can change materials, style and lighting while near and
far stay where they were. Its depth map comes from a DPT estimator
(``transformers.DPTForDepthEstimation``) or from the caller.

``image.depth_model`` takes:

- a diffusers depth2img checkpoint, as a hub id (``stabilityai/stable-diffusion-2-depth``)
  or a local folder. Only its ``unet/`` (5 input channels), ``depth_estimator/`` and
  ``feature_extractor/`` are loaded; VAE, text encoder, tokenizer and scheduler are the base
  pipeline's own objects (``from_pipe``), so the base must be of the same family (SD 2.x);
- ``random``: a placeholder of the real classes with random weights, built locally: a UNet
  of the base's architecture with 5 input channels and a tiny hybrid DPT (BiT backbone, as
  the DPT-Hybrid estimator SD 2-depth ships). For offline tests; its pictures are noise.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ImageError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline
    from PIL import Image

logger = logging.getLogger(__name__)

SETTING = "image.depth_model"
RANDOM_DEPTH_MODEL = "random"  # ``image.depth_model`` value for the random-weight placeholder
DEPTH_IN_CHANNELS = 5  # 4 latent channels + 1 depth channel
DEPTH_GUIDANCE = 7.5  # SD 2-depth is not distilled: it needs classifier-free guidance
DEPTH_MIN_STEPS = 10  # ... and more than the 1-4 steps of a turbo base when left out
RANDOM_DPT_SIDE = 64  # pixels the random estimator reads (SD 2-depth's DPT-Hybrid reads 384)


def is_random(model: Any) -> bool:
    """True for the ``random`` placeholder setting (case and spaces ignored)."""
    return isinstance(model, str) and model.strip().lower() == RANDOM_DEPTH_MODEL


def load_depth_parts(model: Any, base: DiffusionPipeline, seed: int = 0) -> dict[str, Any]:
    """The parts a depth2img pipeline adds to ``base``: a 5-channel UNet, a DPT depth
    estimator and its image processor. Everything else is taken from ``base`` by the caller.

    Parameters
    ----------
    model: ``random``, a hub id or a local depth2img pipeline folder, or a loaded
        ``StableDiffusionDepth2ImgPipeline`` (only its UNet and estimator are used).
    base: the loaded base pipeline; the parts go to its device and dtype.
    seed: weight seed of the ``random`` placeholder.

    Returns
    -------
    ``{"unet": ..., "depth_estimator": ..., "feature_extractor": ...}`` for ``from_pipe``.

    Raises
    ------
    ImageError("model-missing") naming ``image.depth_model`` when the checkpoint cannot be
    loaded or does not fit the base model.
    """
    from diffusers import StableDiffusionDepth2ImgPipeline

    from pipelines.extra_models import _guarded, _load, load_unet

    # 1. The UNet and the estimator, from wherever the setting points.
    if is_random(model):
        unet, estimator, processor = _build_random(base, seed)
    elif isinstance(model, StableDiffusionDepth2ImgPipeline):
        unet, estimator, processor = model.unet, model.depth_estimator, model.feature_extractor
    elif isinstance(model, str | os.PathLike):
        model = str(model)
        path = Path(model).expanduser()
        if path.is_file():
            # A single-file depth checkpoint would bring its own VAE and text encoder and
            # still lack the estimator: only the diffusers layout can share the base's.
            raise _missing(model, "it is a single file, not a diffusers folder.")
        if model.strip().lower().startswith(RANDOM_DEPTH_MODEL + ":"):
            raise _missing(model, "the placeholder takes no architecture: it follows the base.")
        from transformers import DPTForDepthEstimation

        # The UNet first: a checkpoint of the wrong kind or family fails before the estimator.
        unet = load_unet(model, SETTING, base, in_channels=DEPTH_IN_CHANNELS)
        estimator = _guarded(
            SETTING,
            model,
            lambda: _load(
                DPTForDepthEstimation, model, SETTING, "depth_estimator", base.unet.dtype
            ),
        )
        processor = _guarded(SETTING, model, lambda: _load_processor(model))
    else:
        raise _missing(type(model).__name__, "it is not a setting or a depth2img pipeline.")
    # 2. Check the UNet against the base (5 channels, same text-encoder width), move it all.
    unet = load_unet(unet, SETTING, base, in_channels=DEPTH_IN_CHANNELS)
    estimator = estimator.to(base.device, base.unet.dtype).eval()
    return {"unet": unet, "depth_estimator": estimator, "feature_extractor": processor}


def _missing(model: Any, reason: str) -> ImageError:
    return ImageError(
        "model-missing",
        f"Could not use {model!r} (setting `{SETTING}`): {reason} Set `{SETTING}` to a "
        "depth2img diffusers folder or hub id (unet/, depth_estimator/, feature_extractor/; "
        "e.g. stabilityai/stable-diffusion-2-depth), `random` (placeholder), or leave it "
        "empty to edit with img2img.",
    )


def _load_processor(model: str):
    """The DPT image processor of a checkpoint (``feature_extractor/``): folder, cache, hub."""
    from common.hub import hub_offline as _hub_offline

    processor_cls = _processor_class()
    path = Path(model).expanduser()
    if path.is_dir():
        sub = "feature_extractor" if (path / "feature_extractor").is_dir() else None
        return processor_cls.from_pretrained(str(path), subfolder=sub, local_files_only=True)
    try:  # the UNet and estimator came from the same id just before: usually cached now
        return processor_cls.from_pretrained(
            model, subfolder="feature_extractor", local_files_only=True
        )
    except OSError:
        if _hub_offline():
            raise
    return processor_cls.from_pretrained(model, subfolder="feature_extractor")


def _processor_class():
    """``DPTImageProcessor`` needs torchvision, which requirements.txt leaves out; the PIL
    backend does the same resize and normalisation on the PIL images the pipeline passes."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        from transformers import DPTImageProcessorPil

        return DPTImageProcessorPil
    from transformers import DPTImageProcessor

    return DPTImageProcessor


def _build_random(base: DiffusionPipeline, seed: int):
    """A random 5-channel UNet of the base's architecture and a tiny random DPT-Hybrid."""
    import torch
    from diffusers import UNet2DConditionModel
    from PIL import Image
    from transformers import DPTConfig, DPTForDepthEstimation

    unet_config = {k: v for k, v in base.unet.config.items() if not k.startswith("_")}
    # BiT backbone: /4 stem, then stages at /4, /8, /16; the last one feeds the ViT as its
    # 16-pixel patches, the first two go straight to the DPT neck (so their widths match).
    bit = {
        "global_padding": "same",
        "layer_type": "bottleneck",
        "depths": [1, 1, 1],
        "embedding_size": 8,
        "hidden_sizes": [8, 16, 32],
        "num_groups": 2,
        "out_features": ["stage1", "stage2", "stage3"],
        "embedding_dynamic_padding": True,
    }
    dpt_config = DPTConfig(
        is_hybrid=True,
        backbone_config=bit,
        backbone_featmap_shape=[1, 32, RANDOM_DPT_SIDE // 16, RANDOM_DPT_SIDE // 16],
        image_size=RANDOM_DPT_SIDE,
        patch_size=16,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        backbone_out_indices=(0, 0, 0, 1),  # hybrid: stages 0-1 are BiT's, 2-3 ViT layers 0-1
        neck_hidden_sizes=(8, 16, 16, 16),
        fusion_hidden_size=8,
        # The default 0.02 leaves the ReLU head's output near 1e-5, under float16 resolution:
        # a flat map would normalise to NaN in the pipeline.
        initializer_range=0.2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel.from_config(
            {**unet_config, "in_channels": DEPTH_IN_CHANNELS}
        ).eval()
        estimator = DPTForDepthEstimation(dpt_config).eval()
        # Random weights put much of the last ReLU's input below zero: the map is mostly 0,
        # goes flat when the pipeline shrinks it to the latent size, and a flat map normalises
        # to NaN. A small last conv around a positive bias keeps every pixel's variation.
        last_conv = [m for m in estimator.head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last_conv.weight.mul_(0.05)
            last_conv.bias.fill_(1.0)
    # The processor settings SD 2-depth's feature_extractor uses, at the tiny model's size.
    processor = _processor_class()(
        size={"height": RANDOM_DPT_SIDE, "width": RANDOM_DPT_SIDE},
        keep_aspect_ratio=False,
        resample=Image.Resampling.BICUBIC,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    n_params = sum(p.numel() for m in (unet, estimator) for p in m.parameters())
    logger.info("Built random depth2img parts: %.2fM parameters", n_params / 1e6)
    return unet, estimator, processor


def prepare_depth_map(depth_map: Any, size: tuple[int, int]) -> torch.Tensor:
    """Check a caller's depth map and turn it into what the pipeline takes.

    Parameters
    ----------
    depth_map: a numpy array (h, w) or (h, w, 1), or a PIL image (grey, 16-bit, float or
        RGB, read as grey). Larger values are nearer, as DPT / MiDaS output (inverse depth);
        only the relative values count (the pipeline rescales the map to -1..1).
    size: (width, height) of the picture it belongs to; the map must have that size.

    Returns
    -------
    A float32 CPU tensor (1, h, w).

    Raises
    ------
    ImageError("input-invalid") saying what is wrong and how to fix it.
    """
    import numpy as np
    import torch
    from PIL import Image

    def bad(message: str) -> ImageError:
        return ImageError("input-invalid", message)

    # 1. One channel of numbers, whatever it came as.
    if isinstance(depth_map, Image.Image):
        if depth_map.mode not in ("L", "I", "I;16", "F"):
            logger.info("depth: reading the %s depth map as grey", depth_map.mode)
            depth_map = depth_map.convert("L")
        values = np.asarray(depth_map, dtype=np.float32)
    elif isinstance(depth_map, np.ndarray):
        values = depth_map
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
        if values.ndim != 2:
            raise bad(
                f"`depth_map` has shape {depth_map.shape}; give one value per pixel, "
                "shape (height, width)."
            )
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
            raise bad(f"`depth_map` must hold numbers (got dtype {values.dtype}).")
        values = values.astype(np.float32)
    else:
        raise bad(
            f"`depth_map` must be a numpy array (height x width) or a PIL image, not "
            f"{type(depth_map).__name__}; leave it out to estimate depth from the picture."
        )
    # 2. The same size as the picture, finite, and not flat (nothing to normalise).
    height, width = values.shape
    if (width, height) != tuple(size):
        raise bad(
            f"`depth_map` is {width}x{height} but the picture is {size[0]}x{size[1]}; give a "
            "depth map of the picture's size, or leave it out to estimate one."
        )
    if not np.isfinite(values).all():
        raise bad("`depth_map` holds NaN or infinite values; every pixel needs a depth.")
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-6 * max(1.0, abs(high)):
        raise bad(
            f"`depth_map` is flat (every value is {low:g}): it says nothing about near and "
            "far. Give a map where nearer is larger, or leave it out to estimate one."
        )
    return torch.from_numpy(np.ascontiguousarray(values))[None]


def estimate_depth(pipe: DiffusionPipeline, image: Image.Image) -> np.ndarray:
    """The depth the pipeline's estimator sees in ``image`` (what depth2img would use).

    Parameters
    ----------
    pipe: a depth2img pipeline (``depth_estimator``, ``feature_extractor``).
    image: the picture.

    Returns
    -------
    A float32 array of the picture's (height, width); larger is nearer. Passing it back as
    ``depth_map`` gives the same image as leaving ``depth_map`` out (at the estimator's own
    resolution exactly, otherwise up to the resampling).
    """
    import contextlib

    import torch

    estimator = pipe.depth_estimator
    device, dtype = estimator.device, estimator.dtype
    pixel_values = pipe.feature_extractor(images=[image], return_tensors="pt").pixel_values
    # As the pipeline does: half-precision DPT-Hybrid runs under autocast (its batch norms).
    half = dtype != torch.float32 and device.type != "mps"
    autocast = torch.autocast(device.type, dtype=dtype) if half else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        depth = estimator(pixel_values.to(device, dtype)).predicted_depth
    depth = depth.float()
    if tuple(depth.shape[-2:]) != (image.height, image.width):
        depth = torch.nn.functional.interpolate(
            depth[:, None], size=(image.height, image.width), mode="bicubic", align_corners=False
        )[:, 0]
    return depth[0].cpu().numpy()
