"""Optional speed-ups for a loaded text-to-image pipeline (all off by default).

Options of ``image.cpu_speedups`` (a list; the name says where they were measured, they work
on any device):

- ``channels_last``: UNet and VAE weights and activations in NHWC memory order, which the
  oneDNN convolutions on x86 CPUs run faster (measured in ``docs/BENCHMARKS.md``).
- ``bf16_autocast``: every run under ``torch.autocast("cpu", torch.bfloat16)`` (matmuls and
  convolutions in bfloat16, norms and softmax in float32; the weights stay float32). Only on a
  CPU with bf16 instructions (``common.devices.cpu_has_native_bf16``: AVX512-BF16 or AMX, e.g.
  AMD Zen 4/5, Intel Sapphire Rapids); elsewhere it is skipped with a warning, because
  emulated bf16 ran 7-50x slower than float32 on an AVX2-only CPU. On a GPU ``image.dtype``
  sets the precision instead, so it is skipped there too.
- ``prompt_cache``: prompt embeddings are kept for the last few prompts
  (``pipelines.text_conditioning``); a repeated prompt skips the text encoder.

``image.tiny_vae`` swaps the full Stable Diffusion VAE for a TAESD decoder
(``diffusers.AutoencoderTiny``, about 2.4M parameters): a hub id (``madebyollin/taesd`` for
SD 1.x/2.x, ``madebyollin/taesdxl`` for SDXL), a local folder, or ``random`` (the placeholder
architecture with random weights, for offline tests and benchmarks). Pictures come out a
little softer; on SD-class models the decode gets many times cheaper.

Measured: bfloat16 autocast on a CPU without native bf16 instructions (AVX2 only) ran 7-50x
slower than float32, hence the check; on an AVX512-BF16 CPU it halves the UNet's time.

``image.compile`` (the GPU speed path, ``compile_pipeline``) wraps the UNet's and the VAE
decoder's ``forward`` in ``torch.compile`` at load; the work happens on the first call (the
start-up warm-up, which then runs at the configured size). Shapes are static
(``dynamic=False``): every new input shape (image size, batch, CFG on/off, a prompt over 75
tokens) compiles once more, up to ``torch._dynamo.config.recompile_limit`` shapes per
function, after which new shapes run eager. A compile that fails (no C compiler, no Triton, an
unsupported op) logs a warning naming the setting and the module runs eager from then on.
``cuda_fast_defaults`` turns on TF32 matmuls and cuDNN autotuning on CUDA devices.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.hub import first_line, may_download
from pipelines.errors import ImageError, checked_choice

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderTiny, DiffusionPipeline

logger = logging.getLogger(__name__)

SPEEDUPS = ("channels_last", "bf16_autocast", "prompt_cache")  # ``image.cpu_speedups`` values
COMPILE_MODES = ("none", "default", "max-autotune", "reduce-overhead")  # ``image.compile``
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
            if not may_download():
                raise missing("not a folder, not in the Hugging Face cache, and offline.") from None
            logger.info("Tiny VAE %s is not cached; downloading it from the hub", source)
            return AutoencoderTiny.from_pretrained(source, cache_dir=cache_dir)
    except ImageError:
        raise
    except Exception as e:  # wrong files, wrong class, network errors
        raise missing(f"{type(e).__name__}: {first_line(e)}.") from e


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
    What was applied, in order (e.g. ``["tiny_vae:random", "channels_last"]``). A
    ``bf16_autocast`` that this device cannot use well is left out (and logged). The engine
    reads ``bf16_autocast`` and ``prompt_cache`` from ``ModelInfo.speedups``; they change no
    module here.
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
        elif name == "bf16_autocast" and not bf16_autocast_helps(device):
            continue
        applied.append(name)
    if applied:
        logger.debug("Speed-ups on %s: %s", device, ", ".join(applied))
    return applied


def bf16_autocast_helps(device: str) -> bool:
    """True when ``bf16_autocast`` should run on ``device``: a CPU with bf16 instructions."""
    from common.devices import cpu_has_native_bf16

    if device != "cpu":
        logger.info(
            "image.cpu_speedups bf16_autocast is for CPUs; on %s image.dtype sets the "
            "precision (skipped)",
            device,
        )
        return False
    if not cpu_has_native_bf16():
        logger.warning(
            "image.cpu_speedups bf16_autocast is skipped: this CPU has no bf16 instructions "
            "(AVX512-BF16 or AMX), and emulated bf16 is several times slower than float32"
        )
        return False
    return True


def remove_channels_last(pipe: DiffusionPipeline) -> None:
    """Undo ``channels_last`` (back to contiguous NCHW weights); used by the benchmark."""
    import torch

    for module in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)):
        if module is not None:
            module.to(memory_format=torch.contiguous_format)


# -- image.compile ---------------------------------------------------------------------------


def check_compile(mode: str | None) -> str:
    """Normalise and validate ``image.compile`` (None means "none").

    Raises
    ------
    ImageError("input-invalid") naming ``image.compile`` and the allowed values.
    """
    spelled = mode.replace("_", "-") if isinstance(mode, str) else mode  # max_autotune
    return checked_choice("image.compile", spelled, COMPILE_MODES, "none")


def cuda_fast_defaults(device: str) -> list[str]:
    """On a CUDA device, allow TF32 matmuls/convolutions and cuDNN autotuning (process-wide).

    Off CUDA this does nothing, so CPU behaviour is unchanged. Uses the ``allow_tf32`` flags
    rather than the newer ``fp32_precision`` ones: Inductor itself reads the old flags, and
    torch refuses a mix of the two APIs.

    Returns
    -------
    What was switched on (empty off CUDA).
    """
    if not str(device).startswith("cuda"):
        return []
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls (upcast parts, fp32 VAEs)
    torch.backends.cudnn.allow_tf32 = True
    # Picks the fastest convolution per shape; shapes are fixed per image size, so it pays.
    torch.backends.cudnn.benchmark = True
    return ["tf32", "cudnn_benchmark"]


def _compile_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the compiler failed", not "the input is wrong"."""
    from torch._dynamo.exc import TorchDynamoException  # BackendCompilerFailed, TritonMissing

    errors: list[type[BaseException]] = [TorchDynamoException, ImportError]
    try:
        from torch._inductor.exc import CppCompileError, InvalidCxxCompiler

        errors += [CppCompileError, InvalidCxxCompiler]
    except ImportError:  # pragma: no cover - older torch
        pass
    return tuple(errors)


