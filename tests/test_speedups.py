"""CPU speed-ups of the image engine (pipelines.speedups), on the tiny random architecture."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.errors import ImageError


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two OpenMP threads of a tiny model spend
    most of their time waiting for each other (measured: 6.5 s vs 0.1 s per 64 px image)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tokenizer")


def make_engine(tokenizer_cache, **load_kwargs):
    from pipelines.image_engine import ImageEngine

    return ImageEngine.from_model(
        "random:tiny", device="cpu", tokenizer_cache=tokenizer_cache, **load_kwargs
    )


def draw(engine, seed: int = 7):
    from pipelines.image_engine import ImageRequest

    return engine.generate(ImageRequest("a red cube", seed=seed, steps=2, width=64, height=72))


@pytest.mark.parametrize(
    "options",
    [
        {"cpu_speedups": ["channels_last"]},
        {"tiny_vae": "random"},
        {"cpu_speedups": ["channels_last"], "tiny_vae": "random"},
    ],
)
def test_option_applies_and_draws_right_size_reproducibly(tokenizer_cache, options):
    import torch

    engine = make_engine(tokenizer_cache, **options)
    expected = [f"tiny_vae:{options['tiny_vae']}"] if options.get("tiny_vae") else []
    expected += options.get("cpu_speedups", [])
    assert list(engine.info.speedups) == expected
    if "channels_last" in expected:
        conv = engine.pipe.unet.conv_in.weight
        assert conv.is_contiguous(memory_format=torch.channels_last)
    first, second = draw(engine), draw(engine)
    assert first.image.size == (64, 72)
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))


def test_channels_last_draws_what_the_default_path_draws(tokenizer_cache):
    plain = draw(make_engine(tokenizer_cache))
    fast = draw(make_engine(tokenizer_cache, cpu_speedups=["Channels_Last"]))
    diff = np.abs(np.asarray(plain.image, int) - np.asarray(fast.image, int))
    assert diff.max() <= 2  # same maths, another summation order


def test_tiny_vae_random_swaps_in_autoencoder_tiny(tokenizer_cache):
    from diffusers import AutoencoderTiny

    from pipelines.image_engine import ImageRequest

    engine = make_engine(tokenizer_cache, tiny_vae="random")
    assert isinstance(engine.pipe.vae, AutoencoderTiny)
    assert engine.img2img_pipe.vae is engine.pipe.vae  # derived pipelines share it
    result = draw(engine)
    assert result.image.size == (64, 72)
    edit = ImageRequest("a blue cube", seed=1, steps=2, width=64, height=72, strength=0.8)
    assert engine.img2img(edit, result.image).image.size == (64, 72)  # TAESD encodes too


def test_unknown_option_is_input_invalid_naming_the_setting(tokenizer_cache):
    with pytest.raises(ImageError) as e:
        make_engine(tokenizer_cache, cpu_speedups=["warp_drive"])
    assert e.value.code == "input-invalid"
    assert "image.cpu_speedups" in str(e.value)


def test_missing_tiny_vae_is_model_missing_naming_the_setting(tokenizer_cache, tmp_path):
    with pytest.raises(ImageError) as e:
        make_engine(tokenizer_cache, tiny_vae=str(tmp_path / "no-such-taesd"))
    assert e.value.code == "model-missing"
    assert "image.tiny_vae" in str(e.value)


def test_compare_bench_runs_every_variant_and_restores_the_pipeline(tokenizer_cache):
    from pipelines.bench import COMPARE_VARIANTS, compare_image

    # The compile variants take minutes to compile on a CPU: tests/test_compile.py covers them.
    names = [n for n in COMPARE_VARIANTS if not n.startswith("compile=")]
    result = compare_image(
        "tiny",
        steps=1,
        size=64,
        repeats=1,
        tokenizer_cache=tokenizer_cache,
        variants=names,
    )
    assert list(result["variants"]) == names
    assert result["variants"]["default"]["ratio"] == 1.0
    assert all(v["steady_s"] > 0 for v in result["variants"].values())


def test_operations_bench_times_every_operation_beside_plain_diffusers(tokenizer_cache):
    from pipelines.bench import OPERATIONS, bench_operations, print_operations_table

    result = bench_operations("tiny", steps=1, size=64, repeats=1, tokenizer_cache=tokenizer_cache)
    rows = result["operations"]
    assert list(rows) == list(OPERATIONS)
    assert result["load_s"] > 0 and result["peak_rss_mb"] > 0
    for name, row in rows.items():
        assert row["first_call_s"] > 0 and row["steady_s"] > 0, name
    for name in ("generate", "img2img", "inpaint", "depth_edit"):  # same work, plain diffusers
        assert rows[name]["reference_steady_s"] > 0 and rows[name]["ratio"] > 0, name
    for name in ("variation", "outpaint", "upscale", "instruct_edit"):
        assert rows[name]["reference_steady_s"] is None and rows[name]["ratio"] is None, name
    assert "lanczos" in rows["upscale"]["path"] and rows["upscale"]["per_step_s"] is None
    assert rows["depth_edit"]["path"].startswith("depth2img, random placeholder")
    assert rows["depth_edit"]["per_step_s"] > 0  # the depth pipeline's own 5-channel UNet
    assert rows["instruct_edit"]["path"].startswith("img2img-fallback")
    lines: list[str] = []
    print_operations_table(result, out=lines.append)
    body = [line for line in lines if line.startswith("| ") and not line.startswith("| operation")]
    assert [line.split(" | ")[0].removeprefix("| ") for line in body] == list(OPERATIONS)
    assert "n/a" in body[list(OPERATIONS).index("upscale")]
    assert any(line.startswith("peak RSS") for line in lines)


def test_bench_image_operations_flag_reaches_the_operations_bench(monkeypatch, capsys):
    import benchmarks.image
    import run_assistant

    seen = {}

    def fake_bench(model, **kwargs):
        seen.update(kwargs, model=model)
        return {"operations": {}}

    monkeypatch.setattr(benchmarks.image, "bench_operations", fake_bench)
    monkeypatch.setattr(benchmarks.image, "print_operations_table", lambda r: print("table"))
    argv = ["bench", "image", "--operations", "--set", "image.model=random:tiny"]
    argv += ["--set", "image.width=64", "--set", "image.depth_model=null", "--repeats", "1"]
    assert run_assistant.main(argv) == 0
    assert seen["model"] == "random:tiny" and seen["size"] == 64 and seen["repeats"] == 1
    assert seen["depth_model"] == "random"  # unset: the placeholder, so the row still runs
    assert capsys.readouterr().out.strip() == "table"
