"""``image.cpu_runtime`` (pipelines.cpu_runtime): the UNet in OpenVINO, on the tiny random model."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pipelines.errors import ImageError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runtime_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("runtime")


def test_unknown_runtime_is_refused_naming_the_setting():
    from pipelines.cpu_runtime import check_cpu_runtime

    assert check_cpu_runtime(None) == "torch"
    assert check_cpu_runtime(" OpenVINO ") == "openvino"
    with pytest.raises(ImageError) as info:
        check_cpu_runtime("tensorrt")
    assert info.value.code == "input-invalid"
    assert "image.cpu_runtime" in str(info.value) and "openvino" in str(info.value)


def test_missing_openvino_names_the_package_to_install(tokenizer_cache, monkeypatch):
    from pipelines.cpu_runtime import OPENVINO_PIN
    from pipelines.loading import load_pipeline

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(ImageError) as info:
        load_pipeline("random:tiny", "cpu", tokenizer_cache=tokenizer_cache, cpu_runtime="openvino")
    assert info.value.code == "model-missing"
    message = str(info.value)
    assert "image.cpu_runtime" in message and f"pip install {OPENVINO_PIN}" in message


def _inputs(unet, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    cross = unet.config.cross_attention_dim
    return (
        torch.randn(1, unet.config.in_channels, 8, 8, generator=g),
        torch.tensor(999),
        torch.randn(1, 77, cross, generator=g),
    )


def _cosine(a, b) -> float:
    import torch

    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_openvino_unet_agrees_with_torch_and_draws_the_same_size(tokenizer_cache, runtime_cache):
    pytest.importorskip("openvino")
    import torch

    from pipelines.cpu_runtime import OpenVINOForward, apply_cpu_runtime, remove_cpu_runtime
    from pipelines.image_engine import ImageEngine, ImageRequest

    engine = ImageEngine.from_model(
        "random:tiny",
        device="cpu",
        tokenizer_cache=tokenizer_cache,
        cpu_runtime="openvino",
        runtime_cache=runtime_cache,
    )
    assert "cpu_runtime:openvino" in engine.info.speedups
    unet = engine.pipe.unet
    forward = unet.__dict__["forward"]
    assert isinstance(forward, OpenVINOForward)
    irs = list(runtime_cache.glob("openvino/*/unet.xml"))
    assert len(irs) == 1 and irs[0].with_suffix(".bin").stat().st_size > 0

    # Numeric agreement on the same latents: float32 tight, the CPU's own choice (bf16 on
    # AMX) within the bound recorded in docs/BENCHMARKS.md.
    sample, t, states = _inputs(unet)
    with torch.no_grad():
        ours = unet(sample, t, states).sample
        remove_cpu_runtime(engine.pipe)
        reference = unet(sample, t, states).sample
        forward.attach()
    assert ours.shape == reference.shape and ours.dtype == reference.dtype
    assert _cosine(ours, reference) > 0.99
    f32 = OpenVINOForward(unet, irs[0], precision="f32", threads=1)
    with torch.no_grad():
        exact = f32(sample, t, states, return_dict=False)[0]
    assert float((exact - reference).abs().max()) < 1e-3
    assert _cosine(exact, reference) > 0.99999

    # A picture at a size the IR was not compiled for, and the same seed gives the same bytes.
    request = ImageRequest("a red cube", seed=7, steps=2, width=64, height=64)
    first = engine.generate(request).image
    second = engine.generate(request).image
    assert first.size == (64, 64)
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert forward.fallbacks == 0 and len(forward.compiled) >= 1
    # Latent sides the upsamplers cannot halve evenly (72 px -> 9) run the PyTorch UNet.
    odd = engine.generate(ImageRequest("a red cube", seed=7, steps=2, width=64, height=72))
    assert odd.image.size == (64, 72) and forward.fallbacks == 2

    # A call the IR cannot take (here any attention kwargs) runs the PyTorch UNet instead.
    with torch.no_grad():
        out = unet(sample, t, states, cross_attention_kwargs={}, return_dict=False)[0]
    assert forward.fallbacks == 3
    assert torch.equal(out, reference)

    # Loading again reads the cached IR instead of converting.
    mtime = irs[0].stat().st_mtime_ns
    applied = apply_cpu_runtime(engine.pipe, "openvino", "cpu", runtime_cache)
    assert applied == ["cpu_runtime:openvino"]
    assert irs[0].stat().st_mtime_ns == mtime


def test_bench_image_times_the_runtime_beside_the_torch_unet_and_plain(
    tokenizer_cache, runtime_cache
):
    pytest.importorskip("openvino")
    from benchmarks.image_speed import bench_image, print_image_table

    result = bench_image(
        "tiny",
        steps=1,
        size=64,
        repeats=1,
        tiny_vae="random",
        cpu_runtime="openvino",
        runtime_cache=runtime_cache,
        tokenizer_cache=tokenizer_cache,
    )
    assert result["speedups"] == ["tiny_vae:random", "cpu_runtime:openvino"]
    assert result["runtime_precision"] in ("f32", "bf16", "f16")
    for key in ("steady_s", "reference_steady_s", "torch_unet_steady_s", "torch_unet_per_step_s"):
        assert result[key] > 0, key
    lines: list[str] = []
    print_image_table(result, out=lines.append)
    header = next(line for line in lines if line.startswith("| seconds"))
    assert "plain AutoPipelineForText2Image" in header and "ours, UNet in torch" in header
    assert "UNet in openvino" in header
    assert sum("x faster" in line for line in lines) == 1 and lines[-1].startswith("\nload")
