"""Text-prompted masks: turn a described region ("the sky", "the dog") into an inpainting mask.

CLIPSeg (``transformers.CLIPSegForImageSegmentation``) reads a picture and a short text and
gives one logit per pixel for "this pixel belongs to the text". The mask is those logits
through a sigmoid, resized to the picture (bilinear), thresholded and grown by a few pixels,
with no feathering: the engine's inpaint already blends its result back outside the mask.

``image.segmenter`` takes:

- a hub id (``CIDAS/clipseg-rd64-refined``) or a local folder holding a CLIPSeg model and its
  processor (``config.json``, the weights, ``preprocessor_config.json`` and the CLIP tokenizer
  files), as ``save_pretrained`` or a hub download lays them out;
- ``random``: the real classes with random weights at a tiny size, built locally with the
  project's offline CLIP tokenizer. For offline tests; its masks are placeholders.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ImageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

logger = logging.getLogger(__name__)

SETTING = "image.segmenter"
RANDOM_SEGMENTER = "random"  # ``image.segmenter`` value for the random-weight placeholder
DEFAULT_THRESHOLD = 0.4  # sigmoid level counted as "found"; CLIPSeg's own demos use 0.3-0.5
DEFAULT_GROW_PX = 8  # pixels the mask grows by, so the repaint covers the region's edge
MAX_COVERAGE = 0.95  # a found region larger than this is "the whole picture"
RANDOM_SIDE = 64  # pixels the random model reads (CLIPSeg reads 352)
RANDOM_PATCH = 8  # ... in 8x8 patches: a grid of 8x8 coarse cells, enough for partial masks
# Set in the random model's config, so a placeholder saved with save_pretrained and loaded
# from that folder is still reported (and thresholded) as a placeholder.
PLACEHOLDER_FLAG = "assistant_placeholder"


@dataclass(frozen=True)
class SegmentMask:
    """A mask found from a description.

    Attributes
    ----------
    mask: ``L`` image of the picture's size, 255 = repaint, 0 = keep (no grey levels).
    coverage: fraction of the picture's pixels in ``mask`` (after growing), 0..1.
    description: the text the region was found from.
    source: the ``image.segmenter`` value that found it.
    placeholder: True for random weights: the region is arbitrary, not the described one.
    """

    mask: Image.Image
    coverage: float
    description: str
    source: str
    placeholder: bool = False


class Segmenter:
    """A CLIPSeg model and its processor, ready to find described regions.

    Parameters
    ----------
    model: a ``CLIPSegForImageSegmentation`` (moved to its device by the caller).
    processor: the matching ``CLIPSegProcessor`` (CLIP tokenizer + ViT image processor).
    source: the setting it came from, recorded on every mask.
    placeholder: random weights; the threshold is then taken relative to the map (see
        ``mask_for``).
    """

    def __init__(self, model: Any, processor: Any, source: str, placeholder: bool = False):
        self.model = model.eval()
        self.processor = processor
        self.source = source
        self.placeholder = placeholder

    @property
    def device(self):
        """The torch device the model runs on."""
        return next(self.model.parameters()).device

    def probabilities(self, image: Image.Image, description: str) -> np.ndarray:
        """How strongly each pixel matches ``description``.

        Parameters
        ----------
        image: the picture (any PIL mode; read as RGB).
        description: what to find, e.g. "the sky".

        Returns
        -------
        A float32 array of the picture's (height, width): the sigmoid of CLIPSeg's logits,
        resized from the model's resolution with bilinear interpolation.
        """
        import torch

        inputs = self.processor(
            text=[description],
            images=[image.convert("RGB")],
            padding=True,
            truncation=True,  # CLIP reads 77 tokens; a long description loses its tail
            return_tensors="pt",
        )
        device = self.device
        dtype = next(self.model.parameters()).dtype
        inputs = {
            k: v.to(device, dtype) if v.is_floating_point() else v.to(device)
            for k, v in inputs.items()
        }
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        # (1, h, w); older transformers squeezed a batch of one down to (h, w).
        logits = logits.float().reshape(-1, *logits.shape[-2:])[:1]
        probs = torch.sigmoid(logits)[:, None]
        probs = torch.nn.functional.interpolate(
            probs, size=(image.height, image.width), mode="bilinear", align_corners=False
        )
        return probs[0, 0].cpu().numpy()

    def mask_for(
        self,
        image: Image.Image,
        description: str,
        threshold: float = DEFAULT_THRESHOLD,
        grow_px: int = DEFAULT_GROW_PX,
    ) -> SegmentMask:
        """The inpainting mask of the region ``description`` names.

        Parameters
        ----------
        image: the picture to repaint.
        description: the region, e.g. "the sky", "the dog".
        threshold: 0..1; pixels whose probability is above it are the region. A placeholder
            has no calibrated probabilities (random weights put the sigmoid anywhere, often
            near 0 or 1 everywhere), so there the map is first rescaled to span 0..1 and the
            threshold picks its upper part: the mask is partial for any picture and a higher
            threshold still gives a smaller mask.
        grow_px: pixels the region grows by (round dilation), so the repaint covers its edge
            and a thin border of what surrounds it; 0 keeps it as found.

        Returns
        -------
        A ``SegmentMask``.

        Raises
        ------
        ImageError("input-invalid") for a bad argument, when nothing matches the description,
        or when the match covers more than 95% of the picture; the message says what to do.
        """
        import numpy as np
        from PIL import Image

        description = _check(image, description, threshold, grow_px)
        start = time.perf_counter()
        probs = self.probabilities(image, description)
        if self.placeholder:
            low, high = float(probs.min()), float(probs.max())
            spread = high - low
            probs = (probs - low) / spread if spread > 1e-6 else np.zeros_like(probs)
        found = probs > threshold
        found_fraction = float(found.mean())
        if found_fraction == 0.0:
            raise ImageError(
                "input-invalid",
                f"I couldn't find {description} in the picture; brush over it in the chat "
                'window, or describe a position like "the top half".',
            )
        if found_fraction > MAX_COVERAGE:
            raise ImageError(
                "input-invalid",
                f"{_capitalised(description)} seems to cover the whole picture "
                f"({found_fraction:.0%} of it), so there is no part to repaint on its own. To "
                'change everything, say how (for example "make it darker"); otherwise brush '
                'over the part you mean, or describe a position like "the top half".',
            )
        mask = _grow(found.astype(np.uint8) * 255, grow_px)
        coverage = float((mask > 0).mean())
        logger.info(
            "segment %r: %.1f%% of the picture (%.1f%% before growing %d px) in %.2f s%s",
            description,
            100 * coverage,
            100 * found_fraction,
            grow_px,
            time.perf_counter() - start,
            " (placeholder)" if self.placeholder else "",
        )
        return SegmentMask(
            mask=Image.fromarray(mask, mode="L"),
            coverage=coverage,
            description=description,
            source=self.source,
            placeholder=self.placeholder,
        )


def _check(image: Any, description: Any, threshold: Any, grow_px: Any) -> str:
    """Validate ``mask_for``'s arguments; returns the description, stripped."""
    from PIL import Image

    def bad(message: str) -> ImageError:
        return ImageError("input-invalid", message)

    if not isinstance(image, Image.Image):
        raise bad(f"`image` must be a PIL image, not {type(image).__name__}.")
    if image.width < 1 or image.height < 1:
        raise bad("`image` is empty (0 pixels).")
    if not isinstance(description, str) or not description.strip():
        raise bad('Say which part to repaint, e.g. "the sky" or "the dog".')
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise bad(f"`threshold` must be a number between 0 and 1 (got {threshold!r}).")
    if not 0.0 < threshold < 1.0:
        raise bad(f"`threshold` must be between 0 and 1, exclusive (got {threshold}).")
    if isinstance(grow_px, bool) or not isinstance(grow_px, int) or grow_px < 0:
        raise bad(f"`grow_px` must be a whole number of pixels, 0 or more (got {grow_px!r}).")
    return " ".join(description.split())


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _grow(mask: np.ndarray, grow_px: int) -> np.ndarray:
    """Dilate a 0/255 uint8 mask by ``grow_px`` pixels (a disc with OpenCV, else a square)."""
    if grow_px <= 0:
        return mask
    size = 2 * grow_px + 1
    try:
        import cv2
    except ImportError:  # opencv-python-headless is in requirements.txt; PIL does it slower
        import numpy as np
        from PIL import Image, ImageFilter

        grown = Image.fromarray(mask, mode="L").filter(ImageFilter.MaxFilter(size))
        return np.asarray(grown).copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(mask, disc)


