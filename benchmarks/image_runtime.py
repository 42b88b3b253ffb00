"""The UNet alone: PyTorch float32 against the fast paths, speed and numeric agreement.

``python -m benchmarks.image_runtime sd-turbo --repeats 2 [--f32] [--threads 1]``

One random-weight UNet of the given architecture (``pipelines.components.ARCHS``), one set of
inputs (seeded latents at the image size, seeded text states, timestep 999 as a 1-step
SD-Turbo call uses), and these sides taking turns in each repeat:

- ``torch fp32``: the plain UNet call (the reference every error is measured against);
- ``torch bf16 autocast + channels_last``: ``image.cpu_speedups`` (only where
  ``bf16_autocast_helps``);
- ``openvino (auto)``: ``image.cpu_runtime: openvino`` at the CPU's own precision;
- ``openvino f32`` (``--f32``): the same IR forced to float32 (the conversion alone).

For each side: the best and median time of one UNet call, and its output against the fp32
output: max and mean absolute error, relative RMS error and cosine similarity. With random
weights this is what can be measured; whether a picture looks the same needs real weights.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from benchmarks.image_timing import peak_rss_mb


def _agreement(out, reference) -> dict[str, float]:
    import torch

    a, b = out.float().flatten(), reference.float().flatten()
    diff = a - b
    return {
        "max_abs_err": round(float(diff.abs().max()), 5),
        "mean_abs_err": round(float(diff.abs().mean()), 5),
        "rel_rms_err": round(float(diff.norm() / b.norm()), 5),
        "cosine": round(float(torch.nn.functional.cosine_similarity(a, b, dim=0)), 6),
        "reference_std": round(float(b.std()), 5),
    }


def bench_runtime(
    arch: str = "sd-turbo",
    size: int = 512,
    repeats: int = 2,
    f32: bool = False,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Time and compare the UNet sides (see the module doc); returns a dict per side."""
    import os

    import torch
    from diffusers import UNet2DConditionModel

    from pipelines.components import get_arch
    from pipelines.cpu_runtime import OpenVINOForward, apply_cpu_runtime, remove_cpu_runtime
    from pipelines.speedups import bf16_autocast_helps

    spec = get_arch(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**spec.unet).eval()
    g = torch.Generator().manual_seed(1)
    latent = size // 8
    sample = torch.randn(1, unet.config.in_channels, latent, latent, generator=g)
    states = torch.randn(1, 77, unet.config.cross_attention_dim, generator=g)
    t = torch.tensor(999)

    class Pipe:  # apply_cpu_runtime reads pipe.unet only
        pass

    pipe = Pipe()
    pipe.unet = unet
    start = time.perf_counter()
    apply_cpu_runtime(pipe, "openvino", "cpu", cache_dir)
    ov_auto = remove_cpu_runtime(pipe)
    prepare_s = time.perf_counter() - start
    sides: dict[str, Any] = {}

    def torch_fp32():
        return unet(sample, t, states, return_dict=False)[0]

    sides["torch fp32"] = torch_fp32
    if bf16_autocast_helps("cpu"):

        def torch_bf16():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = unet(
                    sample.to(memory_format=torch.channels_last), t, states, return_dict=False
                )[0]
            return out.float()

        sides["torch bf16 autocast + channels_last"] = torch_bf16
    sides["openvino (auto)"] = lambda: ov_auto(sample, t, states, return_dict=False)[0]
    if f32:
        ov_f32 = OpenVINOForward(
            unet, ov_auto.ir_path, precision="f32", threads=torch.get_num_threads()
        )
        sides["openvino f32"] = lambda: ov_f32(sample, t, states, return_dict=False)[0]

    def prepare(name):
        if "channels_last" in name:
            unet.to(memory_format=torch.channels_last)
        else:
            unet.to(memory_format=torch.contiguous_format)

    times: dict[str, list[float]] = {name: [] for name in sides}
    outputs: dict[str, Any] = {}
    first: dict[str, float] = {}
    with torch.no_grad():
        for name, call in sides.items():  # first calls: kernel choice, the OpenVINO compile
            prepare(name)
            begin = time.perf_counter()
            outputs[name] = call()
            first[name] = time.perf_counter() - begin
        for _ in range(repeats):
            for name, call in sides.items():
                prepare(name)
                begin = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - begin)
    reference = outputs["torch fp32"]
    result = {
        "arch": arch,
        "size": size,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "openvino_prepare_s": round(prepare_s, 1),
        "openvino_precision": ov_auto.precision,
        "peak_rss_mb": peak_rss_mb(),
        "sides": {},
    }
    best_ref = min(times["torch fp32"])
    for name in sides:
        result["sides"][name] = {
            "first_s": round(first[name], 3),
            "best_s": round(min(times[name]), 3),
            "median_s": round(statistics.median(times[name]), 3),
            "speedup": round(best_ref / min(times[name]), 2),
            **_agreement(outputs[name], reference),
        }
    return result


def print_runtime_table(result: dict[str, Any], out=print) -> None:
    load = result["load_avg"]
    out(
        f"\nUNet alone: random:{result['arch']}, {result['size']}x{result['size']} "
        f"({result['size'] // 8}x{result['size'] // 8} latents), 1 call, {result['threads']} "
        f"thread(s), {result['repeats']} timed runs each, interleaved; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; OpenVINO auto precision "
        f"{result['openvino_precision']}, convert or read IR {result['openvino_prepare_s']} s\n"
    )
    out(
        "| UNet side | first call s | best s | median s | vs fp32 | max abs err | "
        "mean abs err | rel RMS err | cosine |"
    )
    out("|---|---|---|---|---|---|---|---|---|")
    for name, side in result["sides"].items():
        out(
            f"| {name} | {side['first_s']:.2f} | {side['best_s']:.2f} | {side['median_s']:.2f} | "
            f"{side['speedup']:.2f}x | {side['max_abs_err']:.4f} | {side['mean_abs_err']:.5f} | "
            f"{side['rel_rms_err']:.5f} | {side['cosine']:.6f} |"
        )
    std = next(iter(result["sides"].values()))["reference_std"]
    out(f"\n(fp32 output std {std}; peak RSS {result['peak_rss_mb']} MiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arch", nargs="?", default="sd-turbo")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--f32", action="store_true", help="also the IR forced to float32")
    parser.add_argument("--cache-dir", default=None, help="where the IR is kept")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    result = bench_runtime(args.arch, args.size, args.repeats, args.f32, args.cache_dir)
    print_runtime_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
