"""Measure the image engine: load time, first call, steady per-image and per-step time, memory.

The same work also runs through a plain diffusers call
(``AutoPipelineForText2Image.from_pipe(pipe)(prompt, num_inference_steps=...)``) so the
engine's own overhead (validation, CPU generator, progress previews) shows as a ratio.

CPU threads: torch uses one thread per physical core by default; set
``torch.set_num_threads`` (or ``OMP_NUM_THREADS``) before loading to pin it. The
thread count is recorded in the result.

``compare_image`` runs the CPU speed-ups (``pipelines.speedups``: channels_last, a tiny VAE,
the thread count, bf16 autocast) and the ``image.compile`` modes (``compile=default``,
``compile=max-autotune``, ``compile=reduce-overhead``) against the default eager path on one
loaded pipeline. On a CPU the variants take turns image by image, so their ratios hold on a
shared machine; on CUDA each variant runs its images in one block (the GPU is not shared, and
switching memory formats between images would force CUDA graphs to be captured again). Each
variant's first image is reported apart: for a compile variant it is the compile time.

``bench_operations`` does the same per operation (generate, img2img, variation, inpaint,
outpaint, depth_edit, upscale, instruct_edit) on one loaded engine, each beside its plain
diffusers equivalent where one exists.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

BENCH_PROMPT = "a photograph of an astronaut riding a horse on the moon"


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where unsupported)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 if sys.platform != "darwin" else 1024 * 1024), 1)


class _Timer:
    """Sums the time spent in a module's forward calls (text encoder, UNet, VAE decoder)."""

    def __init__(self, module, sync=lambda: None):
        self.total_s, self.calls, self._start = 0.0, 0, 0.0
        self._sync = sync  # waits for queued GPU work, so GPU times are real
        self.active = True
        self._handles = [
            module.register_forward_pre_hook(self._begin),
            module.register_forward_hook(self._end),
        ]

    def _begin(self, *args):
        self._sync()
        self._start = time.perf_counter()

    def _end(self, *args):
        self._sync()
        if self.active:
            self.total_s += time.perf_counter() - self._start
            self.calls += 1

    def reset(self):
        self.total_s, self.calls = 0.0, 0

    def remove(self):
        for handle in self._handles:
            handle.remove()


def _settings(model: str, engine, steps: int, size: int, repeats: int) -> dict[str, Any]:
    """What every benchmark result records about the run it measured."""
    import torch

    return {
        "model": model,
        "device": engine.info.device,
        "dtype": engine.info.dtype,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "size": size,
        "repeats": repeats,
    }


