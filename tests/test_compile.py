"""``image.compile``: torch.compile of the UNet and VAE decoder, its fallbacks, on the CPU.

The real Inductor compile of even the tiny architecture takes minutes on a shared 2-core CPU,
so it is the one ``slow`` test; the others swap ``torch.compile`` for a stand-in (identity,
raising, or dynamo with a failing backend) and check the wiring around it.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pipelines.errors import ImageError

TINY_REQUEST = {"prompt": "a red cube", "seed": 7, "steps": 2, "width": 64, "height": 72}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory):
    from pipelines.image_engine import ImageEngine

    return ImageEngine.from_model(
        "random:tiny", device="cpu", tokenizer_cache=tmp_path_factory.mktemp("tokenizer")
    )


@pytest.fixture(scope="module")
def eager_image(shared_engine):
    return pixels(shared_engine)


@pytest.fixture
def engine(shared_engine):
    """The shared tiny engine; whatever a test compiled is removed again afterwards, and
    dynamo forgets its caches (they are per code object, shared by every UNet instance)."""
    import torch

    from pipelines.speedups import remove_compile

    yield shared_engine
    remove_compile(shared_engine.pipe)
    torch._dynamo.reset()


def pixels(engine, **overrides) -> np.ndarray:
    from pipelines.image_engine import ImageRequest

    result = engine.generate(ImageRequest(**{**TINY_REQUEST, **overrides}))
    return np.asarray(result.image, dtype=np.int16)


def identity_compile(calls: list):
    """A ``torch.compile`` stand-in that records its arguments and compiles nothing."""

    def fake(fn, **kwargs):
        calls.append(kwargs)
        return fn

    return fake


def test_config_refuses_unknown_compile_value_naming_allowed_ones():
    from assistant.config import ConfigError, load_config

    assert load_config(environ={}).image.compile == "none"
    assert (
        load_config(environ={}, overrides=[("image.compile", "max-autotune")]).image.compile
        == "max-autotune"
    )
    with pytest.raises(ConfigError) as e:
        load_config(environ={}, overrides=[("image.compile", "turbo")])
    message = str(e.value)
    assert "image.compile" in message
    for allowed in ("none", "default", "max-autotune", "reduce-overhead"):
        assert allowed in message


def test_check_compile_normalises_and_refuses():
    from pipelines.speedups import check_compile

    assert check_compile(None) == "none"
    assert check_compile(" Max_Autotune ") == "max-autotune"
    with pytest.raises(ImageError) as e:
        check_compile("turbo")
    assert e.value.code == "input-invalid"
    assert "image.compile" in str(e.value) and "reduce-overhead" in str(e.value)


def test_none_leaves_the_pipeline_and_cpu_flags_alone(engine, monkeypatch):
    import torch

    from pipelines.speedups import compile_pipeline, cuda_fast_defaults

    calls: list = []
    monkeypatch.setattr(torch, "compile", identity_compile(calls))
    benchmark = torch.backends.cudnn.benchmark
    assert compile_pipeline(engine.pipe, "none", "cpu") == []
    assert cuda_fast_defaults("cpu") == []
    assert calls == []
    assert "forward" not in engine.pipe.unet.__dict__
    assert torch.backends.cudnn.benchmark == benchmark


def test_torch_compile_raising_falls_back_to_eager_with_warning(
    engine, eager_image, monkeypatch, caplog
):
    import torch

    from pipelines.speedups import compile_pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("Dynamo is not supported on this Python")

    monkeypatch.setattr(torch, "compile", broken)
    with caplog.at_level(logging.WARNING, logger="pipelines.speedups"):
        applied = compile_pipeline(engine.pipe, "default", "cpu")
    assert applied == []
    assert "image.compile" in caplog.text and "runs eager" in caplog.text
    assert "forward" not in engine.pipe.unet.__dict__
    assert "forward" not in engine.pipe.vae.decoder.__dict__
    assert np.array_equal(pixels(engine), eager_image)


def test_compiler_failing_on_first_call_falls_back_to_eager(
    engine, eager_image, monkeypatch, caplog
):
    """The realistic failure (no C compiler, no Triton) comes lazily, inside the first call:
    real dynamo tracing with a backend that raises, as Inductor does without a compiler."""
    import torch

    from pipelines.speedups import CompiledForward, compile_pipeline

    real_compile = torch.compile

    def no_compiler(gm, example_inputs):
        raise RuntimeError("Failed to find a working C++ compiler")

    def failing_compile(fn, **kwargs):
        return real_compile(fn, backend=no_compiler, dynamic=kwargs.get("dynamic"))

    monkeypatch.setattr(torch, "compile", failing_compile)
    assert compile_pipeline(engine.pipe, "default", "cpu") == ["compile:default"]
    unet_forward = engine.pipe.unet.__dict__["forward"]
    assert isinstance(unet_forward, CompiledForward)
    with caplog.at_level(logging.WARNING, logger="pipelines.speedups"):
        image = pixels(engine)
    assert np.array_equal(image, eager_image)
    assert "image.compile: default" in caplog.text and "BackendCompilerFailed" in caplog.text
    assert unet_forward.failed is not None
    assert "forward" not in engine.pipe.unet.__dict__  # eager from now on
    assert np.array_equal(pixels(engine), eager_image)


def test_an_input_error_is_not_blamed_on_the_compiler(engine, monkeypatch):
    """If the eager retry fails too, that error is raised and the compile stays on."""
    import torch

    from pipelines.speedups import compile_pipeline

    monkeypatch.setattr(torch, "compile", identity_compile([]))
    compile_pipeline(engine.pipe, "default", "cpu")
    forward = engine.pipe.unet.__dict__["forward"]
    with pytest.raises(TypeError):
        engine.pipe.unet("not a tensor")
    assert forward.failed is None
    assert engine.pipe.unet.__dict__["forward"] is forward


def test_reduce_overhead_on_cpu_compiles_as_default_with_warning(engine, monkeypatch, caplog):
    import torch

    from pipelines.speedups import compile_pipeline, remove_compile

    calls: list = []
    monkeypatch.setattr(torch, "compile", identity_compile(calls))
    with caplog.at_level(logging.WARNING, logger="pipelines.speedups"):
        applied = compile_pipeline(engine.pipe, "reduce-overhead", "cpu")
    assert applied == ["compile:reduce-overhead"]  # no channels_last off CUDA
    assert "CUDA graphs" in caplog.text and "image.compile=default" in caplog.text
    assert [c["mode"] for c in calls] == ["default", "default"]  # UNet, VAE decoder
    assert all(c["dynamic"] is False for c in calls)
    remove_compile(engine.pipe)
    calls.clear()
    compile_pipeline(engine.pipe, "max-autotune", "cpu")
    assert [c["mode"] for c in calls] == ["max-autotune-no-cudagraphs"] * 2


def test_cuda_compile_asks_for_graphs_and_channels_last(engine, monkeypatch):
    """What a CUDA device would get (the modes are only passed on; nothing runs)."""
    import torch

    from pipelines.speedups import compile_pipeline, remove_channels_last

    calls: list = []
    monkeypatch.setattr(torch, "compile", identity_compile(calls))
    try:
        applied = compile_pipeline(engine.pipe, "reduce-overhead", "cuda")
        assert applied == ["channels_last", "compile:reduce-overhead"]
        assert [c["mode"] for c in calls] == ["reduce-overhead"] * 2
        conv = engine.pipe.unet.conv_in.weight
        assert conv.is_contiguous(memory_format=torch.channels_last)
    finally:
        remove_channels_last(engine.pipe)


def test_new_image_size_is_logged_as_a_recompile(engine, eager_image, monkeypatch, caplog):
    import torch

    from pipelines.speedups import compile_pipeline

    monkeypatch.setattr(torch, "compile", identity_compile([]))
    compile_pipeline(engine.pipe, "default", "cpu")
    with caplog.at_level(logging.INFO, logger="pipelines.speedups"):
        assert np.array_equal(pixels(engine), eager_image)
        assert "new input shape" not in caplog.text
        pixels(engine)  # same shape: nothing new
        assert "new input shape" not in caplog.text
        pixels(engine, width=80)
    assert "new input shape" in caplog.text
    assert len(engine.pipe.unet.__dict__["forward"].shapes) == 2


def test_build_records_compile_and_warms_at_the_configured_size(tiny_config, monkeypatch, caplog):
    import torch

    from assistant.build import build_image_engine, warm_up_image
    from pipelines.speedups import remove_compile

    monkeypatch.setattr(torch, "compile", identity_compile([]))
    config = tiny_config.model_copy(deep=True)
    config.image.compile = "default"
    config.image.width, config.image.height = 64, 72
    engine = build_image_engine(config, "cpu")
    try:
        assert "compile:default" in engine.info.speedups
        sizes = []
        real_generate = engine.generate
        monkeypatch.setattr(
            engine, "generate", lambda r, **k: sizes.append((r.width, r.height)) or real_generate(r)
        )
        warm_up_image(engine, config)
        config.image.compile = "none"
        warm_up_image(engine, config)
        assert sizes == [(64, 72), (64, 64)]  # compiled: the real size; eager: 64 px as before
    finally:
        remove_compile(engine.pipe)
        torch._dynamo.reset()


def test_bench_compare_reports_first_call_for_compile_variants(monkeypatch, tmp_path):
    import torch

    from benchmarks.image_compare import compare_image, print_compare_table

    monkeypatch.setattr(torch, "compile", identity_compile([]))
    result = compare_image(
        "tiny",
        steps=1,
        size=64,
        repeats=1,
        variants=["compile=reduce-overhead"],
        tokenizer_cache=tmp_path,
    )
    assert list(result["variants"]) == ["default", "compile=reduce-overhead"]
    row = result["variants"]["compile=reduce-overhead"]
    assert row["first_call_s"] > 0 and row["ratio"] > 0
    lines: list[str] = []
    print_compare_table(result, out=lines.append)
    assert any("first call s" in line for line in lines)
    torch._dynamo.reset()


@pytest.mark.slow
def test_inductor_compile_matches_eager(engine, eager_image):
    """The real thing: Inductor on the CPU (needs gcc; minutes on 2 shared cores)."""
    from pipelines.speedups import compile_pipeline

    assert compile_pipeline(engine.pipe, "default", "cpu") == ["compile:default"]
    compiled = pixels(engine)
    assert engine.pipe.unet.__dict__["forward"].failed is None  # really compiled
    diff = np.abs(compiled - eager_image)
    assert diff.max() <= 4 and diff.mean() < 0.5
    assert np.array_equal(pixels(engine), compiled)  # steady calls: same result again