def is_random(source: Any) -> bool:
    """True for the ``random`` placeholder setting (case and spaces ignored)."""
    return isinstance(source, str) and source.strip().lower() == RANDOM_SEGMENTER


def load_segmenter(
    source: Any,
    device: Any = "cpu",
    cache_dir: str | os.PathLike | None = None,
    offline: bool = True,
    seed: int = 0,
) -> Segmenter:
    """Load the segmenter that ``image.segmenter`` names.

    Parameters
    ----------
    source: ``random``, a hub id (``CIDAS/clipseg-rd64-refined``) or a local folder with a
        CLIPSeg model and its processor.
    device: torch device ("cpu", "cuda", ...). The model stays in float32: it is small
        (150M parameters) and runs once per request.
    cache_dir: the assistant's data folder (``Config.cache_dir``); the ``random`` placeholder
        writes its CLIP tokenizer files under ``clip-tokenizer/`` there, shared with the
        image model's. None uses ``~/.cache/voice-image-assistant``. Hub models go to the
        normal Hugging Face cache.
    offline: only look in local folders and the Hugging Face cache (``local_files_only``).
        False lets a hub id that is not cached be downloaded once. ``HF_HUB_OFFLINE=1``
        always means offline.
    seed: weight seed of the ``random`` placeholder.

    Returns
    -------
    A ``Segmenter`` on ``device``.

    Raises
    ------
    ImageError("model-missing") naming ``image.segmenter`` and what to set it to, when the
    model is not set, not found, or not a CLIPSeg model.
    """
    from pipelines.loading import DEFAULT_TOKENIZER_CACHE

    if source is None or (isinstance(source, str) and not source.strip()):
        raise _missing(source, "no segmenter is set.")
    if not isinstance(source, str | os.PathLike):
        raise _missing(type(source).__name__, "it is not a hub id or a folder.")
    label = str(source).strip()
    start = time.perf_counter()
    if is_random(label):
        data_dir = Path(cache_dir).expanduser() if cache_dir else DEFAULT_TOKENIZER_CACHE.parent
        segmenter = _guarded(
            label, lambda: build_random_segmenter(data_dir / "clip-tokenizer", seed)
        )
    else:
        model, processor = _guarded(label, lambda: _load_pretrained(label, offline))
        placeholder = bool(getattr(model.config, PLACEHOLDER_FLAG, False))
        segmenter = Segmenter(model, processor, label, placeholder=placeholder)
    segmenter.model.to(device)
    logger.info(
        "Loaded segmenter %s (%s) on %s in %.1f s",
        label,
        SETTING,
        device,
        time.perf_counter() - start,
    )
    return segmenter


