"""`bench image --operations`: every engine operation on one loaded engine, each beside its
plain diffusers equivalent where one exists, engine and plain taking turns call by call."""

from __future__ import annotations

import logging
import statistics
import time
import warnings
from collections.abc import Callable
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

    from pipelines.depth import is_random
    from pipelines.image_engine import LANCZOS_LABEL, ImageEngine, ImageRequest
    from pipelines.loading import resolve_device
    from pipelines.speedups import cuda_fast_defaults

    model = model_name(model)
    cuda = resolve_device(device).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # 1. Load.
    start = time.perf_counter()
    engine = ImageEngine.from_model(model, device=device, depth_model=depth_model, **load_kwargs)
    load_s = time.perf_counter() - start
    pipe = engine.pipe
    cuda_fast_defaults(engine.info.device)
    peak_rss_load_mb = peak_rss_mb()

    sync = device_sync(engine.info.device)

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
        timer = ModuleTimer(unet, sync) if unet is not None else None
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
            "peak_rss_mb": peak_rss_mb(),
        }
    result = {
        **run_settings(model, engine, steps, size, repeats),
        "depth_model": depth_model if isinstance(depth_model, str | None) else "object",
        "load_s": round(load_s, 3),
        "peak_rss_load_mb": peak_rss_load_mb,
        "peak_rss_mb": peak_rss_mb(),
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
