"""Image operations beyond generate / img2img, on tiny random components: 64x64, 2 steps, offline.

Task models (a 9-channel inpainting UNet, an 8-channel InstructPix2Pix UNet, a ControlNet)
are built from configs with random weights and saved to folders, so the engine loads them
through the same code path a real checkpoint takes.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipelines.errors import ImageError
from tests.images import SIZE, STEPS, request


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from pipelines.image_engine import ImageEngine

    cache = tmp_path_factory.mktemp("tokenizer")
    return ImageEngine.from_model("random:tiny", device="cpu", tokenizer_cache=cache)


@pytest.fixture(scope="module")
def task_models(engine, tmp_path_factory):
    """Folders holding a tiny 9-channel inpainting UNet (pipeline layout: ``unet/``), a tiny
    8-channel InstructPix2Pix UNet (bare model folder) and a tiny canny ControlNet."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    root = tmp_path_factory.mktemp("task-models")
    config = {k: v for k, v in engine.pipe.unet.config.items() if not k.startswith("_")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for name, channels in (("inpaint/unet", 9), ("pix2pix", 8)):
            unet = UNet2DConditionModel.from_config({**config, "in_channels": channels})
            unet.save_pretrained(root / name)
        controlnet = ControlNetModel.from_unet(
            engine.pipe.unet, conditioning_embedding_out_channels=(4, 8, 8, 8)
        )
        controlnet.save_pretrained(root / "controlnet-canny")
    return {
        "inpaint": str(root / "inpaint"),
        "pix2pix": str(root / "pix2pix"),
        "canny": str(root / "controlnet-canny"),
    }


@pytest.fixture(scope="module")
def task_engine(engine, task_models):
    """A second engine on the SAME loaded pipeline, with every task model configured."""
    from pipelines.image_engine import ImageEngine

    return ImageEngine(
        engine.pipe,
        engine.info,
        inpaint_model=task_models["inpaint"],
        pix2pix_model=task_models["pix2pix"],
        controlnet_models={"canny": task_models["canny"]},
    )


@pytest.fixture(scope="module")
def picture(engine):
    return engine.generate(request(seed=1)).image


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def box_mask(box=(16, 16, 40, 40), size=(SIZE, SIZE)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def assert_code(err, code: str, field: str | None = None) -> None:
    assert err.value.code == code, err.value
    if field is not None:
        assert field in str(err.value), str(err.value)


# -- generate_batch --------------------------------------------------------------------------


def test_batch_seeds_follow_on_and_each_candidate_replays_alone(engine):
    calls = []
    results = engine.generate_batch(
        request(seed=40), 3, on_progress=lambda s, n, p: calls.append((s, n))
    )
    assert [r.params["seed"] for r in results] == [40, 41, 42]
    assert [r.params["batch_index"] for r in results] == [0, 1, 2]
    assert all(r.params["operation"] == "generate_batch" for r in results)
    assert all(r.image.size == (SIZE, SIZE) and r.image.mode == "RGB" for r in results)
    assert calls == [(i, 3 * STEPS) for i in range(1, 3 * STEPS + 1)]
    alone = engine.generate(request(seed=41)).image
    assert np.array_equal(pixels(results[1].image), pixels(alone))
    assert not np.array_equal(pixels(results[0].image), pixels(results[1].image))


def test_batch_random_seeds_are_recorded(engine):
    seeds = [r.params["seed"] for r in engine.generate_batch(request(seed=-1), 2)]
    assert all(isinstance(s, int) and s >= 0 for s in seeds) and seeds[0] != seeds[1]


@pytest.mark.parametrize("count", [0, 9, 2.0])
def test_batch_count_is_checked(engine, count):
    with pytest.raises(ImageError) as err:
        engine.generate_batch(request(), count)
    assert_code(err, "input-invalid", "`count`")


# -- inpaint ---------------------------------------------------------------------------------


def test_inpaint_shares_weights_with_the_base(engine):
    pipe = engine.inpaint_pipe
    assert type(pipe).__name__ == "StableDiffusionInpaintPipeline"
    assert pipe.unet is engine.pipe.unet and engine.img2img_pipe.unet is engine.pipe.unet
    assert pipe.vae is engine.pipe.vae and pipe.text_encoder is engine.pipe.text_encoder


def test_inpaint_keeps_outside_pixels_exactly_and_repeats(engine, picture):
    from pipelines.masks import BLEND_RADIUS

    mask = box_mask()
    result = engine.inpaint(request(seed=3), picture, mask)
    again = engine.inpaint(request(seed=3), picture, mask)
    assert result.image.size == (SIZE, SIZE) and result.image.mode == "RGB"
    assert np.array_equal(pixels(result.image), pixels(again.image))
    # Outside the mask grown by the blend border (2 * radius), every pixel is the original.
    border = mask.filter(ImageFilter.MaxFilter(4 * BLEND_RADIUS + 1))
    outside = np.asarray(border) == 0
    assert outside.sum() > SIZE * SIZE / 3
    assert np.array_equal(pixels(result.image)[outside], pixels(picture)[outside])
    inside = np.asarray(mask) == 255
    assert not np.array_equal(pixels(result.image)[inside], pixels(picture)[inside])
    params = result.params
    assert params["operation"] == "inpaint" and params["strength"] == 1.0
    assert params["mask_bbox"] == [16, 16, 40, 40] and params["inpaint_model"] is None
    assert params["seed"] == 3 and params["width"] == SIZE


def test_inpaint_rgba_mask_uses_alpha(engine, picture):
    mask = Image.new("RGBA", (SIZE, SIZE), (255, 255, 255, 0))  # white but transparent
    mask.paste((0, 0, 0, 255), (0, 0, 16, 16))  # black but opaque: this is the brush stroke
    result = engine.inpaint(request(), picture, mask)
    assert result.params["mask_bbox"] == [0, 0, 16, 16]


def test_inpaint_bad_masks(engine, picture):
    with pytest.raises(ImageError) as err:
        engine.inpaint(request(), picture, box_mask(size=(SIZE, SIZE + 8)))
    assert_code(err, "input-invalid", "`mask`")
    assert "64x72" in str(err.value)
    with pytest.raises(ImageError) as err:
        engine.inpaint(request(), picture, Image.new("L", (SIZE, SIZE), 40))
    assert_code(err, "input-invalid", "nothing to repaint")
    with pytest.raises(ImageError) as err:
        engine.inpaint(request(), picture, box_mask(), strength=0.0)
    assert_code(err, "input-invalid", "`strength`")


def test_inpaint_cancel_within_one_step(engine, picture):
    cancel = threading.Event()
    seen = []

    def on_progress(step, total, preview):
        seen.append(step)
        cancel.set()

    with pytest.raises(ImageError) as err:
        engine.inpaint(request(steps=10), picture, box_mask(), on_progress, cancel)
    assert_code(err, "image-cancelled")
    assert seen == [1]
    assert engine.inpaint(request(), picture, box_mask()).image.size == (SIZE, SIZE)


def test_inpaint_with_a_dedicated_9_channel_unet(task_engine, engine, picture):
    pipe = task_engine.inpaint_pipe
    assert pipe.unet.config.in_channels == 9 and pipe.unet is not engine.pipe.unet
    assert pipe.vae is engine.pipe.vae and pipe.text_encoder is engine.pipe.text_encoder
    mask = box_mask()
    result = task_engine.inpaint(request(), picture, mask)
    assert result.image.size == (SIZE, SIZE)
    assert result.params["inpaint_model"].endswith("inpaint")
    outside = np.asarray(mask.filter(ImageFilter.MaxFilter(17))) == 0
    assert np.array_equal(pixels(result.image)[outside], pixels(picture)[outside])


def test_wrong_task_model_is_model_missing(engine, task_models, picture):
    from pipelines.image_engine import ImageEngine

    wrong = ImageEngine(engine.pipe, engine.info, inpaint_model=task_models["pix2pix"])
    with pytest.raises(ImageError) as err:
        wrong.inpaint(request(), picture, box_mask())
    assert_code(err, "model-missing", "`image.inpaint_model`")
    assert "8 input channels" in str(err.value)
    missing = ImageEngine(engine.pipe, engine.info, pix2pix_model="/no/such/folder")
    with pytest.raises(ImageError) as err:
        missing.instruct_edit(request(), picture, "add snow")
    assert_code(err, "model-missing", "`image.pix2pix_model`")


# -- outpaint --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "size", "offset"),
    [("right", (96, 64), (0, 0)), ("up", (64, 96), (0, 32)), ("all", (128, 128), (32, 32))],
)
def test_outpaint_size_and_interior(engine, picture, direction, size, offset):
    from pipelines.masks import SEAM_PIXELS

    result = engine.outpaint(request(), picture, direction, 32)
    assert result.image.size == size and result.image.mode == "RGB"
    params = result.params
    assert params["operation"] == "outpaint" and params["direction"] == direction
    assert params["pixels"] == 32 and (params["width"], params["height"]) == size
    assert params["offset"] == list(offset) and params["source_size"] == [SIZE, SIZE]
    x, y = offset
    placed = pixels(result.image)[y : y + SIZE, x : x + SIZE]
    # Farther than the seam from every extended edge, the original is untouched.
    keep = np.ones((SIZE, SIZE), dtype=bool)
    if direction in ("right", "all"):
        keep[:, SIZE - SEAM_PIXELS :] = False
    if direction in ("up", "all"):
        keep[:SEAM_PIXELS, :] = False
    if direction == "all":
        keep[:, :SEAM_PIXELS] = False
        keep[SIZE - SEAM_PIXELS :, :] = False
    assert np.array_equal(placed[keep], pixels(picture)[keep])


def test_outpaint_same_seed_same_pixels(engine, picture):
    a = engine.outpaint(request(seed=11), picture, "left", 16)
    b = engine.outpaint(request(seed=11), picture, "left", 16)
    assert np.array_equal(pixels(a.image), pixels(b.image))


@pytest.mark.parametrize(
    ("direction", "amount", "field"),
    [("right", 7, "`pixels`"), ("right", 2048, "`pixels`"), ("sideways", 32, "`direction`")],
)
def test_outpaint_bad_input(engine, picture, direction, amount, field):
    with pytest.raises(ImageError) as err:
        engine.outpaint(request(), picture, direction, amount)
    assert_code(err, "input-invalid", field)


def test_outpaint_refuses_canvas_over_the_limit(engine):
    big = Image.new("RGB", (2048, 64))
    with pytest.raises(ImageError) as err:
        engine.outpaint(request(), big, "left", 8)
    assert_code(err, "input-invalid", "2048")


def test_outpaint_canvas_helper():
    from pipelines.masks import outpaint_canvas

    image = Image.new("RGB", (64, 64), (200, 10, 10))
    canvas, mask, alpha, offset = outpaint_canvas(image, "down", 16, seed=0, seam=8)
    assert canvas.size == mask.size == alpha.size == (64, 80) and offset == (0, 0)
    m, a = np.asarray(mask), np.asarray(alpha)
    assert (m[64:] == 255).all() and (m[56:64] == 255).all() and (m[:56] == 0).all()
    assert (a[64:] == 255).all() and (a[:56] == 0).all() and 0 < a[60, 0] < 255
    fill = np.asarray(canvas)[64:].astype(int)
    assert abs(fill[..., 0].mean() - 200) < 20  # stretched edge colour plus noise


# -- variation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strength", "value", "label"), [("subtle", 0.3, "subtle"), (0.5, 0.5, "custom")]
)
def test_variation(engine, picture, strength, value, label):
    result = engine.variation(request(seed=-1), picture, strength)
    assert result.image.size == (SIZE, SIZE)
    assert result.params["operation"] == "variation" and result.params["strength"] == value
    assert result.params["variation"] == label and result.params["seed"] >= 0
    assert result.params["steps"] * value >= 1


