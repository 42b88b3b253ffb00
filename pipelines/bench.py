"""Measure the image engine: load time, first call, steady per-image and per-step time, memory.

The same work also runs through a plain diffusers call
(``AutoPipelineForText2Image.from_pipe(pipe)(prompt, num_inference_steps=...)``) so the
engine's own overhead (validation, CPU generator, progress previews) shows as a ratio.

CPU threads: torch uses one thread per physical core by default; set
``torch.set_num_threads`` (or ``OMP_NUM_THREADS``) before loading to pin it. The
thread count is recorded in the result.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
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

    model = f"random:{arch_or_model}" if arch_or_model in ARCHS else arch_or_model
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # 1. Load.
    start = time.perf_counter()
    engine = ImageEngine.from_model(model, device=device, **load_kwargs)
    load_s = time.perf_counter() - start
    pipe = engine.pipe

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
        "model": model,
        "device": engine.info.device,
        "dtype": engine.info.dtype,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "size": size,
        "guidance": engine.info.default_guidance,
        "repeats": repeats,
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


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m pipelines.bench small --steps 1 --size 512``; prints JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="random arch (tiny, small, sd-turbo, sd15) or image.model")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = bench_image(args.model, args.steps, args.size, args.repeats, args.device)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
