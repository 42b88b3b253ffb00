"""The image engine on the tiny random pipeline: 64x64, 2 steps, all offline."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import ImageError
from tests.images import SIZE, STEPS, request


@pytest.fixture(scope="module")
def engine(tokenizer_cache):
    from pipelines.image_engine import ImageEngine

    return ImageEngine.from_model("random:tiny", device="cpu", tokenizer_cache=tokenizer_cache)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


# -- tokenizer -------------------------------------------------------------------------------


def test_clip_tokenizer_matches_openai_ids(tokenizer_cache):
    from pipelines.clip_tokenizer import VOCAB_SIZE, build_clip_tokenizer

    tokenizer = build_clip_tokenizer(tokenizer_cache)
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tokenizer) == VOCAB_SIZE
    assert tokenizer.model_max_length == 77
    assert tokenizer.pad_token == "<|endoftext|>"
    padded = tokenizer("a cat", padding="max_length", max_length=77).input_ids
    assert len(padded) == 77 and padded[-1] == 49407


# -- generate --------------------------------------------------------------------------------


def test_same_seed_same_pixels_other_seed_differs(engine):
    first = engine.generate(request(seed=123))
    again = engine.generate(request(seed=123))
    other = engine.generate(request(seed=124))
    assert first.image.mode == "RGB" and first.image.size == (SIZE, SIZE)
    assert np.array_equal(pixels(first.image), pixels(again.image))
    assert not np.array_equal(pixels(first.image), pixels(other.image))


def test_random_seed_is_recorded_and_reproduces(engine):
    result = engine.generate(request(seed=-1))
    seed = result.params["seed"]
    assert isinstance(seed, int) and seed >= 0
    replay = engine.generate(request(seed=seed))
    assert np.array_equal(pixels(result.image), pixels(replay.image))


def test_generate_params(engine):
    params = engine.generate(request(negative_prompt="blurry", guidance=2.0)).params
    assert params["operation"] == "generate"
    assert params["strength"] is None
    assert params["steps"] == STEPS and params["guidance"] == 2.0
    assert params["negative_prompt"] == "blurry"
    assert params["model"] == "random:tiny" and params["placeholder"] is True
    assert params["scheduler"] == "EulerAncestralDiscreteScheduler"
    assert params["elapsed_s"] > 0


def test_defaults_come_from_the_model(engine):
    params = engine.generate(request(steps=None, guidance=None)).params
    assert params["steps"] == engine.info.default_steps
    assert params["guidance"] == engine.info.default_guidance


def test_progress_called_every_step_with_preview(engine):
    calls = []
    engine.generate(request(steps=3), on_progress=lambda s, n, p: calls.append((s, n, p)))
    assert [(s, n) for s, n, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(isinstance(p, Image.Image) and p.mode == "RGB" for _, _, p in calls)
    assert calls[0][2].size == (SIZE, SIZE)  # latent grid x8


def test_cancel_within_one_step_and_engine_still_works(engine):
    cancel = threading.Event()
    seen = []

    def on_progress(step, total, preview):
        seen.append(step)
        if step == 1:
            cancel.set()

    with pytest.raises(ImageError) as err:
        engine.generate(request(steps=10), on_progress=on_progress, cancel=cancel)
    assert err.value.code == "image-cancelled"
    assert len(seen) < 3
    assert engine.generate(request()).image.size == (SIZE, SIZE)


def test_cancel_set_before_start(engine):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ImageError) as err:
        engine.generate(request(), cancel=cancel)
    assert err.value.code == "image-cancelled"


def test_long_prompt_is_encoded_in_full(engine):
    result = engine.generate(request(prompt="a red fox in the snow " * 40))
    assert result.image.size == (SIZE, SIZE)
    assert result.params["prompt_chunks"] > 1  # 77-token windows, not a silent cut


# -- img2img ---------------------------------------------------------------------------------


def test_img2img_shares_weights_and_changes_the_image(engine):
    assert engine.img2img_pipe.unet is engine.pipe.unet
    assert engine.img2img_pipe.vae is engine.pipe.vae
    assert engine.img2img_pipe.text_encoder is engine.pipe.text_encoder
    init = engine.generate(request(seed=1)).image
    result = engine.img2img(request(prompt="a dog", seed=2, steps=4, strength=0.5), init)
    assert result.image.size == (SIZE, SIZE)
    assert not np.array_equal(pixels(result.image), pixels(init))
    assert result.params["operation"] == "img2img"
    assert result.params["strength"] == 0.5
    assert result.params["steps"] == 4


def test_img2img_raises_steps_so_one_runs(engine):
    calls = []
    init = Image.new("RGB", (SIZE, SIZE), "red")
    result = engine.img2img(
        request(steps=1, strength=0.3), init, on_progress=lambda s, n, p: calls.append(n)
    )
    assert result.params["steps"] * 0.3 >= 1
    assert calls == [1]


def test_img2img_converts_and_resizes_init_image(engine, caplog):
    caplog.set_level(logging.INFO, logger="pipelines")
    init = Image.new("RGBA", (80, 48), (0, 128, 255, 100))
    result = engine.img2img(request(), init)
    assert result.image.size == (SIZE, SIZE) and result.image.mode == "RGB"
    assert "resizing" in caplog.text


def test_img2img_same_seed_same_pixels(engine):
    init = Image.new("RGB", (SIZE, SIZE), "green")
    a = engine.img2img(request(seed=5), init)
    b = engine.img2img(request(seed=5), init)
    assert np.array_equal(pixels(a.image), pixels(b.image))


# -- input checks and errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"width": 100}, "width"),
        ({"height": 4096}, "height"),
        ({"steps": 0}, "steps"),
        ({"steps": 151}, "steps"),
        ({"guidance": 31.0}, "guidance"),
        ({"strength": 1.5}, "strength"),
        ({"strength": 0.0}, "strength"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"seed": -2}, "seed"),
    ],
)
def test_bad_input_is_refused_naming_the_field(engine, overrides, field):
    with pytest.raises(ImageError) as err:
        engine.generate(request(**overrides))
    assert err.value.code == "input-invalid"
    assert f"`{field}`" in str(err.value)


def test_bad_init_image(engine):
    with pytest.raises(ImageError) as err:
        engine.img2img(request(), "not an image")
    assert err.value.code == "input-invalid"


class _FailingPipe:
    """Stands in for the pipeline and fails the way a real one can."""

    def __init__(self, real, error):
        self.scheduler, self.tokenizer, self.error = real.scheduler, real.tokenizer, error

    def __call__(self, **kwargs):
        raise self.error


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "image-oom"),
        (ValueError("something broke"), "image-failed"),
    ],
)
def test_failures_are_translated_and_engine_survives(engine, monkeypatch, error, code):
    real = engine.pipe
    monkeypatch.setattr(engine, "pipe", _FailingPipe(real, error))
    with pytest.raises(ImageError) as err:
        engine.generate(request())
    assert err.value.code == code
    assert err.value.__cause__ is error
    monkeypatch.setattr(engine, "pipe", real)
    assert engine.generate(request()).image.size == (SIZE, SIZE)


# -- loading ---------------------------------------------------------------------------------


def test_missing_local_path_is_model_missing(tmp_path):
    from pipelines.loading import load_pipeline

    for model in (str(tmp_path / "no-such-model"), str(tmp_path / "nope.safetensors")):
        with pytest.raises(ImageError) as err:
            load_pipeline(model, device="cpu")
        assert err.value.code == "model-missing"
        assert "image.model" in str(err.value)


def test_folder_without_model_index_is_model_missing(tmp_path):
    from pipelines.loading import load_pipeline

    with pytest.raises(ImageError) as err:
        load_pipeline(str(tmp_path), device="cpu")
    assert err.value.code == "model-missing"


def test_hub_id_offline_fails_fast(tmp_path, monkeypatch):
    from pipelines.loading import load_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ImageError) as err:
        load_pipeline("stabilityai/sd-turbo", device="cpu", cache_dir=tmp_path)
    assert time.perf_counter() - start < 10
    assert err.value.code == "model-missing"
    message = str(err.value)
    assert "image.model" in message and "random:small" in message


def test_hub_id_without_network_fails_fast(tmp_path, monkeypatch):
    import socket

    from pipelines.loading import load_pipeline

    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    start = time.perf_counter()
    with pytest.raises(ImageError) as err:
        load_pipeline("stabilityai/sd-turbo", device="cpu", cache_dir=tmp_path)
    assert time.perf_counter() - start < 10
    assert err.value.code == "model-missing"
    assert "unreachable" in str(err.value)


def test_single_file_offline_without_config_is_model_missing(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    from pipelines.loading import load_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checkpoint = tmp_path / "model.safetensors"
    v1_key = "model.diffusion_model.output_blocks.11.0.skip_connection.weight"  # SD 1.x layout
    save_file({v1_key: torch.zeros(1, 1, 1, 1)}, str(checkpoint))
    start = time.perf_counter()
    with pytest.raises(ImageError) as err:
        load_pipeline(str(checkpoint), device="cpu", cache_dir=tmp_path / "hf")
    assert time.perf_counter() - start < 10
    assert err.value.code == "model-missing"
    assert "image.checkpoint_config" in str(err.value)


def test_unreadable_checkpoint_is_model_missing(tmp_path):
    from pipelines.loading import load_pipeline

    checkpoint = tmp_path / "broken.safetensors"
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ImageError) as err:
        load_pipeline(str(checkpoint), device="cpu", cache_dir=tmp_path / "hf")
    assert err.value.code == "model-missing"


def test_local_diffusers_folder_round_trip(engine, tmp_path):
    import torch

    from pipelines.image_engine import ImageEngine
    from pipelines.loading import load_pipeline

    engine.pipe.save_pretrained(tmp_path / "tiny")
    pipe, info = load_pipeline(str(tmp_path / "tiny"), device="cpu", default_steps=STEPS)
    assert info.source == "folder" and info.placeholder is False and info.dtype == "float32"
    for name in ("unet", "vae", "text_encoder"):
        saved, loaded = getattr(engine.pipe, name).state_dict(), getattr(pipe, name).state_dict()
        assert all(torch.equal(saved[k], loaded[k]) for k in saved)

    def latents(p):
        generator = torch.Generator().manual_seed(3)
        kwargs = {"width": SIZE, "height": SIZE, "guidance_scale": 0.0, "output_type": "latent"}
        return p("a cat", num_inference_steps=STEPS, generator=generator, **kwargs).images

    # Equal up to float rounding (freshly loaded tensors may take other kernel paths; the
    # random tiny VAE amplifies that much, so compare before decoding).
    assert torch.allclose(latents(engine.pipe), latents(pipe), rtol=1e-4, atol=1e-4)
    assert ImageEngine(pipe, info).generate(request()).image.size == (SIZE, SIZE)


def test_device_and_dtype_rules():
    import torch

    from pipelines.loading import resolve_device, resolve_dtype

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    assert resolve_dtype("cpu", "auto") == torch.float32
    assert resolve_dtype("cpu", "float16") == torch.float32
    assert resolve_dtype("cuda", "auto") == torch.float16
    with pytest.raises(ImageError):
        resolve_device("tpu")


def test_unknown_random_arch():
    from pipelines.loading import load_pipeline

    with pytest.raises(ImageError) as err:
        load_pipeline("random:huge", device="cpu")
    assert err.value.code == "model-missing"
    assert "small" in str(err.value)


def test_warm_up(engine):
    assert engine.warm_up() > 0


# -- PNG metadata ----------------------------------------------------------------------------


def test_png_metadata_round_trip(engine, tmp_path):
    from pipelines.metadata import read_a1111_text, read_png_params, save_png

    result = engine.generate(request(seed=123, negative_prompt="blurry, low quality"))
    path = save_png(result.image, tmp_path / "out.png", result.params, parent="node-1")
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp file left behind
    params = read_png_params(path)
    assert params["prompt"] == "a photo of a cat"
    assert params["seed"] == 123 and params["parent"] == "node-1" and params["version"] == 1
    text = read_a1111_text(path)
    assert text.startswith("a photo of a cat\nNegative prompt: blurry, low quality\n")
    assert f"Steps: {STEPS}, Sampler: Euler a, CFG scale: 0.0, Seed: 123, Size: 64x64" in text
    assert "Model: random:tiny" in text
    assert np.array_equal(pixels(Image.open(path).convert("RGB")), pixels(result.image))


def test_png_metadata_img2img_strength(tmp_path):
    from pipelines.metadata import a1111_text, read_png_params, save_png

    params = {
        "prompt": "un renard roux — 狐",
        "negative_prompt": "",
        "seed": 9,
        "steps": 4,
        "guidance": 7.5,
        "strength": 0.6,
        "width": 512,
        "height": 512,
        "model": "m",
        "scheduler": "EulerDiscreteScheduler",
    }
    text = a1111_text(params)
    assert "Negative prompt" not in text
    assert text.endswith(
        "Steps: 4, Sampler: Euler, CFG scale: 7.5, Seed: 9, Size: 512x512, Model: m, "
        "Denoising strength: 0.6"
    )
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "x.png", params)
    assert read_png_params(path)["prompt"] == "un renard roux — 狐"
    assert read_png_params(path)["parent"] is None


def test_read_png_without_params(tmp_path):
    from pipelines.metadata import read_png_params

    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert read_png_params(tmp_path / "plain.png") == {}


# -- the operation names and the result record -----------------------------------------------


def test_operation_values_are_the_words_already_recorded():
    from pipelines.image_engine import OPERATIONS
    from pipelines.operations import Operation, parse_operation

    recorded = ("generate", "img2img", "depth", "controlnet", "inpaint", "outpaint", "upscale")
    assert all(Operation(word) == word for word in recorded)  # a plan's strings still match
    assert set(OPERATIONS) <= set(Operation)
    assert not Operation.UPLOAD.runs_a_model and not Operation.TRANSFORM.runs_a_model
    assert Operation.INSTRUCT_EDIT.runs_a_model
    with pytest.raises(ValueError, match="transform"):  # the message lists the names
        parse_operation("warp")


def test_result_record_gives_the_node_its_fields(engine):
    from pipelines.operations import Operation

    result = engine.generate(request(seed=5))
    assert result.operation is Operation.GENERATE
    assert type(result.params["operation"]) is str  # plain text in PNGs and the session store
    fields = result.node_fields()
    assert fields["seed"] == 5 and fields["steps"] == STEPS and fields["placeholder"] is True
    assert (fields["width"], fields["height"]) == (SIZE, SIZE)
    resampled = engine.upscale(result.image, 2).node_fields()  # Lanczos: no seed, no model
    assert resampled["operation"] == "upscale" and resampled["seed"] == 0
    assert resampled["steps"] == 0 and resampled["model"] == ""
    assert resampled["width"] == 2 * SIZE


# -- one place for devices and hub probes ----------------------------------------------------


def test_device_choice_refuses_unknown_names_and_degrades_missing_accelerators():
    from common.devices import pick_device
    from pipelines.loading import resolve_device

    with pytest.raises(ValueError, match="image.device"):
        pick_device("warp-drive", setting="image.device")
    with pytest.raises(ImageError) as err:
        resolve_device("warp-drive")
    assert err.value.code == "input-invalid" and "image.device" in str(err.value)
    assert pick_device("cpu") == "cpu"


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    from common.devices import cpu_has_native_bf16

    with_bf16 = tmp_path / "zen5"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    avx2_only = tmp_path / "avx2"
    avx2_only.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    assert cpu_has_native_bf16(with_bf16) is True
    assert cpu_has_native_bf16(avx2_only) is False
    assert cpu_has_native_bf16(tmp_path / "missing") is False