def bench_image(
    arch_or_model: str,
    steps: int = 1,
    size: int = 512,
    repeats: int = 3,
    device: str = "cpu",
    **load_kwargs: Any,
) -> dict[str, Any]:
    """Benchmark one model at one size and step count.

    Parameters
    ----------
    arch_or_model: a random arch name ("tiny", "small", "sd-turbo", "sd15") or any
        ``image.model`` value (``random:small``, a hub id, a folder, a checkpoint).
    steps: denoising steps per image.
    size: width and height in pixels.
    repeats: images timed after the first (the steady state is their median).
    device: "auto", "cpu", "cuda", "mps".
    load_kwargs: passed to ``load_pipeline`` (dtype, cache_dir, tokenizer_cache, ...).

    Returns
    -------
    dict with load_s, first_call_s, steady_s (median per image) and steady_min_s,
    per_step_s (UNet, per step), text_encode_s, vae_decode_s, peak_rss_mb,
    peak_cuda_mb (cuda only), reference_steady_s / reference_min_s (plain diffusers),
    ratio (best engine time / best reference time), and the settings used.
    """
    import torch
    from diffusers import AutoPipelineForText2Image

    from pipelines.components import ARCHS
    from pipelines.image_engine import ImageEngine, ImageRequest
    from pipelines.speedups import cuda_fast_defaults

    model = f"random:{arch_or_model}" if arch_or_model in ARCHS else arch_or_model
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # 1. Load.
    start = time.perf_counter()
    engine = ImageEngine.from_model(model, device=device, **load_kwargs)
    load_s = time.perf_counter() - start
    pipe = engine.pipe
    cuda_fast_defaults(engine.info.device)  # as the assistant does on CUDA

    def sync():
        if cuda:
            torch.cuda.synchronize()

    timers = {
        "text": _Timer(pipe.text_encoder, sync),
        "unet": _Timer(pipe.unet, sync),
        "vae": _Timer(pipe.vae.decoder, sync),
    }
    request = ImageRequest(BENCH_PROMPT, seed=0, steps=steps, width=size, height=size)

    # 2. First call (pays for lazy initialisation, kernel selection, caches).
    start = time.perf_counter()
    engine.generate(request)
    sync()
    first_call_s = time.perf_counter() - start

    # 3. Steady state, engine and a plain diffusers call of the same work taking turns
    #    (interleaved, so load from other processes hits both alike).
    reference = AutoPipelineForText2Image.from_pipe(pipe)
    reference.set_progress_bar_config(disable=True)
    for timer in timers.values():
        timer.reset()
    times, ref_times = [], []
    for i in range(repeats):
        for timer in timers.values():
            timer.active = True
        start = time.perf_counter()
        engine.generate(ImageRequest(**{**vars(request), "seed": i + 1}))
        sync()
        times.append(time.perf_counter() - start)
        for timer in timers.values():
            timer.active = False
        start = time.perf_counter()
        reference(
            BENCH_PROMPT,
            num_inference_steps=steps,
            guidance_scale=engine.info.default_guidance,
            width=size,
            height=size,
        )
        sync()
        ref_times.append(time.perf_counter() - start)
    for timer in timers.values():
        timer.remove()
    n = max(repeats, 1)
    per_step_s = timers["unet"].total_s / max(timers["unet"].calls, 1)
    text_encode_s, vae_decode_s = timers["text"].total_s / n, timers["vae"].total_s / n

    steady_s = statistics.median(times) if times else float("nan")
    reference_s = statistics.median(ref_times) if ref_times else float("nan")
    best_s = min(times, default=float("nan"))
    best_reference_s = min(ref_times, default=float("nan"))
    result = {
        **_settings(model, engine, steps, size, repeats),
        "guidance": engine.info.default_guidance,
        "load_s": round(load_s, 3),
        "first_call_s": round(first_call_s, 3),
        "steady_s": round(steady_s, 3),
        "steady_min_s": round(best_s, 3),
        "per_step_s": round(per_step_s, 3),
        "text_encode_s": round(text_encode_s, 3),
        "vae_decode_s": round(vae_decode_s, 3),
        "peak_rss_mb": _peak_rss_mb(),
        "reference_steady_s": round(reference_s, 3),
        "reference_min_s": round(best_reference_s, 3),
        "ratio": round(best_s / best_reference_s, 3) if best_reference_s else None,
    }
    if cuda:
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    logger.info("Image bench: %s", result)
    return result


# The operations ``bench_operations`` times, in order (the first draws the base picture).
OPERATIONS = (
    "generate",
    "img2img",
    "variation",
    "inpaint",
    "outpaint",
    "depth_edit",
    "upscale",
    "instruct_edit",
)