def _shape_key(args: tuple, kwargs: dict) -> tuple:
    """The tensor shapes (and dtypes) of a call: what a static-shape compile specialises on."""

    def key(value):
        shape = getattr(value, "shape", None)
        if shape is not None:
            return (tuple(shape), str(getattr(value, "dtype", "")))
        if isinstance(value, dict):
            return tuple(sorted((k, key(v)) for k, v in value.items()))
        if isinstance(value, list | tuple):
            return tuple(key(v) for v in value)
        return None

    return key(args), tuple(sorted((k, key(v)) for k, v in kwargs.items()))


class CompiledForward:
    """A module's ``forward`` routed through ``torch.compile``, falling back to eager.

    Installed as the module's instance attribute ``forward``, so ``module(...)`` keeps running
    hooks eagerly (the benchmark's timers) and every pipeline derived with ``from_pipe`` shares
    it. Compilation happens lazily, on the first call with each new input shape; that call is
    timed and logged. Any error while compiling a new shape, or a compiler error later, is
    retried eagerly: if eager works the compiler was at fault and the module stays eager
    (warning names ``image.compile``); if eager fails too, that error is the real one and is
    raised. Out-of-memory errors are raised at once.
    """

    def __init__(self, module, name: str, mode: str, compiled, previous=None):
        self.module, self.name, self.mode = module, name, mode
        self.compiled = compiled
        self.previous = previous  # an instance ``forward`` that was there before, if any
        self.eager = previous if previous is not None else type(module).forward.__get__(module)
        self.shapes: set[tuple] = set()
        self.failed: BaseException | None = None
        functools.update_wrapper(self, self.eager)  # keeps inspect.signature(module.forward)

    def __call__(self, *args, **kwargs):
        if self.failed is not None:
            return self.eager(*args, **kwargs)
        import torch

        shape = _shape_key(args, kwargs)
        new = shape not in self.shapes
        if new and self.shapes:
            logger.info(
                "image.compile=%s: %s sees a new input shape (new image size, batch or prompt "
                "length); compiling once more (%d shapes so far)",
                self.mode,
                self.name,
                len(self.shapes) + 1,
            )
            limit = _recompile_limit()
            if limit is not None and len(self.shapes) >= limit:
                logger.warning(
                    "image.compile=%s: %s has met torch._dynamo.config.recompile_limit (%d): "
                    "further new shapes may run eager",
                    self.mode,
                    self.name,
                    limit,
                )
        start = time.perf_counter()
        try:
            out = self.compiled(*args, **kwargs)
        except torch.OutOfMemoryError:
            raise
        except Exception as error:
            if not (new or isinstance(error, _compile_errors())):
                raise
            out = self.eager(*args, **kwargs)  # raises the real error if the input is at fault
            self._fall_back(error)
            return out
        if new:
            self.shapes.add(shape)
            logger.info(
                "image.compile=%s: %s compiled for a new shape in %.1f s",
                self.mode,
                self.name,
                time.perf_counter() - start,
            )
        return out

    def _fall_back(self, error: BaseException) -> None:
        self.failed = error
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        logger.warning(
            "Setting `image.compile: %s` failed for the %s (%s: %s); it runs eager (not "
            "compiled) from now on. Set image.compile to none to skip the attempt.",
            self.mode,
            self.name,
            type(error).__name__,
            first[:300],
        )
        self.detach()

    def attach(self) -> None:
        self.module.forward = self

    def detach(self) -> None:
        """Put the module's own ``forward`` back (eager)."""
        if self.module.__dict__.get("forward") is not self:
            return
        if self.previous is not None:
            self.module.forward = self.previous
        else:
            del self.module.forward