def _missing(source: Any, reason: str) -> ImageError:
    return ImageError(
        "model-missing",
        f"Could not load the segmenter {source!r} (setting `{SETTING}`): {reason} Set "
        f"`{SETTING}` to a CLIPSeg hub id (CIDAS/clipseg-rd64-refined, once it is in the "
        "Hugging Face cache) or a local folder with that model and its processor, `random` "
        '(placeholder masks), or null to pick regions by position ("the top half") or by '
        "brushing them.",
    )


def _guarded(source: str, loader):
    """Run ``loader``; any failure becomes ``model-missing`` (the cause is kept)."""
    from pipelines.loading import _first_line

    try:
        return loader()
    except ImageError:
        raise
    except Exception as e:
        raise _missing(source, f"{type(e).__name__}: {_first_line(e)}.") from e


def _load_pretrained(source: str, offline: bool):
    """Model and processor from a local folder or a hub id, the local cache first."""
    import torch
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    from common.hub import HUB_ID as _HUB_ID
    from common.hub import hub_offline as _hub_offline
    from common.hub import hub_reachable as _hub_reachable

    path = Path(source).expanduser()
    if path.is_file():
        raise _missing(source, "it is a single file; CLIPSeg loads from a folder.")
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise _missing(source, "the folder has no config.json.")
        kind = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
        if kind != "clipseg":
            raise _missing(source, f"it holds a {kind!r} model, not a CLIPSeg one.")
        where = str(path)
    elif _HUB_ID.match(source):
        where = source
    else:
        raise _missing(source, "no such folder, and it is not a hub id (owner/name).")

    def load(local_only: bool):
        # float32 whatever the checkpoint holds (transformers 5 keeps the saved dtype): the
        # model is small, and half precision would be slow or unsupported on a CPU.
        model = CLIPSegForImageSegmentation.from_pretrained(
            where, dtype=torch.float32, local_files_only=local_only
        )
        processor = CLIPSegProcessor.from_pretrained(where, local_files_only=local_only)
        return model, processor

    if path.is_dir():
        return load(local_only=True)
    try:  # a hub id: the local cache first, with no network at all
        return load(local_only=True)
    except OSError as e:
        if offline or _hub_offline() or not _hub_reachable():
            why = "may not be used (offline)" if offline or _hub_offline() else "is unreachable"
            raise _missing(
                source,
                "there is no such folder, and as a hub id it is not in the local Hugging Face "
                f"cache and the hub {why}.",
            ) from e
    logger.info("Downloading %s (setting %s) from the hub", source, SETTING)
    return load(local_only=False)


