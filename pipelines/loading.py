"""Load one text-to-image pipeline from whatever the ``image.model`` setting names.

Accepted forms:

- ``random:<arch>``: real diffusers classes with random weights (``tiny``, ``small``,
  ``sd-turbo``, ``sd15``); the offline default, output is noise.
- a hub id such as ``stabilityai/sd-turbo``: ``from_pretrained`` (normal HF cache).
- a local diffusers folder (with ``model_index.json``): ``from_pretrained`` on the path.
- a single ``.safetensors`` / ``.ckpt`` checkpoint: ``from_single_file``. diffusers
  fetches the matching diffusers *configs* from the hub; offline, pass ``config``
  (a local diffusers folder of the same architecture, weights not needed).

Every way of not finding a model ends in ``ImageError("model-missing")`` that names
the setting to change; none hangs.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.devices import pick_device
from common.hub import HUB_ID as _HUB_ID
from common.hub import first_line as _first_line
from common.hub import hub_offline as _hub_offline
from common.hub import hub_reachable as _hub_reachable
from pipelines.cpu_runtime import apply_cpu_runtime, check_cpu_runtime
from pipelines.errors import ImageError, checked_choice
from pipelines.speedups import apply_speedups, check_speedups, swap_tiny_vae

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

logger = logging.getLogger(__name__)

RANDOM_PREFIX = "random:"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
DEFAULT_TOKENIZER_CACHE = Path.home() / ".cache" / "voice-image-assistant" / "tokenizers"
_FEW_STEP_HINTS = ("turbo", "lcm", "lightning", "hyper", "schnell")  # distilled 1-4 step models
_FIX = (
    "Set `image.model` to a local diffusers folder, a .safetensors file, or `random:small` "
    "(offline placeholder that draws noise)."
)


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded and how to drive it."""

    label: str  # the ``image.model`` value, as recorded in every image's parameters
    placeholder: bool  # True for random weights: the images are noise
    device: str  # "cpu", "cuda", "cuda:1", "mps"
    dtype: str  # "float32", "float16", "bfloat16"
    default_steps: int  # denoising steps when a request leaves them out
    default_guidance: float  # classifier-free guidance scale when a request leaves it out
    source: str  # "random", "hub", "folder" or "single-file"
    speedups: tuple[str, ...] = ()  # what ``pipelines.speedups`` applied, e.g. ("channels_last",)


def resolve_device(requested: str = "auto") -> str:
    """Pick the torch device for ``requested`` ("auto", "cpu", "cuda", "cuda:N", "mps").

    ``auto`` picks cuda, then mps, then cpu. An accelerator that is not there degrades to cpu
    with a warning (``common.devices.pick_device``, the one place that decides).

    Returns
    -------
    The device string to use.
    """
    try:
        return pick_device(requested, setting="image.device")
    except ValueError as e:
        raise ImageError("input-invalid", str(e)) from None


def resolve_dtype(device: str, dtype: Any = "auto") -> torch.dtype:
    """Pick the weight dtype: float16 on accelerators, float32 on CPU.

    Parameters
    ----------
    device: a resolved device string.
    dtype: "auto", a name ("float16", "fp16", "bfloat16", "float32") or a ``torch.dtype``.

    Returns
    -------
    The torch dtype. Half precision asked for on CPU degrades to float32 with a warning.
    """
    import torch

    names = {
        "float16": torch.float16,
        "fp16": torch.float16,
        "half": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float32": torch.float32,
        "fp32": torch.float32,
    }
    on_cpu = device == "cpu"
    if dtype is None or dtype == "auto":
        return torch.float32 if on_cpu else torch.float16
    if not isinstance(dtype, torch.dtype):
        if str(dtype).lower() not in names:
            raise ImageError(
                "input-invalid",
                f"Unknown dtype {dtype!r} (setting `image.dtype`): use auto, float16 or float32.",
            )
        dtype = names[str(dtype).lower()]
    if on_cpu and dtype == torch.float16:
        logger.warning("float16 is not supported well on CPU; using float32 instead")
        return torch.float32
    return dtype