@pytest.mark.parametrize("strength", ["wild", 1.5])
def test_variation_bad_strength(engine, picture, strength):
    with pytest.raises(ImageError) as err:
        engine.variation(request(), picture, strength)
    assert_code(err, "input-invalid", "`strength`")


# -- upscale ---------------------------------------------------------------------------------


def test_upscale_without_model_is_lanczos(engine, picture, tmp_path):
    from pipelines.metadata import read_png_params, save_png

    result = engine.upscale(picture, 2)
    assert result.image.size == (128, 128) and result.image.mode == "RGB"
    assert result.params["operation"] == "upscale" and result.params["factor"] == 2.0
    assert result.params["upscaler"] == "lanczos (no upscaler model configured)"
    assert result.params["source_size"] == [SIZE, SIZE]
    assert "seed" not in result.params and "steps" not in result.params  # a resampler has none
    saved = read_png_params(save_png(result.image, tmp_path / "up.png", result.params))
    assert saved["upscaler"] == result.params["upscaler"]


@pytest.mark.parametrize(("size", "factor"), [(512, 16), (1200, 4), (64, 1)])
def test_upscale_bad_factor(engine, size, factor):
    with pytest.raises(ImageError) as err:
        engine.upscale(Image.new("RGB", (size, size)), factor)
    assert_code(err, "input-invalid", "`factor`")


