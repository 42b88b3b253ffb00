"""`run_assistant.py bench image`: the image engine against a plain diffusers call, as a table.

Measures the configured image.model at the configured size and steps (on the offline default
that is the `small` random architecture), in the same run as the plain
`AutoPipelineForText2Image` reference, so the ratio holds on a noisy machine.

With ``compare`` it instead runs the speed-ups (channels_last, a tiny VAE, 1 thread, the
``image.compile`` modes as ``compile=<mode>``, ..., see ``pipelines.bench.COMPARE_VARIANTS``)
against the default eager path, as a table of ratios with each variant's first call (for a
compile variant: the compile) apart from its steady per-image time. On a GPU:

    run_assistant.py bench image --set device=cuda --set image.model=random:sd-turbo \
        --compare compile=default compile=max-autotune compile=reduce-overhead

With ``operations`` it times every operation of the engine (generate, img2img, variation,
inpaint, outpaint, depth_edit, upscale, instruct_edit) on one loaded engine, each beside its
plain diffusers equivalent where one exists (``pipelines.bench.bench_operations``). The
depth row uses ``image.depth_model``, or the random placeholder depth2img stack when unset.
"""

from __future__ import annotations

from collections.abc import Iterable

from assistant.build import resolve_device
from assistant.config import Config
from pipelines.bench import (
    bench_image,
    bench_operations,
    compare_image,
    print_compare_table,
    print_operations_table,
)

ROWS = [
    ("load", "load_s"),
    ("first call", "first_call_s"),
    ("steady per image (median)", "steady_s"),
    ("steady per image (best)", "steady_min_s"),
    ("UNet per step", "per_step_s"),
    ("text encoder", "text_encode_s"),
    ("VAE decode", "vae_decode_s"),
    ("plain diffusers per image (median)", "reference_steady_s"),
    ("plain diffusers per image (best)", "reference_min_s"),
]


def run_image_bench(
    config: Config,
    repeats: int = 3,
    compare: bool | Iterable[str] = False,
    operations: bool = False,
) -> int:
    """Print the image benchmark table for ``config.image``.

    Parameters
    ----------
    config: the assistant configuration (model, size, steps, device, cache).
    repeats: timed images per path (after a warm-up).
    compare: False: engine vs plain diffusers. True: the default speed-up comparison
        (``pipelines.bench.DEFAULT_COMPARE``); a list of variant names: those.
    operations: time every image operation (and its plain diffusers equivalent) instead.

    Returns
    -------
    0 (the exit code).
    """
    steps = config.image.steps or 1
    size = config.image.width
    device = resolve_device(config.device)
    if config.torch_threads:  # as the assistant does: a busy 2-core box runs best on 1
        import torch  # noqa: PLC0415

        torch.set_num_threads(config.torch_threads)
    if operations:
        image = config.image
        result = bench_operations(
            image.model,
            steps=steps,
            size=size,
            repeats=repeats,
            device=device,
            # Unset: the random placeholder, so the depth row still times a depth2img run.
            depth_model=image.depth_model or "random",
            inpaint_model=image.inpaint_model,
            upscaler_model=image.upscaler_model,
            pix2pix_model=image.pix2pix_model,
            tokenizer_cache=config.cache_dir / "clip-tokenizer",
        )
        print_operations_table(result)
        return 0
    if compare:
        result = compare_image(
            config.image.model,
            steps=steps,
            size=size,
            repeats=repeats,
            device=device,
            variants=None if compare is True else list(compare),
            tiny_vae=getattr(config.image, "tiny_vae", None) or "random",
            tokenizer_cache=config.cache_dir / "clip-tokenizer",
        )
        print_compare_table(result)
        return 0
    r = bench_image(
        config.image.model,
        steps=steps,
        size=size,
        repeats=repeats,
        device=device,
        tokenizer_cache=config.cache_dir / "clip-tokenizer",
    )
    print(
        f"\nImage engine: {r['model']} on {r['device']} ({r['dtype']}, {r['threads']} threads), "
        f"{size}x{size}, {steps} step(s), {repeats} timed runs\n"
    )
    print("| measure | seconds |")
    print("|---|---|")
    for label, key in ROWS:
        print(f"| {label} | {r[key]:.3f} |")
    print(f"| engine / plain diffusers (best) | ratio {r['ratio']} |")
    print(
        f"\npeak RSS {r['peak_rss_mb']} MiB"
        + (f", peak CUDA {r['peak_cuda_mb']} MiB" if "peak_cuda_mb" in r else "")
    )
    return 0
