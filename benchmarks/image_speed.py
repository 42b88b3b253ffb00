"""`bench image`: the engine as configured against a plain ``AutoPipelineForText2Image`` call.

One pipeline is loaded; the engine gets the configured speed-ups (tiny VAE, channels_last,
bf16 autocast, prompt cache) and the plain reference is
``AutoPipelineForText2Image.from_pipe(pipe, vae=<the model's own VAE>)`` called as anyone
would call it (``pipe(prompt, num_inference_steps=..., guidance_scale=..., width=...,
height=...)``). They share the UNet and text encoder objects, so a memory-format speed-up is
switched off around each plain call (outside its timing). Each repeat draws one image on
each side, ours first (interleaved), so load from other processes falls on both alike. Each
side's first call is untimed (oneDNN kernel selection, caches).

CPU threads: torch uses one thread per physical core by default; set
``torch.set_num_threads`` (``torch_threads`` in config.yaml) before loading to pin it. The
thread count and the load average are recorded in the result.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from benchmarks.image_timing import (
    BENCH_PROMPT,
    ModuleTimer,
    device_sync,
    model_name,
    peak_rss_mb,
    run_settings,
)

logger = logging.getLogger(__name__)


def bench_image(
    arch_or_model: str,
    steps: int = 1,
    size: int = 512,
    repeats: int = 3,
    device: str = "cpu",
    *,
    cpu_speedups: list[str] | None = None,
    tiny_vae: str | None = None,
    cpu_runtime: str | None = None,
    runtime_cache: str | None = None,
    **load_kwargs: Any,
) -> dict[str, Any]:
    """Benchmark one model at one size and step count, ours beside plain diffusers.

    Parameters
    ----------
    arch_or_model: a random arch name ("tiny", "small", "sd-turbo", "sd15") or any
        ``image.model`` value (``random:small``, a hub id, a folder, a checkpoint).
    steps: denoising steps per image.
    size: width and height in pixels.
    repeats: images timed on each side after the first (the steady state is their median).
    device: "auto", "cpu", "cuda", "mps".
    cpu_speedups, tiny_vae: the engine's speed-ups (``image.cpu_speedups``,
        ``image.tiny_vae``); the plain reference never gets them.
    cpu_runtime: ``image.cpu_runtime`` (``openvino``: the UNet in OpenVINO). When set, a
        third side runs ours with the PyTorch UNet, interleaved too (``torch_unet_*`` keys).
    runtime_cache: where the converted UNet is kept (``pipelines.cpu_runtime``).
    load_kwargs: passed to ``load_pipeline`` (dtype, cache_dir, tokenizer_cache, ...).

    Returns
    -------
    dict with load_s, first_call_s, steady_s (median per image) and steady_min_s,
    per_step_s (UNet, per step), text_encode_s, vae_decode_s; the same for the plain side
    as reference_*; ratio (best ours / best plain: below 1 is faster) and speedup (best plain
    / best ours), prompt_cache_hits, peak_rss_mb, peak_cuda_mb (cuda only), the settings.
    """
    import torch
    from diffusers import AutoPipelineForText2Image

    from pipelines.image_engine import ImageEngine, ImageRequest
    from pipelines.loading import load_pipeline
    from pipelines.speedups import (
        apply_speedups,
        cuda_fast_defaults,
        remove_channels_last,
    )

    model = model_name(arch_or_model)

    # 1. Load once; keep the model's own VAE for the plain side, then apply our speed-ups.
    start = time.perf_counter()
    pipe, info = load_pipeline(model, device, **load_kwargs)
    own_vae = pipe.vae
    applied = apply_speedups(
        pipe, cpu_speedups, info.device, tiny_vae=tiny_vae, dtype=own_vae.dtype
    )
    runtime = None
    if cpu_runtime and cpu_runtime != "torch":
        from pipelines.cpu_runtime import apply_cpu_runtime, remove_cpu_runtime

        applied += apply_cpu_runtime(pipe, cpu_runtime, info.device, runtime_cache)
        runtime = remove_cpu_runtime(pipe)  # attached around our own calls only
    info = replace(info, speedups=tuple(info.speedups) + tuple(applied))
    engine = ImageEngine(pipe, info)
    load_s = time.perf_counter() - start
    cuda_fast_defaults(info.device)  # as the assistant does on CUDA
    cuda = info.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sync = device_sync(info.device)
    reference = AutoPipelineForText2Image.from_pipe(pipe, vae=own_vae)
    reference.set_progress_bar_config(disable=True)
    channels_last = "channels_last" in applied

    def plain() -> None:
        reference(
            BENCH_PROMPT,
            num_inference_steps=steps,
            guidance_scale=info.default_guidance,
            width=size,
            height=size,
        )

    def run_plain() -> float:
        if channels_last:
            remove_channels_last(pipe)  # the plain side runs the default memory format
        try:
            begin = time.perf_counter()
            plain()
            sync()
            return time.perf_counter() - begin
        finally:
            if channels_last:
                apply_speedups(pipe, ["channels_last"], info.device)

    timers = {
        side: {
            "text": ModuleTimer(pipe.text_encoder, sync),
            "unet": ModuleTimer(pipe.unet, sync),
            "vae": ModuleTimer(module.decoder, sync),
        }
        for side, module in (("ours", pipe.vae), ("plain", own_vae), ("torch", pipe.vae))
        if side != "torch" or runtime is not None
    }

    def activate(side: str | None) -> None:
        for name, group in timers.items():
            for timer in group.values():
                timer.active = name == side

    request = ImageRequest(BENCH_PROMPT, seed=0, steps=steps, width=size, height=size)

    def run_ours(seed: int, with_runtime: bool = True) -> float:
        if runtime is not None and with_runtime:
            runtime.attach()
        try:
            begin = time.perf_counter()
            engine.generate(replace(request, seed=seed))
            sync()
            return time.perf_counter() - begin
        finally:
            if runtime is not None:
                runtime.detach()

    # 2. First calls (kernel selection, caches, the OpenVINO compile), untimed in the table.
    activate(None)
    first_call_s = run_ours(0)
    reference_first_s = run_plain()
    torch_first_s = run_ours(0, with_runtime=False) if runtime is not None else None

    # 3. Steady state: ours and plain taking turns.
    times, ref_times, torch_times = [], [], []
    for i in range(repeats):
        activate("ours")
        times.append(run_ours(i + 1))
        activate("plain")
        ref_times.append(run_plain())
        if runtime is not None:
            activate("torch")
            torch_times.append(run_ours(i + 1, with_runtime=False))
    activate(None)
    for group in timers.values():
        for timer in group.values():
            timer.remove()
    n = max(repeats, 1)

    def breakdown(side: str) -> dict[str, float]:
        t = timers[side]
        return {
            "per_step_s": round(t["unet"].total_s / max(t["unet"].calls, 1), 3),
            "text_encode_s": round(t["text"].total_s / n, 3),
            "vae_decode_s": round(t["vae"].total_s / n, 3),
        }

    ours, theirs = breakdown("ours"), breakdown("plain")
    best_s = min(times, default=float("nan"))
    best_reference_s = min(ref_times, default=float("nan"))
    result = {
        **run_settings(model, engine, steps, size, repeats),
        "tiny_vae": tiny_vae,
        "guidance": info.default_guidance,
        "load_s": round(load_s, 3),
        "first_call_s": round(first_call_s, 3),
        "steady_s": round(statistics.median(times), 3) if times else float("nan"),
        "steady_min_s": round(best_s, 3),
        **ours,
        "reference_first_call_s": round(reference_first_s, 3),
        "reference_steady_s": round(statistics.median(ref_times), 3) if ref_times else None,
        "reference_min_s": round(best_reference_s, 3),
        **{f"reference_{key}": value for key, value in theirs.items()},
        "ratio": round(best_s / best_reference_s, 3) if best_reference_s else None,
        "speedup": round(best_reference_s / best_s, 2) if best_s else None,
        "prompt_cache_hits": engine.prompt_cache_hits,
        "peak_rss_mb": peak_rss_mb(),
    }
    if runtime is not None:
        best_torch_s = min(torch_times)
        result.update(
            {
                "cpu_runtime": cpu_runtime,
                "runtime_precision": runtime.precision,
                "torch_unet_first_call_s": round(torch_first_s, 3),
                "torch_unet_steady_s": round(statistics.median(torch_times), 3),
                "torch_unet_min_s": round(best_torch_s, 3),
                **{f"torch_unet_{key}": value for key, value in breakdown("torch").items()},
                "torch_unet_speedup": round(best_reference_s / best_torch_s, 2),
            }
        )
    if cuda:
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    logger.info("Image bench: %s", result)
    return result


ROWS = [  # (label, our key, plain key); the torch-UNet column (when there) adds torch_unet_
    ("first call", "first_call_s", "reference_first_call_s"),
    ("per image (median)", "steady_s", "reference_steady_s"),
    ("per image (best)", "steady_min_s", "reference_min_s"),
    ("UNet per step", "per_step_s", "reference_per_step_s"),
    ("text encoder", "text_encode_s", "reference_text_encode_s"),
    ("VAE decode", "vae_decode_s", "reference_vae_decode_s"),
]


TORCH_KEYS = {"steady_s": "torch_unet_steady_s", "steady_min_s": "torch_unet_min_s"}


def print_image_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    """Print a ``bench_image`` result as a markdown table: plain diffusers beside ours."""
    speedups = ", ".join(result["speedups"]) or "none"
    load = result.get("load_avg")
    out(
        f"\nImage engine: {result['model']} on {result['device']} ({result['dtype']}, "
        f"{result['threads']} threads), {result['size']}x{result['size']}, {result['steps']} "
        f"step(s), {result['repeats']} timed runs each, interleaved; ours: {speedups}"
        + (f"; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" if load else "")
        + "\n"
    )
    torch_side = "torch_unet_min_s" in result
    if not torch_side:
        out("| seconds | plain AutoPipelineForText2Image | ours |")
        out("|---|---|---|")
        for label, ours, plain in ROWS:
            out(f"| {label} | {result[plain]:.3f} | {result[ours]:.3f} |")
        out(
            f"| **plain / ours (best)** | | **{result['speedup']:.2f}x faster** "
            f"(ratio {result['ratio']}) |"
        )
    else:
        runtime = f"ours, UNet in {result['cpu_runtime']} ({result['runtime_precision']})"
        out(f"| seconds | plain AutoPipelineForText2Image | ours, UNet in torch | {runtime} |")
        out("|---|---|---|---|")
        for label, ours, plain in ROWS:
            torch_key = TORCH_KEYS.get(ours, "torch_unet_" + ours)
            out(f"| {label} | {result[plain]:.3f} | {result[torch_key]:.3f} | {result[ours]:.3f} |")
        out(
            f"| **plain / ours (best)** | | **{result['torch_unet_speedup']:.2f}x faster** | "
            f"**{result['speedup']:.2f}x faster** |"
        )
    cuda = f", peak CUDA {result['peak_cuda_mb']} MiB" if "peak_cuda_mb" in result else ""
    out(
        f"\nload {result['load_s']:.1f} s, prompt cache hits {result['prompt_cache_hits']}, "
        f"peak RSS {result['peak_rss_mb']} MiB{cuda}"
    )