def _image_processor_class():
    """``ViTImageProcessor`` needs torchvision, which requirements.txt leaves out; the PIL
    backend does the same resize and normalisation."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        from transformers import ViTImageProcessorPil

        return ViTImageProcessorPil
    from transformers import ViTImageProcessor

    return ViTImageProcessor


def build_random_segmenter(tokenizer_cache: str | os.PathLike, seed: int = 0) -> Segmenter:
    """A tiny CLIPSeg of the real classes with random weights, built offline.

    Parameters
    ----------
    tokenizer_cache: where the offline CLIP tokenizer files go (``build_clip_tokenizer``).
    seed: weight seed; the same seed gives the same weights and so the same masks.

    Returns
    -------
    A placeholder ``Segmenter`` on the CPU. Its masks follow the picture and the text (both
    pass through the real architecture) but mean nothing.
    """
    import torch
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor

    from pipelines.clip_tokenizer import build_clip_tokenizer
    from pipelines.components import _clip_text

    tokenizer = build_clip_tokenizer(tokenizer_cache)
    # The real 49,408-token vocabulary (the tokenizer is the real one) on a 2-layer tower.
    text = _clip_text(hidden=32, layers=2, heads=2, intermediate=64, act="quick_gelu")
    text.pop("projection_dim")  # CLIPSeg's projection width is the top-level config's
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": RANDOM_SIDE,
        "patch_size": RANDOM_PATCH,
        "hidden_act": "quick_gelu",
    }
    config = CLIPSegConfig(
        text_config=text,
        vision_config=vision,
        projection_dim=32,
        extract_layers=[0, 1],  # both vision layers feed the decoder, as 3/6/9 of 12 do
        reduce_dim=16,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    setattr(config, PLACEHOLDER_FLAG, True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPSegForImageSegmentation(config).eval()
        # A random transposed-conv kernel prints the same 8x8 texture into every patch, so
        # a threshold cuts salt-and-pepper noise, and its logits run to the hundreds (sigmoid
        # exactly 0 or 1). One small value per channel, spread over the whole patch, gives
        # one moderate logit per patch instead: a coarse map of blobs, as a trained CLIPSeg's.
        head = model.decoder.transposed_convolution
        with torch.no_grad():
            per_channel = torch.randn(head.weight.shape[0]) * 0.5
            head.weight.copy_(per_channel[:, None, None, None].expand_as(head.weight))
            head.bias.zero_()
    # What CIDAS/clipseg-rd64-refined's preprocessor does (ImageNet mean/std, bilinear),
    # at the tiny model's size.
    image_processor = _image_processor_class()(
        size={"height": RANDOM_SIDE, "width": RANDOM_SIDE},
        resample=2,  # PIL bilinear
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    processor = CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("Built a random CLIPSeg segmenter: %.2fM parameters", n_params / 1e6)
    return Segmenter(model, processor, RANDOM_SEGMENTER, placeholder=True)