# -- schedulers ------------------------------------------------------------------------------


def test_set_scheduler_switches_every_pipe_and_is_recorded(engine, picture):
    from pipelines.schedulers import SCHEDULERS

    try:
        for name in SCHEDULERS:
            engine.set_scheduler(name)
            assert engine.inpaint_pipe.scheduler is engine.pipe.scheduler
            assert engine.img2img_pipe.scheduler is engine.pipe.scheduler
            result = engine.generate(request(steps=2))
            assert result.params["sampler"] == name
            assert result.params["scheduler"] == SCHEDULERS[name][0]
        karras = engine.pipe.scheduler.config if engine.set_scheduler("DPM++ 2M Karras") else None
        assert karras.use_karras_sigmas is True
        # the model's noise schedule survives the switch
        assert karras.beta_schedule == "scaled_linear" and karras.timestep_spacing == "trailing"
    finally:
        engine.set_scheduler("euler_a")
    assert engine.inpaint(request(), picture, box_mask()).params["sampler"] == "euler_a"


def test_unknown_scheduler_lists_the_names(engine):
    with pytest.raises(ImageError) as err:
        engine.set_scheduler("warp-drive")
    assert_code(err, "input-invalid", "`scheduler`")
    assert "dpm++_2m_karras" in str(err.value) and "euler_a" in str(err.value)


