"""CPU speed-ups of the image engine (pipelines.speedups), on the tiny random architecture."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.errors import ImageError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    from benchmarks.image_compare import COMPARE_VARIANTS, compare_image

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
    from benchmarks.image_operations import OPERATIONS, bench_operations, print_operations_table

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


# -- the CPU fast path: bf16 autocast, the prompt cache, TAESD previews ------------------------


def test_prompt_cache_draws_the_same_pixels_and_skips_the_text_encoder(tokenizer_cache):
    plain = make_engine(tokenizer_cache)
    cached = make_engine(tokenizer_cache, cpu_speedups=["prompt_cache"])
    assert "prompt_cache" in cached.info.speedups
    calls = []
    handle = cached.pipe.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        first, again = draw(cached, seed=3), draw(cached, seed=3)
        other_seed = draw(cached, seed=4)
    finally:
        handle.remove()
    assert np.array_equal(np.asarray(first.image), np.asarray(draw(plain, seed=3).image))
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other_seed.image))
    assert len(calls) == 1 and cached.prompt_cache_hits == 2  # one encode, then the cache


def test_bf16_autocast_runs_only_where_the_cpu_has_bf16(tokenizer_cache, monkeypatch, caplog):
    import common.devices

    monkeypatch.setattr(common.devices, "cpu_has_native_bf16", lambda: False)
    skipped = make_engine(tokenizer_cache, cpu_speedups=["bf16_autocast"])
    assert "bf16_autocast" not in skipped.info.speedups and not skipped.runner.bf16_autocast
    assert "no bf16 instructions" in caplog.text
    monkeypatch.setattr(common.devices, "cpu_has_native_bf16", lambda: True)
    fast = make_engine(tokenizer_cache, cpu_speedups=["bf16_autocast"])
    assert "bf16_autocast" in fast.info.speedups and fast.runner.bf16_autocast
    plain = make_engine(tokenizer_cache)
    image, reference = draw(fast).image, draw(plain).image
    assert image.size == reference.size == (64, 72)
    diff = np.abs(np.asarray(image, int) - np.asarray(reference, int))
    assert diff.mean() < 8  # bf16 keeps ~3 significant digits: close, not bit-equal


def test_previews_come_from_the_tiny_decoder_when_it_is_loaded(tokenizer_cache, monkeypatch):
    from PIL import Image

    import pipelines.previews
    from pipelines.image_engine import ImageRequest

    decoded, previews = [], []
    real = pipelines.previews.tiny_decoder_preview

    def counting(vae, latents, *args):
        decoded.append(tuple(latents.shape))
        return real(vae, latents, *args)

    monkeypatch.setattr(pipelines.previews, "tiny_decoder_preview", counting)
    for options, expected in (({}, 0), ({"tiny_vae": "random"}, 2)):
        decoded.clear()
        previews.clear()
        engine = make_engine(tokenizer_cache, **options)
        engine.generate(
            ImageRequest("a red cube", seed=1, steps=3, width=64, height=72),
            on_progress=lambda s, n, p: previews.append((s, n, p)),
        )
        assert [(s, n) for s, n, _ in previews] == [(1, 3), (2, 3), (3, 3)]
        assert all(isinstance(p, Image.Image) and p.mode == "RGB" for _, _, p in previews)
        # TAESD for the steps before the last; the finished picture follows the last at once.
        assert len(decoded) == expected, options
        if expected:
            assert previews[0][2].size == (64, 72)


def test_bench_image_puts_plain_diffusers_beside_ours(tokenizer_cache):
    from benchmarks.image_speed import bench_image, print_image_table

    result = bench_image(
        "tiny",
        steps=1,
        size=64,
        repeats=1,
        cpu_speedups=["channels_last", "prompt_cache"],
        tiny_vae="random",
        tokenizer_cache=tokenizer_cache,
    )
    assert result["speedups"] == ["tiny_vae:random", "channels_last", "prompt_cache"]
    assert result["steady_s"] > 0 and result["reference_steady_s"] > 0
    assert result["reference_vae_decode_s"] > 0 and result["vae_decode_s"] > 0
    assert result["text_encode_s"] == 0 and result["reference_text_encode_s"] > 0  # cached
    # Both are rounded (speedup to 0.01): a 0.19 speedup is 1 / 5.15 give or take 0.005.
    assert result["speedup"] == pytest.approx(1 / result["ratio"], rel=0.01, abs=0.006)
    assert len(result["load_avg"]) == 3
    lines: list[str] = []
    print_image_table(result, out=lines.append)
    assert "| seconds | plain AutoPipelineForText2Image | ours |" in lines
    assert any("x faster" in line for line in lines)