def bench_operations(
    model: str,
    steps: int = 1,
    size: int = 256,
    repeats: int = 2,
    device: str = "cpu",
    depth_model: Any = "random",
    **load_kwargs: Any,
) -> dict[str, Any]:
    """Time every image operation of one loaded engine, each beside plain diffusers.

    One ``ImageEngine`` is loaded (timed) and draws the base picture (generate's first call);
    then each operation gets a first call, ``repeats`` timed calls (seeds 1, 2, ...) and, where
    one exists, the same work through plain diffusers (after one untimed warm-up call),
    engine and plain taking turns call by call as in ``bench_image``. Plain equivalents:
    generate -> ``AutoPipelineForText2Image``, img2img -> ``AutoPipelineForImage2Image``,
    inpaint -> ``AutoPipelineForInpainting`` (all ``from_pipe(pipe)``), depth_edit -> the
    engine's own ``StableDiffusionDepth2ImgPipeline`` called directly. Each plain call gets
    the steps and guidance the engine's first call recorded, so both sides do the same
    denoising work.

    Parameters
    ----------
    model, steps, size, repeats, device, load_kwargs: as for ``bench_image`` (``load_kwargs``
        also takes the engine's task models: ``inpaint_model``, ``upscaler_model``, ...).
    depth_model: the engine's ``depth_model`` ("random": the placeholder depth2img stack;
        None: depth_edit falls back to img2img).

    Returns
    -------
    dict with the settings, ``load_s``, ``peak_rss_load_mb`` (after the load), ``peak_rss_mb``
    (after every operation) and ``operations``: name -> path (what ran), unet_steps (UNet
    calls per image), first_call_s, steady_s (median), steady_min_s, per_step_s (None where no
    UNet runs), reference_steady_s / reference_min_s / ratio (best engine / best plain; None
    without a plain equivalent) and peak_rss_mb (the process peak so far).
    """
    import torch
    from diffusers import (
        AutoPipelineForImage2Image,
        AutoPipelineForInpainting,
        AutoPipelineForText2Image,
    )
    from PIL import Image

    from pipelines.components import ARCHS
    from pipelines.depth import is_random
    from pipelines.image_engine import LANCZOS_LABEL, ImageEngine, ImageRequest
    from pipelines.speedups import cuda_fast_defaults

    model = f"random:{model}" if model in ARCHS else model
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # 1. Load.
    start = time.perf_counter()
    engine = ImageEngine.from_model(model, device=device, depth_model=depth_model, **load_kwargs)
    load_s = time.perf_counter() - start
    pipe = engine.pipe
    cuda_fast_defaults(engine.info.device)
    peak_rss_load_mb = _peak_rss_mb()

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def request(seed: int) -> ImageRequest:
        return ImageRequest(BENCH_PROMPT, seed=seed, steps=steps, width=size, height=size)

    mask = Image.new("L", (size, size), 0)  # a centred square, half the side
    mask.paste(255, (size // 4, size // 4, size - size // 4, size - size // 4))
    base: list = []  # the base picture: generate's first result

    def quiet(reference):
        reference.set_progress_bar_config(disable=True)
        return reference

    def plain_call(reference, params: dict[str, Any], **call):
        def run():
            # depth2img asks for CPU float32 autocast on every call and torch declines with a
            # warning each time (the engine silences it too).
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="In CPU autocast", category=UserWarning)
                reference(
                    BENCH_PROMPT,
                    num_inference_steps=params["steps"],
                    guidance_scale=params["guidance"],
                    **call,
                )

        return run

    def repaint_label(params: dict[str, Any]) -> str:
        unet = params.get("inpaint_model") or "base UNet (legacy inpaint)"
        return f"{unet}, strength {params['strength']:g}"

    # Each operation: (name, engine call for a seed, setup). ``setup`` reads the first
    # result and gives the path label, the UNet that ran (None: no UNet) and the plain call.
    def setup_generate(r):
        reference = quiet(AutoPipelineForText2Image.from_pipe(pipe))
        plain = plain_call(reference, r.params, width=size, height=size)
        return "text2img", pipe.unet, plain

    def setup_img2img(r):
        reference = quiet(AutoPipelineForImage2Image.from_pipe(pipe))
        plain = plain_call(reference, r.params, image=base[0], strength=r.params["strength"])
        return f"img2img, strength {r.params['strength']:g}", pipe.unet, plain

    def setup_variation(r):
        label = f"img2img, {r.params['variation']} (strength {r.params['strength']:g})"
        return label, pipe.unet, None

    def setup_inpaint(r):
        # A configured inpainting UNet replaces the base one on both sides.
        parts = {"unet": engine.inpaint_pipe.unet} if engine.inpaint_model is not None else {}
        reference = quiet(AutoPipelineForInpainting.from_pipe(pipe, **parts))
        plain = plain_call(
            reference,
            r.params,
            image=base[0],
            mask_image=mask,
            width=size,
            height=size,
            strength=r.params["strength"],
        )
        return repaint_label(r.params), engine.inpaint_pipe.unet, plain

    def setup_outpaint(r):
        label = f"{r.params['direction']} {r.params['pixels']} px, {repaint_label(r.params)}"
        return label, engine.inpaint_pipe.unet, None

    def setup_depth(r):
        if r.params["edit_path"] != "depth2img":
            reference = quiet(AutoPipelineForImage2Image.from_pipe(pipe))
            plain = plain_call(reference, r.params, image=base[0], strength=r.params["strength"])
            return "img2img-fallback (no image.depth_model)", pipe.unet, plain
        depth_pipe = engine._get_depth_pipe()  # built by the first call; its own 5-channel UNet
        source = "random placeholder" if is_random(depth_model) else r.params["depth_model"]
        label = f"depth2img, {source}, strength {r.params['strength']:g}"
        if r.params["guidance"] > 1:
            label += f", CFG {r.params['guidance']:g}"
        plain = plain_call(depth_pipe, r.params, image=base[0], strength=r.params["strength"])
        return label, depth_pipe.unet, plain

    def setup_upscale(r):
        if r.params["upscaler"] == LANCZOS_LABEL:
            return f"x2 {LANCZOS_LABEL}", None, None
        return f"x2 {r.params['upscaler']}", engine._get_upscaler_pipe().unet, None

    def setup_instruct(r):
        if r.params["edit_path"] == "pix2pix":
            return "pix2pix", engine._get_pix2pix_pipe().unet, None
        return f"{r.params['edit_path']} (no image.pix2pix_model)", pipe.unet, None

    operations = [
        ("generate", lambda seed: engine.generate(request(seed)), setup_generate),
        ("img2img", lambda seed: engine.img2img(request(seed), base[0]), setup_img2img),
    ]
    if hasattr(engine, "variation"):
        operations.append(
            ("variation", lambda seed: engine.variation(request(seed), base[0]), setup_variation)
        )
    operations += [
        ("inpaint", lambda seed: engine.inpaint(request(seed), base[0], mask), setup_inpaint),
        (
            "outpaint",
            lambda seed: engine.outpaint(request(seed), base[0], "left", 64),
            setup_outpaint,
        ),
        ("depth_edit", lambda seed: engine.depth_edit(request(seed), base[0]), setup_depth),
        ("upscale", lambda seed: engine.upscale(base[0], 2), setup_upscale),
        (
            "instruct_edit",
            lambda seed: engine.instruct_edit(request(seed), base[0], "make it snowy"),
            setup_instruct,
        ),
    ]

    # 2. Per operation: first call, then engine and plain taking turns.
    table: dict[str, dict[str, Any]] = {}
    for name, run, setup in operations:
        start = time.perf_counter()
        first = run(0)
        sync()
        first_call_s = time.perf_counter() - start
        if not base:
            base.append(first.image)
        path, unet, plain = setup(first)
        if plain is not None:
            plain()  # untimed warm-up, so both sides are timed warm
            sync()
        timer = _Timer(unet, sync) if unet is not None else None
        times, ref_times = [], []
        try:
            for i in range(repeats):
                if timer:
                    timer.active = True
                start = time.perf_counter()
                run(i + 1)
                sync()
                times.append(time.perf_counter() - start)
                if timer:
                    timer.active = False
                if plain is not None:
                    start = time.perf_counter()
                    plain()
                    sync()
                    ref_times.append(time.perf_counter() - start)
        finally:
            if timer:
                timer.remove()
        best = min(times, default=float("nan"))
        best_ref = min(ref_times) if ref_times else None
        # Microsecond rounding: a Lanczos upscale of a small picture takes well under 1 ms.
        table[name] = {
            "path": path,
            "unet_steps": round(timer.calls / max(repeats, 1), 2) if timer else 0,
            "first_call_s": round(first_call_s, 6),
            "steady_s": round(statistics.median(times), 6) if times else float("nan"),
            "steady_min_s": round(best, 6),
            "per_step_s": round(timer.total_s / timer.calls, 6) if timer and timer.calls else None,
            "reference_steady_s": round(statistics.median(ref_times), 6) if ref_times else None,
            "reference_min_s": round(best_ref, 6) if best_ref is not None else None,
            "ratio": round(best / best_ref, 3) if best_ref else None,
            "peak_rss_mb": _peak_rss_mb(),
        }
    result = {
        **_settings(model, engine, steps, size, repeats),
        "depth_model": depth_model if isinstance(depth_model, str | None) else "object",
        "load_s": round(load_s, 3),
        "peak_rss_load_mb": peak_rss_load_mb,
        "peak_rss_mb": _peak_rss_mb(),
        "operations": table,
    }
    if cuda:
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    logger.info("Image operations bench: %s", result)
    return result


def print_operations_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    """Print a ``bench_operations`` result as a markdown table, one line per operation."""

    def seconds(value: float | None) -> str:
        if value is None:
            return "n/a"
        return f"{value:.3f}" if value >= 0.01 else f"{value:.2g}"  # sub-ms: keep 2 digits

    out(
        f"\nImage operations: {result['model']} on {result['device']} ({result['dtype']}, "
        f"{result['threads']} threads), {result['size']}x{result['size']} base picture, "
        f"{result['steps']} step(s) asked, {result['repeats']} timed runs each, engine and "
        "plain diffusers taking turns\n"
    )
    out(
        "| operation | path | UNet steps run | first call s | per image s (median) "
        "| UNet per step s | plain diffusers s (median) | ratio (best engine / best plain) |"
    )
    out("|---|---|---|---|---|---|---|---|")
    for name, r in result["operations"].items():
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
        out(
            f"| {name} | {r['path']} | {r['unet_steps']:g} | {seconds(r['first_call_s'])} "
            f"| {seconds(r['steady_s'])} | {seconds(r['per_step_s'])} "
            f"| {seconds(r['reference_steady_s'])} | {ratio} |"
        )
    out(f"\nload {result['load_s']:.3f} s")
    cuda = f", peak CUDA {result['peak_cuda_mb']} MiB" if "peak_cuda_mb" in result else ""
    out(
        f"peak RSS {result['peak_rss_load_mb']} MiB after the load, {result['peak_rss_mb']} MiB "
        f"after every operation{cuda}"
    )


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
    import torch

    from pipelines.components import ARCHS
    from pipelines.image_engine import ImageEngine, ImageRequest
    from pipelines.speedups import cuda_fast_defaults, load_tiny_vae

    names = list(variants or DEFAULT_COMPARE)
    unknown = [n for n in names if n not in COMPARE_VARIANTS]
    if unknown:
        raise ValueError(f"Unknown variants {unknown}; choose from {list(COMPARE_VARIANTS)}")
    if "default" not in names:
        names.insert(0, "default")
    model = f"random:{arch_or_model}" if arch_or_model in ARCHS else arch_or_model
    start = time.perf_counter()
    engine = ImageEngine.from_model(model, device=device, **load_kwargs)
    load_s = time.perf_counter() - start
    pipe = engine.pipe
    cuda_fast_defaults(engine.info.device)  # as the assistant does on CUDA, for every variant
    tiny = None
    if any(COMPARE_VARIANTS[n].get("tiny_vae") for n in names):
        tiny = load_tiny_vae(tiny_vae, dtype=pipe.vae.dtype).to(pipe.vae.device)
    cuda = pipe.device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    compiled: dict[str, list] = {}  # compile mode -> its wrappers, kept between blocks

    def timed_image(seed: int) -> tuple[float, float, float, int]:
        unet_t, vae_t = _Timer(pipe.unet, sync), _Timer(pipe.vae.decoder, sync)
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
        **_settings(model, engine, steps, size, repeats),
        "load_s": round(load_s, 3),
        "tiny_vae": tiny_vae,
        "variants": table,
        "peak_rss_mb": _peak_rss_mb(),
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


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m pipelines.bench small --steps 1 --size 512``; prints JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="random arch (tiny, small, sd-turbo, sd15) or image.model")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument(
        "--compare",
        nargs="*",
        default=None,
        metavar="VARIANT",
        help=f"compare speed-ups (default set: {' '.join(DEFAULT_COMPARE)}; all: "
        f"{' '.join(COMPARE_VARIANTS)}) and print a table",
    )
    parser.add_argument("--tiny-vae", default="random", help="TAESD for the tiny_vae variants")
    parser.add_argument(
        "--operations", action="store_true", help="time every operation and print a table"
    )
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.operations:
        result = bench_operations(args.model, args.steps, args.size, args.repeats, args.device)
        print_operations_table(result)
        return 0
    if args.compare is not None:
        result = compare_image(
            args.model,
            args.steps,
            args.size,
            args.repeats,
            args.device,
            variants=args.compare or None,
            tiny_vae=args.tiny_vae,
        )
        print_compare_table(result)
        return 0
    result = bench_image(args.model, args.steps, args.size, args.repeats, args.device)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
