"""Optional speed-ups for a loaded text-to-image pipeline (all off by default).

Options of ``image.cpu_speedups`` (a list; the name says where they were measured, they work
on any device):

- ``channels_last``: UNet and VAE weights and activations in NHWC memory order, which the
  oneDNN convolutions on x86 CPUs run faster (measured in ``docs/BENCHMARKS.md``).

``image.tiny_vae`` swaps the full Stable Diffusion VAE for a TAESD decoder
(``diffusers.AutoencoderTiny``, about 2.4M parameters): a hub id (``madebyollin/taesd`` for
SD 1.x/2.x, ``madebyollin/taesdxl`` for SDXL), a local folder, or ``random`` (the placeholder
architecture with random weights, for offline tests and benchmarks). Pictures come out a
little softer; on SD-class models the decode gets many times cheaper.

Measured and left out: bfloat16 weights or autocast on a CPU without native bf16 instructions
(AVX2 only) ran 7-50x slower than float32 here; ``image.dtype`` still offers it for AMX CPUs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ImageError

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderTiny, DiffusionPipeline

logger = logging.getLogger(__name__)

SPEEDUPS = ("channels_last",)  # accepted values of ``image.cpu_speedups``
RANDOM_TINY_VAE = "random"  # ``image.tiny_vae`` value for the random-weight TAESD


def check_speedups(options: Iterable[str] | str | None) -> list[str]:
    """Normalise and validate ``image.cpu_speedups``.

    Parameters
    ----------
    options: None, one name, or a list of names from ``SPEEDUPS`` (case and spaces ignored).

    Returns
    -------
    The names in order, without duplicates.

    Raises
    ------
    ImageError("input-invalid") naming ``image.cpu_speedups`` for an unknown name.
    """
    if options is None:
        return []
    if isinstance(options, str):
        options = [options]
    names: list[str] = []
    for option in options:
        name = str(option).strip().lower().replace("-", "_")
        if name not in SPEEDUPS:
            raise ImageError(
                "input-invalid",
                f"Unknown `image.cpu_speedups` option {option!r}: use any of "
                f"{', '.join(SPEEDUPS)} (or an empty list).",
            )
        if name not in names:
            names.append(name)
    return names


def load_tiny_vae(
    source: str,
    dtype: torch.dtype | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> AutoencoderTiny:
    """Load a TAESD decoder (``AutoencoderTiny``) from an id, a folder, or ``random``.

    Parameters
    ----------
    source: ``random``, a local diffusers folder, or a hub id such as ``madebyollin/taesd``
        (the local Hugging Face cache first; the hub only when online).
    dtype: weight dtype (None keeps float32).
    cache_dir: Hugging Face cache folder; None uses the normal HF cache.
    seed: weight seed of the ``random`` placeholder.

    Returns
    -------
    The model in eval mode, on the CPU.

    Raises
    ------
    ImageError("model-missing") naming ``image.tiny_vae`` when it cannot be had.
    """
    import torch
    from diffusers import AutoencoderTiny

    source = (source or "").strip()
    if source.lower() == RANDOM_TINY_VAE:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vae = AutoencoderTiny()
    else:
        vae = _load_pretrained_tiny(source, cache_dir)
    if dtype is not None:
        vae = vae.to(dtype=dtype)
    return vae.eval()


def _load_pretrained_tiny(source: str, cache_dir) -> AutoencoderTiny:
    """``AutoencoderTiny.from_pretrained``: folder, then HF cache, then hub (when online)."""
    from diffusers import AutoencoderTiny

    from pipelines.loading import _first_line, _hub_offline, _hub_reachable

    def missing(reason: str) -> ImageError:
        return ImageError(
            "model-missing",
            f"Could not load the tiny VAE {source!r} (setting `image.tiny_vae`): {reason} "
            "Use a local AutoencoderTiny folder, `madebyollin/taesd` when online, `random` "
            "(placeholder), or null to keep the model's own VAE.",
        )

    if not source:
        raise missing("the setting is empty.")
    local = Path(source).expanduser()
    try:
        if local.is_dir():
            return AutoencoderTiny.from_pretrained(str(local), local_files_only=True)
        try:
            return AutoencoderTiny.from_pretrained(
                source, cache_dir=cache_dir, local_files_only=True
            )
        except OSError:
            if _hub_offline() or not _hub_reachable():
                raise missing("not a folder, not in the Hugging Face cache, and offline.") from None
            logger.info("Tiny VAE %s is not cached; downloading it from the hub", source)
            return AutoencoderTiny.from_pretrained(source, cache_dir=cache_dir)
    except ImageError:
        raise
    except Exception as e:  # wrong files, wrong class, network errors
        raise missing(f"{type(e).__name__}: {_first_line(e)}.") from e


def swap_tiny_vae(pipe: DiffusionPipeline, tiny_vae: Any, dtype=None, cache_dir=None) -> str:
    """Replace ``pipe.vae`` with a TAESD decoder (``tiny_vae``: source, see ``load_tiny_vae``,
    or an ``AutoencoderTiny``). Derived pipelines built later with ``from_pipe`` share it.

    Returns
    -------
    What was applied, e.g. ``"tiny_vae:madebyollin/taesd"``.
    """
    old = getattr(pipe, "vae", None)
    if isinstance(tiny_vae, str):
        label = tiny_vae.strip()
        new = load_tiny_vae(label, dtype=dtype, cache_dir=cache_dir)
    else:
        label, new = type(tiny_vae).__name__, tiny_vae
    if old is not None:
        want, got = old.config.latent_channels, new.config.latent_channels
        if want != got:
            raise ImageError(
                "input-invalid",
                f"The tiny VAE {label!r} (setting `image.tiny_vae`) reads {got}-channel latents "
                f"but the model makes {want}-channel ones: use the TAESD of the same family "
                "(taesd for SD 1.x/2.x, taesdxl for SDXL).",
            )
        new = new.to(old.device)
    pipe.vae = new
    logger.info("Tiny VAE %s swapped in for the model's own VAE", label)
    return f"tiny_vae:{label}"


def apply_speedups(
    pipe: DiffusionPipeline,
    options: Iterable[str] | str | None,
    device: str = "cpu",
    *,
    tiny_vae: Any = None,
    dtype=None,
    cache_dir=None,
) -> list[str]:
    """Apply ``image.cpu_speedups`` (and optionally ``image.tiny_vae``) to ``pipe`` in place.

    Parameters
    ----------
    pipe: a loaded pipeline, already on ``device``.
    options: names from ``SPEEDUPS`` (validated by ``check_speedups``).
    device: the pipeline's device (for the log).
    tiny_vae: None, or a source for ``swap_tiny_vae`` (swapped first, so the other options
        act on the new VAE).
    dtype, cache_dir: for loading the tiny VAE.

    Returns
    -------
    What was applied, in order (e.g. ``["tiny_vae:random", "channels_last"]``).
    """
    import torch

    names = check_speedups(options)
    applied: list[str] = []
    if tiny_vae:
        applied.append(swap_tiny_vae(pipe, tiny_vae, dtype=dtype, cache_dir=cache_dir))
    for name in names:
        if name == "channels_last":
            for module in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)):
                if module is not None:
                    module.to(memory_format=torch.channels_last)
        applied.append(name)
    if applied:
        logger.debug("Speed-ups on %s: %s", device, ", ".join(applied))
    return applied


def remove_channels_last(pipe: DiffusionPipeline) -> None:
    """Undo ``channels_last`` (back to contiguous NCHW weights); used by the benchmark."""
    import torch

    for module in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)):
        if module is not None:
            module.to(memory_format=torch.contiguous_format)
