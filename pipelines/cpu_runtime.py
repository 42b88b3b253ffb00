"""``image.cpu_runtime``: run the UNet through another CPU runtime (opt-in; default ``torch``).

Values (``CPU_RUNTIMES``):

- ``torch`` (default): the UNet runs in PyTorch, with whatever ``image.cpu_speedups`` set.
- ``openvino``: the UNet is converted once with ``openvino.convert_model`` (the PyTorch
  frontend; no ONNX file in between), saved as OpenVINO IR under
  ``<data_dir>/openvino/<fingerprint>/unet.xml`` and compiled for the CPU at each new input
  shape. Later starts read the IR instead of converting again. The fingerprint covers the UNet
  config, a sample of its weights and the runtime versions, so new weights convert anew.
  OpenVINO picks the CPU's fastest precision itself (bfloat16 on AMX / AVX512-BF16 CPUs,
  float32 elsewhere); ``openvino_precision`` (``f32``) forces float32.

Only the UNet moves; the text encoder and the VAE (or the tiny VAE) stay in PyTorch. The
PyTorch UNet stays loaded beside it: calls the IR cannot take (ControlNet residuals,
``cross_attention_kwargs``, a 9-channel inpaint input, a size whose latent sides the UNet's
upsamplers cannot halve evenly, e.g. 576x648 with SD's 8x8 factor) run the PyTorch UNet as
before, and
pipelines derived with ``from_pipe`` share the same module. It is the same pattern as
``image.compile`` (``pipelines.speedups.CompiledForward``): an instance ``forward`` on the
UNet module, so hooks, ``.config``, ``.dtype`` and ``from_pipe`` keep working.

A missing package is an ``ImageError("model-missing")`` that names the setting and the
``pip install`` line. On a GPU the setting is ignored with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

from pipelines.errors import ImageError, checked_choice

logger = logging.getLogger(__name__)

CPU_RUNTIMES = ("torch", "openvino")  # ``image.cpu_runtime`` values
OPENVINO_PIN = "openvino==2026.4.1"  # what the error message tells the user to install
PRECISIONS = ("auto", "f32", "bf16")


def check_cpu_runtime(name: str | None) -> str:
    """Normalise and validate ``image.cpu_runtime`` (None means ``torch``).

    Raises
    ------
    ImageError("input-invalid") naming ``image.cpu_runtime`` and the allowed values.
    """
    return checked_choice("image.cpu_runtime", name, CPU_RUNTIMES, "torch")


def import_openvino():
    """``import openvino``, or an ImageError naming the setting and the package to install."""
    try:
        import openvino
    except ImportError as e:
        raise ImageError(
            "model-missing",
            "Setting `image.cpu_runtime: openvino` needs the OpenVINO runtime, which is not "
            f"installed: run `.venv/bin/python -m pip install {OPENVINO_PIN}`, or set "
            "image.cpu_runtime to torch.",
        ) from e
    return openvino


def unet_fingerprint(unet) -> str:
    """A short hash of the UNet's config, a strided sample of every weight, and the versions
    of the libraries the IR depends on: the export cache key."""
    import diffusers
    import torch

    openvino = import_openvino()
    digest = hashlib.sha256()
    config = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(f"{torch.__version__}|{diffusers.__version__}|{openvino.__version__}".encode())
    with torch.no_grad():
        for name, param in unet.state_dict().items():
            flat = param.detach().reshape(-1)
            step = max(1, flat.numel() // 256)
            sample = flat[::step][:256].to(torch.float32).contiguous()
            digest.update(name.encode())
            digest.update(str(tuple(param.shape)).encode())
            digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def _export_module(unet):
    """The UNet as a module of three tensors returning one tensor (what the IR holds)."""
    import torch

    class UNetForExport(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, sample, timestep, encoder_hidden_states):
            return self.inner(sample, timestep, encoder_hidden_states, return_dict=False)[0]

    return UNetForExport(unet)


def export_unet_ir(unet, path: Path) -> Path:
    """Convert ``unet`` to OpenVINO IR at ``path`` (``unet.xml`` + ``unet.bin``), atomically:
    a half-written export is never read as a finished one."""
    import torch

    openvino = import_openvino()
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = unet.config
    size = int(cfg.sample_size) if isinstance(cfg.sample_size, int) else int(cfg.sample_size[0])
    cross = cfg.cross_attention_dim
    cross = int(cross[0] if isinstance(cross, list | tuple) else cross)
    example = (
        torch.randn(1, cfg.in_channels, size, size),
        torch.tensor([999.0]),
        torch.randn(1, 77, cross),
    )
    shapes = [
        openvino.PartialShape([-1, cfg.in_channels, -1, -1]),
        openvino.PartialShape([-1]),
        openvino.PartialShape([-1, -1, cross]),
    ]
    start = time.perf_counter()
    previous = unet.__dict__.pop("forward", None)  # convert the module's own forward
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The trace holds diffusers' shape checks as constants: expected, and the sizes
            # where that would be wrong run the PyTorch UNet (``OpenVINOForward.__call__``).
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            model = openvino.convert_model(
                _export_module(unet), example_input=example, input=shapes
            )
    finally:
        if previous is not None:
            unet.forward = previous
    for port, name in zip(
        model.inputs, ("sample", "timestep", "encoder_hidden_states"), strict=True
    ):
        port.get_tensor().set_names({name})
    tmp = path.with_name(path.stem + ".partial.xml")
    openvino.save_model(model, str(tmp), compress_to_fp16=True)
    tmp.with_suffix(".bin").replace(path.with_suffix(".bin"))
    tmp.replace(path)
    logger.info(
        "Converted the UNet to OpenVINO IR in %.1f s: %s", time.perf_counter() - start, path
    )
    return path


class OpenVINOForward:
    """An OpenVINO-compiled UNet behind the module's ``forward`` (see the module doc)."""

    def __init__(self, unet, ir_path: Path, precision: str = "auto", threads: int | None = None):
        openvino = import_openvino()
        self.unet, self.ir_path = unet, Path(ir_path)
        self.eager = type(unet).forward.__get__(unet)
        self.core = openvino.Core()
        self.model = self.core.read_model(str(ir_path))
        self.properties: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self.properties["INFERENCE_NUM_THREADS"] = int(threads)
        if precision != "auto":
            self.properties["INFERENCE_PRECISION_HINT"] = precision
        self.compiled: dict[tuple, Any] = {}  # static input shapes -> compiled model
        self.precision = ""
        self.fallbacks = 0
        # Latent sides the UNet's upsamplers halve and double exactly; other sizes make the
        # PyTorch UNet pass explicit upsample sizes, which a traced graph holds as constants.
        self.up_factor = 2 ** sum(1 for b in unet.up_blocks if b.upsamplers)

    def _compiled_for(self, shapes: tuple):
        compiled = self.compiled.get(shapes)
        if compiled is None:
            start = time.perf_counter()
            model = self.model.clone()
            model.reshape({i: list(shape) for i, shape in enumerate(shapes)})
            compiled = self.core.compile_model(model, "CPU", self.properties)
            hint = compiled.get_property("INFERENCE_PRECISION_HINT")
            self.precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)
            self.compiled[shapes] = compiled
            logger.info(
                "image.cpu_runtime=openvino: UNet compiled for %s in %.1f s (precision %s)",
                shapes[0],
                time.perf_counter() - start,
                self.precision,
            )
        return compiled

    def __call__(self, sample, timestep, encoder_hidden_states=None, *args, **kwargs):
        import torch

        extra = {k: v for k, v in kwargs.items() if k != "return_dict" and v is not None}
        if (
            args
            or extra
            or encoder_hidden_states is None
            or sample.shape[1] != self.unet.config.in_channels
            or sample.device.type != "cpu"
            or any(side % self.up_factor for side in sample.shape[-2:])
        ):
            self.fallbacks += 1
            return self.eager(sample, timestep, encoder_hidden_states, *args, **kwargs)
        batch = sample.shape[0]
        t = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1)
        t = t.expand(batch) if t.numel() == 1 else t
        inputs = (
            sample.detach().to(torch.float32).contiguous().numpy(),
            t.contiguous().numpy(),
            encoder_hidden_states.detach().to(torch.float32).contiguous().numpy(),
        )
        compiled = self._compiled_for(tuple(tuple(x.shape) for x in inputs))
        out = compiled(inputs, share_inputs=True)[0]
        result = torch.from_numpy(out.copy()).to(sample.dtype)
        if kwargs.get("return_dict", True):
            from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

            return UNet2DConditionOutput(sample=result)
        return (result,)

    def attach(self) -> None:
        self.unet.forward = self

    def detach(self) -> None:
        if self.unet.__dict__.get("forward") is self:
            del self.unet.forward