def _recompile_limit() -> int | None:
    try:
        import torch._dynamo.config as dynamo_config
    except ImportError:  # pragma: no cover
        return None
    limit = getattr(dynamo_config, "recompile_limit", None)  # was cache_size_limit before 2.6
    return limit if limit is not None else getattr(dynamo_config, "cache_size_limit", None)


def _compile_targets(pipe) -> list[tuple[str, Any]]:
    """(name, module) pairs that ``image.compile`` compiles: the UNet and the VAE decoder."""
    targets = []
    unet = getattr(pipe, "unet", None)
    vae = getattr(pipe, "vae", None)
    if unet is not None:
        targets.append(("UNet", unet))
    if vae is not None and getattr(vae, "decoder", None) is not None:
        targets.append(("VAE decoder", vae.decoder))
    return targets


def torch_compile_mode(mode: str, device: str) -> str | None:
    """The ``torch.compile`` mode that ``image.compile`` means on ``device`` (None: off).

    CUDA graphs (in "reduce-overhead" and "max-autotune") exist only on CUDA. Elsewhere
    "reduce-overhead" degrades to "default" with a warning, rather than refusing to start: the
    same config.yaml runs on a laptop and on a GPU box (``device: auto``), as ``cpu_offload``
    and float16 degrade off CUDA. "max-autotune" keeps Inductor's autotuning without graphs.
    """
    mode = check_compile(mode)
    torch_mode = _TORCH_MODES_OFF_CUDA.get(mode, mode)
    if mode == "none":
        return None
    if str(device).startswith("cuda"):
        return mode
    if mode == "reduce-overhead":
        logger.warning(
            "image.compile=reduce-overhead means CUDA graphs, which need a CUDA device; on %s "
            "it compiles as image.compile=default instead",
            device,
        )
    return torch_mode


