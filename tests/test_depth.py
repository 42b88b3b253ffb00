"""Depth-guided editing (depth2img) on tiny random components: 64x64, 2 steps, all offline.

``image.depth_model: random`` builds a 5-channel UNet of the base's architecture and a tiny
DPT-Hybrid estimator with random weights; VAE, text encoder, tokenizer and scheduler are the
base pipeline's own objects.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import ImageError
from tests.images import SIZE, STEPS, request

# diffusers runs its estimator under autocast, which a float32 CPU run does not support.
pytestmark = pytest.mark.filterwarnings("ignore:In CPU autocast:UserWarning")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The base engine, no depth model configured."""
    from pipelines.image_engine import ImageEngine

    cache = tmp_path_factory.mktemp("tokenizer")
    return ImageEngine.from_model("random:tiny", device="cpu", tokenizer_cache=cache)


@pytest.fixture(scope="module")
def depth_engine(engine):
    """A second engine on the SAME loaded pipeline, with the random depth model."""
    from pipelines.image_engine import ImageEngine

    return ImageEngine(engine.pipe, engine.info, depth_model="random")


def photo(size=(SIZE, SIZE)) -> Image.Image:
    """A photo-like RGB picture: gradients plus seeded noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x * 4 % 256, y * 4 % 256, (x + y) * 2 % 256], axis=-1)
    rgb = rgb + rng.integers(-20, 20, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def test_depth_model_loads_on_first_use_and_shares_the_base_weights(engine):
    from diffusers import StableDiffusionDepth2ImgPipeline

    from pipelines.image_engine import ImageEngine

    fresh = ImageEngine(engine.pipe, engine.info, depth_model="random")
    assert fresh._depth_pipe is None  # nothing built until a depth edit asks for it
    fresh.depth_edit(request(), photo())
    pipe = fresh._depth_pipe
    assert isinstance(pipe, StableDiffusionDepth2ImgPipeline)
    # The same objects, not equal copies: no second set of weights in memory.
    for name in ("vae", "text_encoder", "tokenizer", "scheduler"):
        assert getattr(pipe, name) is getattr(engine.pipe, name), name
    assert pipe.unet is not engine.pipe.unet and pipe.unet.config.in_channels == 5
    assert pipe.depth_estimator is not None and pipe.feature_extractor is not None
    assert pipe in fresh.tasks.sharing()  # a sampler change reaches it too


def test_same_seed_same_pixels_and_output_size_equals_input(depth_engine):
    first = depth_engine.depth_edit(request(seed=5), photo())
    again = depth_engine.depth_edit(request(seed=5), photo())
    other = depth_engine.depth_edit(request(seed=6), photo())
    assert np.array_equal(pixels(first.image), pixels(again.image))
    assert not np.array_equal(pixels(first.image), pixels(other.image))
    params = first.params
    assert params["operation"] == "depth" and params["edit_path"] == "depth2img"
    assert params["depth_source"] == "estimator" and params["depth_model"] == "random"
    assert params["strength"] == 0.6 and params["steps"] == STEPS and params["seed"] == 5
    assert params["placeholder"] is True
    # A size that is not a multiple of 8 comes back as it went in.
    odd = depth_engine.depth_edit(request(), photo((100, 68)))
    assert odd.image.size == (100, 68) and odd.image.mode == "RGB"
    assert (odd.params["width"], odd.params["height"]) == (100, 68)


def test_the_depth_map_conditions_the_result(depth_engine):
    from pipelines.depth import estimate_depth

    picture = photo()
    estimated = depth_engine.depth_edit(request(), picture)
    depth = estimate_depth(depth_engine._depth_pipe, picture)
    assert depth.shape == (SIZE, SIZE) and depth.std() > 0
    # Handing the estimator's own map back gives the very same picture: that map is what
    # steers the UNet ...
    same = depth_engine.depth_edit(request(), picture, depth_map=depth)
    assert same.params["depth_source"] == "given"
    assert np.array_equal(pixels(same.image), pixels(estimated.image))
    # ... and a different map (near and far swapped) gives a different one.
    swapped = depth_engine.depth_edit(request(), picture, depth_map=depth.max() - depth)
    assert not np.array_equal(pixels(swapped.image), pixels(estimated.image))
    # A grey PIL image works as a depth map too.
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, SIZE, dtype=np.uint8), (SIZE, 1)))
    ramped = depth_engine.depth_edit(request(), picture, depth_map=ramp)
    assert not np.array_equal(pixels(ramped.image), pixels(estimated.image))


def test_without_depth_model_falls_back_to_img2img_and_says_so(engine):
    picture = photo()
    result = engine.depth_edit(request(), picture)
    params = result.params
    assert params["operation"] == "img2img" and params["requested_operation"] == "depth"
    assert params["edit_path"] == "img2img-fallback" and "depth_model" not in params
    assert result.image.size == picture.size
    assert engine._depth_pipe is None  # nothing was loaded
    # Exactly what img2img gives for the same request.
    plain = engine.img2img(request(), picture)
    assert np.array_equal(pixels(result.image), pixels(plain.image))
    # A depth map is still checked, then left unused.
    ramp = np.tile(np.arange(SIZE, dtype=np.float32), (SIZE, 1))
    with_map = engine.depth_edit(request(), picture, depth_map=ramp)
    assert np.array_equal(pixels(with_map.image), pixels(result.image))


BAD_INPUTS = [
    ({"strength": 0.0}, None, "`strength` must be above 0"),
    ({"strength": 1.5}, None, "`strength` must be above 0"),
    ({}, np.zeros((32, 48), np.float32) + np.arange(48), "is 48x32 but the picture is 64x64"),
    ({}, np.full((SIZE, SIZE), 3.0), "`depth_map` is flat"),
    ({}, np.full((SIZE, SIZE), np.nan), "NaN or infinite"),
    ({}, np.zeros((SIZE, SIZE, 3)), "one value per pixel"),
    ({}, [[0.0, 1.0]], "numpy array (height x width) or a PIL image"),
]


@pytest.mark.parametrize("configured", [True, False], ids=["depth2img", "fallback"])
@pytest.mark.parametrize(("overrides", "depth_map", "must_say"), BAD_INPUTS)
def test_bad_input_is_refused_with_a_teaching_message(
    engine, depth_engine, configured, overrides, depth_map, must_say
):
    target = depth_engine if configured else engine
    with pytest.raises(ImageError) as err:
        target.depth_edit(request(**overrides), photo(), depth_map=depth_map)
    assert err.value.code == "input-invalid"
    assert must_say in err.value.message


def test_image_must_be_a_picture(depth_engine):
    with pytest.raises(ImageError) as err:
        depth_engine.depth_edit(request(), np.zeros((SIZE, SIZE, 3), np.uint8))
    assert err.value.code == "input-invalid" and "`image`" in err.value.message


def test_progress_every_step_and_cancel(depth_engine):
    calls = []
    depth_engine.depth_edit(
        request(steps=4, strength=1.0), photo(), on_progress=lambda *c: calls.append(c)
    )
    assert [(s, n) for s, n, _ in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    cancel = threading.Event()

    def stop(step, total, preview):
        cancel.set()

    with pytest.raises(ImageError) as err:
        depth_engine.depth_edit(request(steps=10, strength=1.0), photo(), stop, cancel)
    assert err.value.code == "image-cancelled"


def test_a_depth_checkpoint_folder_loads_like_a_hub_checkpoint(engine, depth_engine, tmp_path):
    """The diffusers layout SD 2-depth has (unet/, depth_estimator/, feature_extractor/),
    written from the random parts, loads through the same code as a real checkpoint."""
    from pipelines.image_engine import ImageEngine

    built = depth_engine.depth_edit(request(), photo())
    parts = depth_engine._depth_pipe
    for name in ("unet", "depth_estimator", "feature_extractor"):
        getattr(parts, name).save_pretrained(tmp_path / name)
    loaded = ImageEngine(engine.pipe, engine.info, depth_model=str(tmp_path))
    result = loaded.depth_edit(request(), photo())
    assert np.array_equal(pixels(result.image), pixels(built.image))
    assert result.params["depth_model"] == str(tmp_path)
    assert loaded._depth_pipe.vae is engine.pipe.vae


def test_missing_or_wrong_depth_model_names_the_setting(engine, tmp_path):
    from pipelines.image_engine import ImageEngine

    single = tmp_path / "sd2-depth.safetensors"
    single.write_bytes(b"")
    for model, must_say in (
        (str(tmp_path / "no-such-folder"), "not in the local cache"),  # read as a hub id
        ("no-such-model", "no such file or folder"),
        (str(single), "a single file, not a diffusers folder"),
        ("random:tiny", "takes no architecture"),
    ):
        broken = ImageEngine(engine.pipe, engine.info, depth_model=model)
        with pytest.raises(ImageError) as err:
            broken.depth_edit(request(), photo())
        assert err.value.code == "model-missing"
        assert "`image.depth_model`" in err.value.message and must_say in err.value.message


def test_config_field_reaches_the_engine(tmp_path):
    from assistant.build import build_image_engine
    from assistant.config import load_config, parse_override

    assert load_config(profile="offline", environ={}).image.depth_model is None
    config = load_config(
        profile="offline",
        environ={},
        overrides=[
            parse_override("image.model=random:tiny"),
            parse_override("image.depth_model=random"),
            ("data_dir", str(tmp_path)),
        ],
    )
    assert config.image.depth_model == "random"
    assert build_image_engine(config, "cpu").depth_model == "random"