def _default_steps_for(label: str, default_steps: int | None, default_guidance: float | None):
    """Steps and guidance for a real model: distilled few-step models want 1-4 steps, no CFG."""
    few_step = any(hint in label.lower() for hint in _FEW_STEP_HINTS)
    steps = default_steps if default_steps is not None else (1 if few_step else 25)
    guidance = default_guidance if default_guidance is not None else (0.0 if few_step else 7.0)
    return steps, guidance


def _missing(model: str, reason: str) -> ImageError:
    return ImageError(
        "model-missing",
        f"Could not load the image model {model!r} (setting `image.model`): {reason} {_FIX}",
    )


def _load_random(arch: str, tokenizer_cache: Path, seed: int) -> DiffusionPipeline:
    from pipelines.clip_tokenizer import build_clip_tokenizer
    from pipelines.components import build_random_pipeline

    return build_random_pipeline(arch, build_clip_tokenizer(tokenizer_cache), seed=seed)


def _load_pretrained(model: str, dtype, cache_dir, local_only: bool) -> DiffusionPipeline:
    """``from_pretrained`` for a hub id or a local diffusers folder, without the safety checker."""
    from diffusers import AutoPipelineForText2Image

    return AutoPipelineForText2Image.from_pretrained(
        model,
        dtype=dtype,
        cache_dir=cache_dir,
        local_files_only=local_only,
        safety_checker=None,
        requires_safety_checker=False,
    )


class _KeyShapes(dict):
    """Checkpoint tensor shapes by name, read from a safetensors header without loading weights."""

    class _Shape:
        def __init__(self, shape):
            self.shape = tuple(shape)
            self.ndim = len(self.shape)


def _safetensors_shapes(model: str, path: Path) -> _KeyShapes:
    """Read the header of a ``.safetensors`` file: tensor shapes by name, no weights loaded.

    safetensors checks here that the header parses and that its offsets cover the file
    exactly, so a truncated download or a corrupt copy fails now, named as such. Left to
    diffusers it only says "Unable to load weights", and the generic advice ("set image.model
    to a .safetensors file") would send the user looking in the wrong place.
    """
    from safetensors import SafetensorError, safe_open

    shapes = _KeyShapes()
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                shapes[key] = _KeyShapes._Shape(f.get_slice(key).get_shape())
    except SafetensorError as e:
        raise ImageError(
            "model-missing",
            f"The image model file {model!r} (setting `image.model`) is damaged or incomplete "
            f"({_first_line(e)}). Re-download it (or copy it again) and check that its size "
            "matches the original.",
        ) from e
    return shapes


def _infer_config_repo(shapes: _KeyShapes | None) -> tuple[str | None, str | None]:
    """Name the diffusers config repo that ``from_single_file`` would fetch for a checkpoint.

    Returns
    -------
    (model_type, repo_id), or (None, None) without a header (``.ckpt``) or for an unknown layout.
    """
    if shapes is None:
        return None, None
    try:
        from diffusers.loaders.single_file_utils import (
            DIFFUSERS_DEFAULT_PIPELINE_PATHS,
            infer_diffusers_model_type,
        )

        model_type = infer_diffusers_model_type(shapes)
        repo_id = DIFFUSERS_DEFAULT_PIPELINE_PATHS[model_type]["pretrained_model_name_or_path"]
        return model_type, repo_id
    except Exception as e:  # an unknown layout: let diffusers decide
        logger.debug("Could not infer the architecture of the checkpoint: %s", e)
        return None, None


def _checkpoint_config(config: str | os.PathLike | None) -> str | None:
    """Check ``image.checkpoint_config`` before diffusers sees it.

    diffusers takes any string that is not an existing folder for a hub id, so ``~/sd15``
    (not expanded) or a mistyped folder ended in a hub lookup and an error that blamed
    ``image.model``. A local folder is expanded and must hold ``model_index.json``.
    """
    if config is None or not str(config).strip():
        return None
    text = str(config).strip()
    folder = Path(text).expanduser()
    if folder.is_dir():
        if not (folder / "model_index.json").is_file():
            raise ImageError(
                "model-missing",
                f"The checkpoint config folder {text!r} (setting `image.checkpoint_config`) has "
                "no model_index.json: point it at a diffusers folder of the same architecture "
                "(its config files are enough).",
            )
        return str(folder)
    if _HUB_ID.match(text):
        return text  # a hub id: diffusers finds its configs in the cache or downloads them
    raise ImageError(
        "model-missing",
        f"The checkpoint config {text!r} (setting `image.checkpoint_config`) is neither a local "
        "diffusers folder nor a hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5.",
    )