# -- instruct edit ---------------------------------------------------------------------------


def test_instruct_edit_falls_back_to_img2img(engine, picture):
    result = engine.instruct_edit(request(prompt="a cat in the snow"), picture, "add snow")
    assert result.image.size == (SIZE, SIZE)
    params = result.params
    assert params["operation"] == "img2img" and params["edit_path"] == "img2img-fallback"
    assert params["requested_operation"] == "instruct_edit"
    assert params["instruction"] == "add snow" and params["prompt"] == "a cat in the snow"
    with pytest.raises(ImageError) as err:
        engine.instruct_edit(request(), picture, "  ")
    assert_code(err, "input-invalid", "`instruction`")


def test_instruct_edit_with_pix2pix(task_engine, engine, picture):
    result = task_engine.instruct_edit(request(steps=2, guidance=2.0), picture, "add snow")
    pipe = task_engine._pix2pix_pipe
    assert type(pipe).__name__ == "StableDiffusionInstructPix2PixPipeline"
    assert pipe.unet.config.in_channels == 8 and pipe.vae is engine.pipe.vae
    assert pipe.text_encoder is engine.pipe.text_encoder
    assert result.image.size == (SIZE, SIZE)
    params = result.params
    assert params["operation"] == "instruct_edit" and params["edit_path"] == "pix2pix"
    assert params["prompt"] == "add snow" and params["pix2pix_model"].endswith("pix2pix")
    assert params["steps"] == 2 and params["image_guidance"] == 1.5


