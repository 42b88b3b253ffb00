"""`bench image --compare`: the speed-ups and ``image.compile`` modes against the default eager
path on one loaded pipeline.

On a CPU the variants take turns image by image, so their ratios hold on a shared machine; on
CUDA each variant runs its images in one block (the GPU is not shared, and switching memory
formats between images would force CUDA graphs to be captured again). Each variant's first
image is reported apart: for a compile variant it is the compile time.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
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

# name -> what the variant changes; applied before and undone after each timed image.
COMPARE_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "channels_last": {"speedups": ["channels_last"]},
    "tiny_vae": {"tiny_vae": True},
    "channels_last+tiny_vae": {"speedups": ["channels_last"], "tiny_vae": True},
    "threads=1": {"threads": 1},
    "bf16-autocast": {"autocast": "bfloat16"},  # slow without native bf16: not run by default
    # image.compile modes (first image = the compile); not run by default: minutes to compile.
    "compile=default": {"compile": "default"},
    "compile=max-autotune": {"compile": "max-autotune"},
    "compile=reduce-overhead": {"compile": "reduce-overhead"},
}
DEFAULT_COMPARE = ("default", "channels_last", "tiny_vae", "channels_last+tiny_vae", "threads=1")


@contextmanager
def _variant(pipe, spec: dict[str, Any], tiny_vae_model, compiled: dict | None = None):
    """Switch ``pipe`` to one variant for the duration of the block, then back.

    ``compiled`` keeps each compile mode's wrappers between blocks (mode -> wrappers), so a
    mode compiles once per run, on its first image, as the assistant's warm-up would.
    """
    import torch

    from pipelines.speedups import (
        apply_speedups,
        compile_pipeline,
        remove_channels_last,
        remove_compile,
    )

    vae, threads = pipe.vae, torch.get_num_threads()
    device = str(pipe.device)
    mode = spec.get("compile")
    speedups = list(spec.get("speedups") or [])
    if mode and device.startswith("cuda"):
        speedups.append("channels_last")  # as compile_pipeline does on CUDA
    compiled = {} if compiled is None else compiled
    try:
        if spec.get("tiny_vae"):
            pipe.vae = tiny_vae_model
        apply_speedups(pipe, speedups, device)
        if mode in compiled:
            for forward in compiled[mode]:
                forward.attach()
        elif mode:
            compile_pipeline(pipe, mode, device)
        if spec.get("threads"):
            torch.set_num_threads(spec["threads"])
        dtype = getattr(torch, spec["autocast"]) if spec.get("autocast") else None
        with torch.autocast(pipe.device.type, dtype=dtype, enabled=dtype is not None):
            yield
    finally:
        torch.set_num_threads(threads)
        if mode:
            compiled[mode] = remove_compile(pipe)
        if speedups:
            remove_channels_last(pipe)
        pipe.vae = vae


def compare_image(
    arch_or_model: str,
    steps: int = 1,
    size: int = 512,
    repeats: int = 3,
    device: str = "cpu",
    variants: Iterable[str] | None = None,
    tiny_vae: str = "random",
    **load_kwargs: Any,
) -> dict[str, Any]:
    """Time the engine's ``generate`` under each speed-up variant on one loaded pipeline.

    Each variant first draws one image (its first call, reported as ``first_call_s``: for a
    compile variant, the compile). Then, on a CPU, each round runs every variant once, in turn
    (interleaved), so load from other processes falls on all of them alike; on CUDA each
    variant runs its ``repeats`` images in one block.

    Parameters
    ----------
    arch_or_model, steps, size, repeats, device, load_kwargs: as for ``bench_image``.
    variants: names from ``COMPARE_VARIANTS``; None runs ``DEFAULT_COMPARE``.
    tiny_vae: the TAESD source of the ``tiny_vae`` variants (``random``, an id or a folder).

    Returns
    -------
    dict with the settings and ``variants``: name -> first_call_s, steady_s (median),
    steady_min_s, per_step_s (UNet), vae_decode_s, ratio (best time / best default time; below
    1 is faster) and median_ratio (the same for medians: on a busy machine the two can
    disagree).
    """

    from pipelines.image_engine import ImageEngine, ImageRequest
    from pipelines.speedups import cuda_fast_defaults, load_tiny_vae

    names = list(variants or DEFAULT_COMPARE)
    unknown = [n for n in names if n not in COMPARE_VARIANTS]
    if unknown:
        raise ValueError(f"Unknown variants {unknown}; choose from {list(COMPARE_VARIANTS)}")
    if "default" not in names:
        names.insert(0, "default")
    model = model_name(arch_or_model)
    start = time.perf_counter()
    engine = ImageEngine.from_model(model, device=device, **load_kwargs)
    load_s = time.perf_counter() - start
    pipe = engine.pipe
    cuda_fast_defaults(engine.info.device)  # as the assistant does on CUDA, for every variant
    tiny = None
    if any(COMPARE_VARIANTS[n].get("tiny_vae") for n in names):
        tiny = load_tiny_vae(tiny_vae, dtype=pipe.vae.dtype).to(pipe.vae.device)
    cuda = pipe.device.type == "cuda"
    sync = device_sync(engine.info.device)

    compiled: dict[str, list] = {}  # compile mode -> its wrappers, kept between blocks

    def timed_image(seed: int) -> tuple[float, float, float, int]:
        unet_t, vae_t = ModuleTimer(pipe.unet, sync), ModuleTimer(pipe.vae.decoder, sync)
        try:
            begin = time.perf_counter()
            engine.generate(
                ImageRequest(BENCH_PROMPT, seed=seed, steps=steps, width=size, height=size)
            )
            sync()
            total = time.perf_counter() - begin
        finally:
            unet_t.remove()
            vae_t.remove()
        return total, unet_t.total_s, vae_t.total_s, unet_t.calls

    def one_image(name: str, seed: int) -> tuple[float, float, float, int]:
        with _variant(pipe, COMPARE_VARIANTS[name], tiny, compiled):
            return timed_image(seed)

    first: dict[str, float] = {}
    runs: dict[str, list[tuple[float, float, float, int]]] = {n: [] for n in names}
    if cuda:  # one block per variant, switched once: the weights keep their storage
        for name in names:
            with _variant(pipe, COMPARE_VARIANTS[name], tiny, compiled):
                first[name] = timed_image(0)[0]
                runs[name] = [timed_image(i + 1) for i in range(repeats)]
    else:
        for name in names:  # first call per variant: oneDNN kernels, caches, the compile
            first[name] = one_image(name, 0)[0]
        for i in range(repeats):
            for name in names:
                runs[name].append(one_image(name, i + 1))
    best_default = min(r[0] for r in runs["default"]) if runs["default"] else float("nan")
    median_default = (
        statistics.median(r[0] for r in runs["default"]) if runs["default"] else float("nan")
    )
    table = {}
    for name, rows in runs.items():
        totals = [r[0] for r in rows]
        calls = max(sum(r[3] for r in rows), 1)
        best = min(totals, default=float("nan"))
        table[name] = {
            "compile": _compile_label(COMPARE_VARIANTS[name].get("compile"), cuda),
            "first_call_s": round(first[name], 3),
            "steady_s": round(statistics.median(totals), 3) if totals else float("nan"),
            "steady_min_s": round(best, 3),
            "per_step_s": round(sum(r[1] for r in rows) / calls, 3),
            "vae_decode_s": round(sum(r[2] for r in rows) / max(len(rows), 1), 3),
            "ratio": round(best / best_default, 3) if best_default else None,
            "median_ratio": (
                round(statistics.median(totals) / median_default, 3) if median_default else None
            ),
        }
    result = {
        **run_settings(model, engine, steps, size, repeats),
        "load_s": round(load_s, 3),
        "tiny_vae": tiny_vae,
        "variants": table,
        "peak_rss_mb": peak_rss_mb(),
    }
    logger.info("Image speed-up comparison: %s", result)
    return result


def _compile_label(mode: str | None, cuda: bool) -> str | None:
    """The torch.compile mode a compile variant really ran (CUDA graphs only on CUDA)."""
    from pipelines.speedups import _TORCH_MODES_OFF_CUDA

    if not mode:
        return None
    return mode if cuda else _TORCH_MODES_OFF_CUDA.get(mode, mode)


def print_compare_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    """Print a ``compare_image`` result as a markdown table, ratios against ``default``."""
    out(
        f"\nSpeed-ups: {result['model']} on {result['device']} ({result['dtype']}, "
        f"{result['threads']} threads), {result['size']}x{result['size']}, {result['steps']} "
        f"step(s), {result['repeats']} timed runs each, interleaved; tiny VAE: "
        f"{result['tiny_vae']}\n"
    )
    out(
        "| variant | first call s | per image median s | best s | UNet per step s "
        "| VAE decode s | vs default (best) | vs default (median) |"
    )
    out("|---|---|---|---|---|---|---|---|")
    for name, r in result["variants"].items():
        if r.get("compile") and r["compile"] != name.removeprefix("compile="):
            name = f"{name} (ran as {r['compile']})"
        out(
            f"| {name} | {r['first_call_s']:.3f} | {r['steady_s']:.3f} | {r['steady_min_s']:.3f} "
            f"| {r['per_step_s']:.3f} | {r['vae_decode_s']:.3f} | {r['ratio']:.2f}x "
            f"| {r['median_ratio']:.2f}x |"
        )
    out(f"\npeak RSS {result['peak_rss_mb']} MiB")
    if any(r.get("compile") for r in result["variants"].values()):
        out(
            "First call of a compile variant = its compile. Later compile variants reuse kernels "
            "that earlier ones built (Inductor's on-disk cache, dynamo's in-memory one): for a "
            "cold figure run one compile variant per process with a fresh "
            "TORCHINDUCTOR_CACHE_DIR."
        )