def apply_cpu_runtime(
    pipe,
    runtime: str | None,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    *,
    precision: str = "auto",
    threads: int | None = None,
) -> list[str]:
    """Apply ``image.cpu_runtime`` to ``pipe.unet`` in place.

    Parameters
    ----------
    pipe: a loaded pipeline on ``device`` (apply after ``apply_speedups``).
    runtime: a value of ``CPU_RUNTIMES`` (None/``torch``: nothing to do).
    device: the pipeline's device; anything but ``cpu`` skips with a warning.
    cache_dir: where the IR is kept (``<cache_dir>/openvino/<fingerprint>/``); None uses
        ``~/.cache/voice-image-assistant``.
    precision: ``auto`` (OpenVINO's choice for this CPU), ``f32`` or ``bf16``.
    threads: OpenVINO's thread count (None: torch's current ``get_num_threads``).

    Returns
    -------
    What was applied, e.g. ``["cpu_runtime:openvino"]``; empty for ``torch`` or off-CPU.

    Raises
    ------
    ImageError("model-missing") when the runtime package is not installed;
    ImageError("input-invalid") for an unknown runtime or precision.
    """
    name = check_cpu_runtime(runtime)
    if name == "torch":
        return []
    if device != "cpu":
        logger.warning("image.cpu_runtime=%s is for CPUs; on %s it is ignored", name, device)
        return []
    if precision not in PRECISIONS:
        raise ImageError(
            "input-invalid",
            f"Unknown OpenVINO precision {precision!r}: use one of {', '.join(PRECISIONS)}.",
        )
    import torch

    unet = pipe.unet
    root = Path(cache_dir or "~/.cache/voice-image-assistant").expanduser() / "openvino"
    start = time.perf_counter()
    ir = root / unet_fingerprint(unet) / "unet.xml"
    if not (ir.is_file() and ir.with_suffix(".bin").is_file()):
        export_unet_ir(unet, ir)
    forward = OpenVINOForward(unet, ir, precision, threads or torch.get_num_threads())
    forward.attach()
    logger.info("image.cpu_runtime=openvino ready in %.1f s (%s)", time.perf_counter() - start, ir)
    return [f"cpu_runtime:{name}"]


def remove_cpu_runtime(pipe) -> OpenVINOForward | None:
    """Put the PyTorch UNet back (benchmark); returns the wrapper to ``attach()`` again."""
    forward = getattr(pipe.unet, "__dict__", {}).get("forward")
    if isinstance(forward, OpenVINOForward):
        forward.detach()
        return forward
    return None
