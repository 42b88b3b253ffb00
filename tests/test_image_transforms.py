"""Plain image operations: exact pixels, sizes an edit can still use."""

import numpy as np
import pytest
from PIL import Image

from pipelines.image_transforms import apply_transform, transformed


def picture(width: int = 96, height: int = 64) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def test_flip_mirrors_the_pixels_exactly():
    image = picture()
    flipped = np.asarray(apply_transform(image, "flip-horizontal"))
    assert np.array_equal(flipped, np.asarray(image)[:, ::-1])
    assert np.array_equal(
        np.asarray(apply_transform(image, "flip-vertical")), np.asarray(image)[::-1]
    )


def test_rotations_swap_the_sides_and_four_quarter_turns_give_the_picture_back():
    image = picture()
    assert apply_transform(image, "rotate-left").size == (64, 96)
    turned = image
    for _ in range(4):
        turned = apply_transform(turned, "rotate-right")
    assert np.array_equal(np.asarray(turned), np.asarray(image))


@pytest.mark.parametrize(
    ("name", "size"),
    [("square", (64, 64)), ("portrait", (40, 64)), ("wide", (96, 48)), ("landscape", (96, 64))],
)
def test_shape_crops_are_centred_and_divisible_by_eight(name, size):
    out = apply_transform(picture(), name)
    assert out.size == size and out.width % 8 == 0 and out.height % 8 == 0


def test_zoom_keeps_the_size_and_shows_the_middle():
    image = Image.new("RGB", (64, 64), "black")
    image.paste((255, 255, 255), (16, 16, 48, 48))  # a white middle
    zoomed = np.asarray(apply_transform(image, "zoom-in"))
    assert zoomed.shape == (64, 64, 3) and zoomed[32, 32].min() == 255 and zoomed.mean() > 240


def test_bigger_doubles_and_stops_at_the_engine_limit():
    assert apply_transform(picture(), "bigger").size == (192, 128)
    assert max(apply_transform(picture(1600, 800), "bigger").size) == 2048


def test_transformed_keeps_the_parent_parameters_and_records_the_new_size():
    parent = {"prompt": "a red barn", "negative_prompt": "", "seed": 7, "steps": 2,
              "guidance": 1.0, "strength": None, "model": "m"}  # fmt: skip
    result = transformed(picture(), ["square", "flip-horizontal"], parent)
    assert result.params["prompt"] == "a red barn" and result.params["seed"] == 7
    assert (result.params["width"], result.params["height"]) == (64, 64)
    assert result.params["operation"] == "transform"
    assert result.params["transforms"] == ["square", "flip-horizontal"]


def test_an_unknown_transform_is_refused():
    with pytest.raises(ValueError, match="unknown transform"):
        apply_transform(picture(), "melt")
