"""`run_assistant.py bench image`: the image engine against plain diffusers, as tables.

Three benches, each in one process with its reference in the same interleaved run:

- default (``benchmarks.image_speed``): the configured image.model at the configured size
  and steps, with the configured ``image.cpu_speedups`` and ``image.tiny_vae``, beside a
  plain ``AutoPipelineForText2Image`` call on the same weights. The CPU fast path:

    run_assistant.py bench image --set image.model=random:sd-turbo --set image.tiny_vae=random \
        --set "image.cpu_speedups=[channels_last, bf16_autocast, prompt_cache]"

- ``--compare`` (``benchmarks.image_compare``): the speed-ups (channels_last, a tiny VAE, 1
  thread, bf16 autocast, the ``image.compile`` modes as ``compile=<mode>``, see
  ``COMPARE_VARIANTS``) against the default eager path, as ratios, each variant's first call
  (for a compile variant: the compile) apart from its steady per-image time. On a GPU:

    run_assistant.py bench image --set device=cuda --set image.model=random:sd-turbo \
        --compare compile=default compile=max-autotune compile=reduce-overhead

- ``--operations`` (``benchmarks.image_operations``): every operation of the engine
  (generate, img2img, variation, inpaint, outpaint, depth_edit, upscale, instruct_edit) on one
  loaded engine, each beside its plain diffusers equivalent where one exists. The depth row
  uses ``image.depth_model``, or the random placeholder depth2img stack when unset.

``python -m benchmarks.image small --steps 1 --size 512`` runs them without a config.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable

from assistant.build import resolve_device
from assistant.config import Config
from benchmarks.image_compare import (
    COMPARE_VARIANTS,
    DEFAULT_COMPARE,
    compare_image,
    print_compare_table,
)
from benchmarks.image_operations import bench_operations, print_operations_table
from benchmarks.image_speed import bench_image, print_image_table


def run_image_bench(
    config: Config,
    repeats: int = 3,
    compare: bool | Iterable[str] = False,
    operations: bool = False,
) -> int:
    """Print the image benchmark table for ``config.image``.

    Parameters
    ----------
    config: the assistant configuration (model, size, steps, device, speed-ups, cache).
    repeats: timed images per path (after a warm-up).
    compare: False: engine vs plain diffusers. True: the default speed-up comparison
        (``DEFAULT_COMPARE``); a list of variant names: those.
    operations: time every image operation (and its plain diffusers equivalent) instead.

    Returns
    -------
    0 (the exit code).
    """
    image = config.image
    steps = image.steps or 1
    size = image.width
    device = resolve_device(config.device)
    tokenizer_cache = config.cache_dir / "clip-tokenizer"
    if config.torch_threads:  # as the assistant does: a busy 2-core box runs best on 1
        import torch  # noqa: PLC0415

        torch.set_num_threads(config.torch_threads)
    if operations:
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
            tokenizer_cache=tokenizer_cache,
        )
        print_operations_table(result)
        return 0
    if compare:
        result = compare_image(
            image.model,
            steps=steps,
            size=size,
            repeats=repeats,
            device=device,
            variants=None if compare is True else list(compare),
            tiny_vae=image.tiny_vae or "random",
            tokenizer_cache=tokenizer_cache,
        )
        print_compare_table(result)
        return 0
    result = bench_image(
        image.model,
        steps=steps,
        size=size,
        repeats=repeats,
        device=device,
        cpu_speedups=list(image.cpu_speedups),
        tiny_vae=image.tiny_vae,
        cpu_runtime=image.cpu_runtime,
        runtime_cache=config.cache_dir,
        attention=image.attention,
        tokenizer_cache=tokenizer_cache,
    )
    print_image_table(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line without a config: ``python -m benchmarks.image small --steps 1``."""
    parser = argparse.ArgumentParser(description="Image engine benchmarks (see module doc)")
    parser.add_argument("model", help="random arch (tiny, small, sd-turbo, sd15) or image.model")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--speedups", nargs="*", default=[], help="image.cpu_speedups names")
    parser.add_argument("--tiny-vae", default=None, help="TAESD: random, an id or a folder")
    parser.add_argument("--cpu-runtime", default=None, help="image.cpu_runtime: torch, openvino")
    parser.add_argument(
        "--compare",
        nargs="*",
        default=None,
        metavar="VARIANT",
        help=f"compare speed-ups (default set: {' '.join(DEFAULT_COMPARE)}; all: "
        f"{' '.join(COMPARE_VARIANTS)}) and print a table",
    )
    parser.add_argument(
        "--operations", action="store_true", help="time every operation and print a table"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args(argv)
    if args.threads:
        import torch  # noqa: PLC0415

        torch.set_num_threads(args.threads)
    if args.operations:
        result = bench_operations(args.model, args.steps, args.size, args.repeats, args.device)
        print_operations_table(result)
    elif args.compare is not None:
        result = compare_image(
            args.model,
            args.steps,
            args.size,
            args.repeats,
            args.device,
            variants=args.compare or None,
            tiny_vae=args.tiny_vae or "random",
        )
        print_compare_table(result)
    else:
        result = bench_image(
            args.model,
            args.steps,
            args.size,
            args.repeats,
            args.device,
            cpu_speedups=args.speedups,
            tiny_vae=args.tiny_vae,
            cpu_runtime=args.cpu_runtime,
        )
        print_image_table(result)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