def _config_cached(repo_id: str, cache_dir) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json", cache_dir=cache_dir)
    return isinstance(found, str)


def _load_single_file(
    model: str, path: Path, dtype, cache_dir, config: str | None, offline: bool
) -> DiffusionPipeline:
    """``from_single_file`` with an early, clear error when its configs cannot be had offline."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    config = _checkpoint_config(config)
    shapes = _safetensors_shapes(model, path) if path.suffix.lower() == ".safetensors" else None
    model_type, repo_id = _infer_config_repo(shapes)
    needs_hub = config is None and repo_id is not None and not _config_cached(repo_id, cache_dir)
    if needs_hub and (offline or not _hub_reachable()):
        raise _missing(
            model,
            f"this single-file checkpoint (detected: {model_type}) needs the diffusers configs of "
            f"{repo_id!r}, which are not cached and the hub is "
            f"{'offline' if offline else 'unreachable'}. Set `image.checkpoint_config` to a local "
            "diffusers folder of the same architecture (config files are enough), or run once "
            "with internet.",
        )
    pipeline_class = (
        StableDiffusionXLPipeline
        if (model_type or "").startswith("xl")
        else StableDiffusionPipeline
    )
    kwargs: dict[str, Any] = {"dtype": dtype, "cache_dir": cache_dir}
    if config is not None:
        kwargs["config"] = config
    if offline:
        kwargs["local_files_only"] = True
    if pipeline_class is StableDiffusionPipeline:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    return pipeline_class.from_single_file(str(path), **kwargs)


def load_pipeline(
    model: str,
    device: str = "auto",
    dtype: Any = "auto",
    cache_dir: str | os.PathLike | None = None,
    tokenizer_cache: str | os.PathLike | None = None,
    *,
    config: str | os.PathLike | None = None,
    default_steps: int | None = None,
    default_guidance: float | None = None,
    seed: int = 0,
    vae_tiling: bool = False,
    vae_slicing: bool = False,
    cpu_offload: str | None = None,
    attention: str = "sdpa",
    cpu_speedups: list[str] | None = None,
    tiny_vae: str | None = None,
    cpu_runtime: str | None = None,
    runtime_cache: str | os.PathLike | None = None,
) -> tuple[DiffusionPipeline, ModelInfo]:
    """Load the one text-to-image pipeline the engine runs on.

    Parameters
    ----------
    model: ``random:<arch>``, a hub id, a local diffusers folder, or a ``.safetensors``/``.ckpt``.
    device: "auto", "cpu", "cuda", "cuda:N" or "mps" (see ``resolve_device``).
    dtype: "auto" (float16 on accelerators, float32 on cpu), a dtype name or a ``torch.dtype``.
    cache_dir: Hugging Face cache folder; None uses the normal HF cache.
    tokenizer_cache: where the offline CLIP tokenizer files go (random pipelines only).
    config: for single-file checkpoints, a diffusers config folder or hub id.
    default_steps, default_guidance: override the model's defaults.
    seed: weight seed for random pipelines.
    vae_tiling: decode (and encode) in overlapping tiles: big images in little memory.
    vae_slicing: decode a batch one image at a time.
    cpu_offload: None/"none", "model" (whole models move to the GPU in turn) or "sequential"
        (layer by layer: least memory, slowest). CUDA only; elsewhere it is logged and ignored.
    attention: "sdpa" (PyTorch scaled-dot-product attention, the default), "eager" (the
        plain reference attention) or "xformers" (needs the xformers package).
    cpu_speedups: names from ``pipelines.speedups.SPEEDUPS`` (``channels_last``); None/[] off.
    tiny_vae: None (the model's own VAE), or a TAESD to decode with instead: a hub id
        (``madebyollin/taesd``), a local folder, or ``random`` (placeholder weights).
    cpu_runtime: ``image.cpu_runtime`` (``torch`` or None: as is; ``openvino``: the UNet
        converted once and run by OpenVINO, see ``pipelines.cpu_runtime``).
    runtime_cache: where the converted UNet is kept (the assistant's data folder).

    Returns
    -------
    (pipe, info): the pipeline on its device, progress bars off, and its ``ModelInfo``.
    """
    import torch

    # 1. Resolve the device and dtype.
    model = (model or "").strip()
    if not model:
        raise _missing(model, "the setting is empty.")
    device = resolve_device(device)
    torch_dtype = resolve_dtype(device, dtype)
    offload = _check_offload(cpu_offload, device)
    speedups = check_speedups(cpu_speedups)
    runtime = check_cpu_runtime(cpu_runtime)
    checked_choice("image.attention", attention or None, ATTENTION_MODES, "sdpa")
    offline = _hub_offline()
    start = time.perf_counter()

    # 2. Load from the source the name points at.
    try:
        if model.startswith(RANDOM_PREFIX):
            from pipelines.components import ARCHS

            arch = model[len(RANDOM_PREFIX) :]
            if arch not in ARCHS:
                raise _missing(model, f"unknown random architecture; use one of {list(ARCHS)}.")
            spec = ARCHS[arch]
            pipe = _load_random(arch, Path(tokenizer_cache or DEFAULT_TOKENIZER_CACHE), seed)
            source, placeholder = "random", True
            steps = default_steps if default_steps is not None else spec.default_steps
            guidance = default_guidance if default_guidance is not None else spec.default_guidance
        else:
            path = Path(model).expanduser()
            steps, guidance = _default_steps_for(model, default_steps, default_guidance)
            placeholder = False
            if path.is_file() and path.suffix.lower() in SINGLE_FILE_SUFFIXES:
                source = "single-file"
                pipe = _load_single_file(model, path, torch_dtype, cache_dir, config, offline)
            elif path.is_dir():
                if not (path / "model_index.json").is_file():
                    raise _missing(
                        model, "the folder has no model_index.json (not a diffusers model)."
                    )
                source = "folder"
                pipe = _load_pretrained(str(path), torch_dtype, cache_dir, local_only=True)
            elif path.exists():
                raise _missing(model, "this file is neither a .safetensors nor a .ckpt checkpoint.")
            elif _HUB_ID.match(model) and not model.endswith(SINGLE_FILE_SUFFIXES):
                source = "hub"
                pipe = _load_hub(model, torch_dtype, cache_dir, offline)
            else:
                raise _missing(model, "no such file or folder.")
    except ImageError:
        raise
    except torch.cuda.OutOfMemoryError as e:
        raise ImageError("image-oom", f"Not enough GPU memory to load {model!r}.") from e
    except Exception as e:  # a corrupt or unsupported checkpoint fails in many ways
        raise _missing(model, f"{type(e).__name__}: {_first_line(e)}.") from e

    # 3. A tiny VAE goes in before the move (so offload hooks and dtype cover it too).
    applied: list[str] = []
    if tiny_vae:
        vae_dtype = torch_dtype if source != "random" else None  # random: converted below
        applied.append(swap_tiny_vae(pipe, tiny_vae, dtype=vae_dtype, cache_dir=cache_dir))

    # 4. Move to the device (random weights are built in float32), quiet the progress bars.
    try:
        if offload:
            if source == "random" and torch_dtype != torch.float32:
                pipe = pipe.to(dtype=torch_dtype)
            _enable_offload(pipe, offload, device)
        elif source == "random" and torch_dtype != torch.float32:
            pipe = pipe.to(device, torch_dtype)
        else:
            pipe = pipe.to(device)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
        if "out of memory" in str(e).lower():
            raise ImageError(
                "image-oom",
                f"Not enough memory on {device} to hold {model!r}; "
                "try device cpu or a smaller model.",
            ) from e
        raise ImageError("image-failed", f"Could not move {model!r} to {device}: {e}") from e
    pipe.set_progress_bar_config(disable=True)
    # 5. Speed-ups and memory options (all off by default).
    applied += apply_speedups(pipe, speedups, device)
    if runtime != "torch":
        applied += apply_cpu_runtime(pipe, runtime, device, runtime_cache)
    apply_memory_options(pipe, vae_tiling=vae_tiling, vae_slicing=vae_slicing, attention=attention)
    info = ModelInfo(
        label=model,
        placeholder=placeholder,
        device=device,
        dtype=str(torch_dtype).removeprefix("torch."),
        default_steps=steps,
        default_guidance=guidance,
        source=source,
        speedups=tuple(applied),
    )
    logger.info(
        "Loaded image model %s (%s) on %s/%s in %.1f s%s",
        model,
        source,
        device,
        info.dtype,
        time.perf_counter() - start,
        " - random weights, images are noise" if placeholder else "",
    )
    if applied:
        logger.info("Image speed-ups: %s", ", ".join(applied))
    return pipe, info


OFFLOAD_MODES = ("none", "model", "sequential")
ATTENTION_MODES = ("sdpa", "eager", "xformers")


def _check_offload(cpu_offload: str | None, device: str) -> str | None:
    """Validate ``cpu_offload``; returns the mode to enable, or None (off, or not on CUDA)."""
    mode = checked_choice("image.cpu_offload", cpu_offload or None, OFFLOAD_MODES, "none")
    if mode == "none":
        return None
    if not device.startswith("cuda"):
        logger.info("cpu_offload=%s does nothing on %s (it moves models to a GPU)", mode, device)
        return None
    return mode


def _enable_offload(pipe: DiffusionPipeline, mode: str, device: str) -> None:
    """Keep weights on the CPU and move them to the GPU only while they run."""
    gpu_id = int(device.split(":")[1]) if ":" in device else None
    if mode == "model":
        pipe.enable_model_cpu_offload(gpu_id=gpu_id)
    else:
        pipe.enable_sequential_cpu_offload(gpu_id=gpu_id)
    logger.info("CPU offload (%s) enabled on %s", mode, device)


def apply_memory_options(
    pipe: DiffusionPipeline,
    vae_tiling: bool = False,
    vae_slicing: bool = False,
    attention: str = "sdpa",
) -> None:
    """Switch on the memory savers of ``pipe`` (they act on the shared modules, so every
    pipeline derived from it with ``from_pipe`` gets them too).

    Parameters
    ----------
    pipe: the loaded pipeline.
    vae_tiling, vae_slicing, attention: see ``load_pipeline``.
    """
    mode = checked_choice("image.attention", attention or None, ATTENTION_MODES, "sdpa")
    if mode == "eager":
        from diffusers.models.attention_processor import AttnProcessor

        pipe.unet.set_attn_processor(AttnProcessor())
        if hasattr(pipe.vae, "set_attn_processor"):  # a tiny VAE (TAESD) has no attention
            pipe.vae.set_attn_processor(AttnProcessor())
    elif mode == "xformers":
        try:
            pipe.enable_xformers_memory_efficient_attention()
        except Exception as e:  # not installed, or no CUDA: SDPA is nearly as good
            logger.warning("xformers attention is not available (%s); keeping SDPA", e)
    # "sdpa" is what diffusers picks by itself on torch >= 2.
    if vae_tiling:
        pipe.vae.enable_tiling()
        logger.info("VAE tiling on")
    if vae_slicing:
        pipe.vae.enable_slicing()
        logger.info("VAE slicing on")


def _load_hub(model: str, dtype, cache_dir, offline: bool) -> DiffusionPipeline:
    """From the HF cache first (no network), then from the hub unless offline."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return _load_pretrained(model, dtype, cache_dir, local_only=True)
    except (OSError, LocalEntryNotFoundError) as e:
        if offline or not _hub_reachable():
            why = "the hub is offline (HF_HUB_OFFLINE)" if offline else "the hub is unreachable"
            raise _missing(
                model,
                "there is no local folder of that name, it is not in the local Hugging Face "
                f"cache, and {why}.",
            ) from e
        logger.info("Model %s is not cached; downloading it from the hub", model)
    try:
        return _load_pretrained(model, dtype, cache_dir, local_only=False)
    except OSError as e:
        raise _missing(
            model,
            "there is no local folder of that name, it is not cached, and the hub could not "
            f"provide it ({_first_line(e)}).",
        ) from e