# What each image.compile mode becomes off CUDA (no CUDA graphs there).
_TORCH_MODES_OFF_CUDA = {"reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}


def compile_pipeline(pipe: DiffusionPipeline, mode: str | None, device: str = "cpu") -> list[str]:
    """Apply ``image.compile`` to ``pipe`` in place: ``torch.compile`` the UNet and the VAE
    decoder (see ``CompiledForward``). Nothing is compiled yet; the first call does it.

    Parameters
    ----------
    pipe: a loaded pipeline, already on ``device`` (call after ``apply_speedups``).
    mode: a value of ``COMPILE_MODES`` ("none" or None: do nothing).
    device: the pipeline's device. On CUDA the weights also go channels_last (Inductor's
        convolution kernels prefer NHWC).

    Returns
    -------
    What was applied, e.g. ``["channels_last", "compile:max-autotune"]``; empty when off, or
    when ``torch.compile`` itself failed (logged as a warning; the pipeline runs eager).
    """
    import torch

    name = check_compile(mode)
    torch_mode = torch_compile_mode(name, device)
    if torch_mode is None:
        return []
    targets = _compile_targets(pipe)
    offloaded = [n for n, m in targets if hasattr(m, "_hf_hook")]
    if offloaded:
        # Offload hooks move weights on every call, which defeats static guards and CUDA graphs.
        logger.warning(
            "image.compile=%s is skipped because image.cpu_offload is on (%s moved by offload "
            "hooks); set cpu_offload: none to compile",
            name,
            ", ".join(offloaded),
        )
        return []
    applied: list[str] = []
    cuda = str(device).startswith("cuda")
    if cuda:
        for module in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)):
            if module is not None:
                module.to(memory_format=torch.channels_last)
        applied.append("channels_last")
        processors = {type(p).__name__ for p in getattr(pipe.unet, "attn_processors", {}).values()}
        if processors and processors != {"AttnProcessor2_0"}:
            logger.info(
                "image.compile on CUDA works best with SDPA attention (image.attention: sdpa); "
                "the UNet uses %s",
                ", ".join(sorted(processors)),
            )
    wrapped: list[CompiledForward] = []
    for label, module in targets:
        previous = module.__dict__.get("forward")
        if isinstance(previous, CompiledForward):  # compiled already: keep that one
            wrapped.append(previous)
            continue
        eager = previous if previous is not None else module.forward
        try:
            # Static shapes: dynamic kernels are slower, and CUDA graphs need fixed shapes.
            compiled = torch.compile(eager, mode=torch_mode, dynamic=False, fullgraph=False)
        except Exception as error:  # e.g. an unsupported Python or platform
            for done in wrapped:
                done.detach()
            logger.warning(
                "Setting `image.compile: %s` could not be applied (%s: %s); the image model "
                "runs eager. Set image.compile to none to skip the attempt.",
                name,
                type(error).__name__,
                str(error).strip().splitlines()[0][:300] if str(error).strip() else "",
            )
            return applied  # channels_last (CUDA) stays: it helps eager too
        forward = CompiledForward(module, label, name, compiled, previous)
        forward.attach()
        wrapped.append(forward)
    applied.append(f"compile:{name}")
    logger.info(
        "image.compile=%s (torch mode %s) on %s: %s compile on first use (the warm-up); each "
        "new image size, batch or prompt length compiles once more, up to "
        "torch._dynamo.config.recompile_limit=%s shapes",
        name,
        torch_mode,
        device,
        " and ".join(label for label, _ in targets),
        _recompile_limit(),
    )
    return applied


def remove_compile(pipe: DiffusionPipeline) -> list[CompiledForward]:
    """Put the eager ``forward`` back on the compiled modules of ``pipe`` (benchmark).

    Returns
    -------
    The detached wrappers; ``attach()`` each to compile again without recompiling.
    """
    detached = []
    for _, module in _compile_targets(pipe):
        forward = module.__dict__.get("forward")
        if isinstance(forward, CompiledForward):
            forward.detach()
            detached.append(forward)
    return detached
