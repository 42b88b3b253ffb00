"""`run_assistant.py bench image`: the image engine against a plain diffusers call, as a table.

Measures the configured image.model at the configured size and steps (on the offline default
that is the `small` random architecture), in the same run as the plain
`AutoPipelineForText2Image` reference, so the ratio holds on a noisy machine.
"""

from __future__ import annotations

from assistant.build import resolve_device
from assistant.config import Config
from pipelines.bench import bench_image

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


def run_image_bench(config: Config, repeats: int = 3) -> int:
    steps = config.image.steps or 1
    size = config.image.width
    device = resolve_device(config.device)
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