# -- controlnet ------------------------------------------------------------------------------


def test_controlnet_canny(task_engine, engine, picture):
    result = task_engine.controlnet(request(), picture, "canny")
    pipe = task_engine._controlnet_pipes["canny"]
    assert type(pipe).__name__ == "StableDiffusionControlNetPipeline"
    assert pipe.unet is engine.pipe.unet and pipe.vae is engine.pipe.vae
    assert result.image.size == (SIZE, SIZE) and result.image.mode == "RGB"
    params = result.params
    assert params["operation"] == "controlnet" and params["condition"] == "canny"
    assert params["controlnet_model"].endswith("controlnet-canny")
    again = task_engine.controlnet(request(), picture, "canny")
    assert np.array_equal(pixels(result.image), pixels(again.image))


def test_unconfigured_controlnet_names_the_setting(engine, picture):
    with pytest.raises(ImageError) as err:
        engine.controlnet(request(), picture, "depth")
    assert_code(err, "model-missing", "image.controlnet_models.depth")


def test_canny_numpy_fallback_finds_the_square_edges():
    from pipelines.conditions import canny_map

    image = Image.new("L", (64, 64), 0)
    image.paste(255, (16, 16, 48, 48))
    edges = np.asarray(canny_map(image, use_cv2=False))[..., 0]
    assert edges.shape == (64, 64) and set(np.unique(edges)) <= {0, 255}
    assert edges[32, 14:19].max() == 255 and edges[32, 46:51].max() == 255  # left, right sides
    assert edges[30:34, 30:34].max() == 0 and edges[:8].max() == 0  # flat areas stay dark
    try:
        import cv2  # noqa: F401
    except ImportError:
        return
    both = np.asarray(canny_map(image))[..., 0]
    assert (both[32, 14:19].max(), both[32, 46:51].max()) == (255, 255)


# -- memory options --------------------------------------------------------------------------


def test_memory_options_at_load(engine, caplog, tmp_path):
    from pipelines.loading import load_pipeline

    caplog.set_level(logging.INFO, logger="pipelines")
    pipe, _ = load_pipeline(
        "random:tiny",
        device="cpu",
        tokenizer_cache=tmp_path,
        vae_tiling=True,
        vae_slicing=True,
        cpu_offload="model",
        attention="eager",
    )
    assert pipe.vae.use_tiling and pipe.vae.use_slicing
    assert "does nothing on cpu" in caplog.text
    assert type(pipe.unet.attn_processors[next(iter(pipe.unet.attn_processors))]).__name__ == (
        "AttnProcessor"
    )
    for kwargs, field in (
        ({"cpu_offload": "always"}, "image.cpu_offload"),
        ({"attention": "flash"}, "image.attention"),
    ):
        with pytest.raises(ImageError) as err:
            load_pipeline("random:tiny", device="cpu", tokenizer_cache=tmp_path, **kwargs)
        assert_code(err, "input-invalid", field)


def test_large_images_tile_the_vae_for_that_run_only(engine, caplog):
    from pipelines.denoise import auto_tiling

    caplog.set_level(logging.INFO, logger="pipelines")
    assert not engine.pipe.vae.use_tiling
    assert auto_tiling(engine.pipe, {"width": 512, "height": 512}) is False
    assert auto_tiling(engine.pipe, {"width": 1280, "height": 512}) is True
    assert engine.pipe.vae.use_tiling and "VAE tiling" in caplog.text
    engine.pipe.vae.disable_tiling()
