"""Text-prompted masks ("repaint the sky") on a tiny random CLIPSeg, all offline.

``image.segmenter: random`` builds the real transformers CLIPSeg classes at a tiny size with
random weights and the real CLIP tokenizer; its regions are arbitrary but follow the picture
and the text, which is what these tests check, together with the real loading path (a
folder written by ``save_pretrained``) and the errors a person sees.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import ImageError

WIDTH, HEIGHT = 160, 120  # not square, not the model's 64x64: the mask must follow the picture


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The assistant's data folder (the CLIP tokenizer files are written there once)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def segmenter(data_dir):
    from pipelines.segment import load_segmenter

    return load_segmenter("random", "cpu", cache_dir=data_dir)


def photo(size=(WIDTH, HEIGHT)) -> Image.Image:
    """A photo-like RGB picture: gradients plus seeded noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x * 2 % 256, y * 2 % 256, (x + y) % 256], axis=-1)
    rgb = rgb + rng.integers(-20, 20, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def on(mask: Image.Image) -> np.ndarray:
    return np.asarray(mask) > 0


def test_random_mask_fits_the_picture_and_is_deterministic(segmenter, data_dir):
    from pipelines.segment import load_segmenter

    picture = photo()
    found = segmenter.mask_for(picture, "the sky")
    assert found.mask.mode == "L" and found.mask.size == picture.size
    assert set(np.unique(np.asarray(found.mask))) <= {0, 255}  # hard: inpaint blends it back
    assert 0.0 < found.coverage < 1.0
    assert found.coverage == pytest.approx(on(found.mask).mean())
    assert found.description == "the sky" and found.source == "random"
    assert found.placeholder is True
    # The same picture and text give the same mask, and so does a second build (same seed).
    again = segmenter.mask_for(picture, "the sky")
    assert np.array_equal(np.asarray(again.mask), np.asarray(found.mask))
    rebuilt = load_segmenter("random", "cpu", cache_dir=data_dir)
    assert np.array_equal(np.asarray(rebuilt.mask_for(picture, "the sky").mask), found.mask)


def test_the_description_conditions_the_mask(segmenter):
    picture = photo()
    sky = on(segmenter.mask_for(picture, "the sky", grow_px=0).mask)
    dog = on(segmenter.mask_for(picture, "the dog", grow_px=0).mask)
    assert not np.array_equal(sky, dog)
    # The picture matters too: the same text on another picture finds another region.
    flipped = on(segmenter.mask_for(picture.transpose(Image.Transpose.ROTATE_180), "the sky").mask)
    assert not np.array_equal(flipped, on(segmenter.mask_for(picture, "the sky").mask))


def test_grow_px_grows_the_mask_and_threshold_shrinks_it(segmenter):
    picture = photo()
    as_found = segmenter.mask_for(picture, "the sky", grow_px=0)
    grown = segmenter.mask_for(picture, "the sky", grow_px=4)
    more = segmenter.mask_for(picture, "the sky", grow_px=8)
    assert as_found.coverage < grown.coverage < more.coverage
    assert not (on(as_found.mask) & ~on(grown.mask)).any()  # growing only adds pixels
    strict = segmenter.mask_for(picture, "the sky", threshold=0.7, grow_px=0)
    assert 0.0 < strict.coverage < as_found.coverage


def _fixed_logits(monkeypatch, segmenter, value: float) -> None:
    """Make the model answer ``value`` for every pixel (it runs, its logits are replaced)."""
    import torch

    model = segmenter.model
    forward = model.forward

    def constant(*args, **kwargs):
        output = forward(*args, **kwargs)
        output.logits = torch.full_like(output.logits, value)
        return output

    monkeypatch.setattr(model, "forward", constant)


@pytest.mark.parametrize("placeholder", [False, True], ids=["trained", "random"])
def test_nothing_found_is_refused_with_a_teaching_message(monkeypatch, segmenter, placeholder):
    from pipelines.segment import Segmenter

    # As a trained model (absolute threshold) and as the placeholder (a flat map).
    target = Segmenter(segmenter.model, segmenter.processor, "test", placeholder=placeholder)
    _fixed_logits(monkeypatch, target, -30.0)
    with pytest.raises(ImageError) as err:
        target.mask_for(photo(), "the dog")
    assert err.value.code == "input-invalid"
    assert "couldn't find the dog in the picture" in err.value.message
    assert "brush over it" in err.value.message and "the top half" in err.value.message


def test_a_match_covering_everything_is_refused(monkeypatch, segmenter):
    from pipelines.segment import Segmenter

    target = Segmenter(segmenter.model, segmenter.processor, "test")
    _fixed_logits(monkeypatch, target, 30.0)
    with pytest.raises(ImageError) as err:
        target.mask_for(photo(), "the sky")
    assert err.value.code == "input-invalid"
    assert "cover the whole picture (100% of it)" in err.value.message
    assert "make it darker" in err.value.message


@pytest.mark.parametrize(
    ("arguments", "must_say"),
    [
        ({"description": "  "}, "Say which part to repaint"),
        ({"threshold": 0.0}, "`threshold` must be between 0 and 1"),
        ({"threshold": 1.5}, "`threshold` must be between 0 and 1"),
        ({"grow_px": -1}, "`grow_px` must be a whole number"),
        ({"grow_px": 2.5}, "`grow_px` must be a whole number"),
        ({"image": np.zeros((8, 8, 3))}, "`image` must be a PIL image"),
    ],
)
def test_bad_arguments_are_refused(segmenter, arguments, must_say):
    values = {"image": photo(), "description": "the sky", **arguments}
    with pytest.raises(ImageError) as err:
        segmenter.mask_for(**values)
    assert err.value.code == "input-invalid"
    assert must_say in err.value.message


def _not_clipseg(tmp_path):
    folder = tmp_path / "dpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "dpt"}))
    return str(folder)


def _single_file(tmp_path):
    path = tmp_path / "clipseg.safetensors"
    path.write_bytes(b"\0" * 16)
    return str(path)


def _empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    return str(tmp_path / "empty")


@pytest.mark.parametrize(
    ("make_source", "must_say"),
    [
        (lambda tmp: str(tmp / "no-such-folder"), "no such folder"),
        # A hub id that is in no cache; the tests run with HF_HUB_OFFLINE=1.
        (lambda tmp: "assistant-tests/no-such-clipseg", "not in the local Hugging Face cache"),
        (_empty_folder, "has no config.json"),
        (_not_clipseg, "holds a 'dpt' model, not a CLIPSeg one"),
        (_single_file, "single file"),
        (lambda tmp: None, "no segmenter is set"),
    ],
    ids=["missing-folder", "uncached-hub-id", "empty-folder", "other-model", "file", "unset"],
)
def test_a_missing_model_names_the_setting_and_what_to_set(tmp_path, make_source, must_say):
    from pipelines.segment import load_segmenter

    with pytest.raises(ImageError) as err:
        load_segmenter(make_source(tmp_path), "cpu", cache_dir=tmp_path, offline=True)
    assert err.value.code == "model-missing"
    message = err.value.message
    assert must_say in message
    assert "`image.segmenter`" in message
    assert "CIDAS/clipseg-rd64-refined" in message and "`random`" in message


def test_a_saved_folder_loads_through_the_real_path_and_gives_the_same_mask(segmenter, tmp_path):
    from pipelines.segment import load_segmenter

    folder = tmp_path / "clipseg"
    segmenter.model.save_pretrained(folder)
    segmenter.processor.save_pretrained(folder)
    loaded = load_segmenter(str(folder), "cpu", offline=True)
    assert loaded.model is not segmenter.model and loaded.source == str(folder)
    assert loaded.placeholder is True  # saved random weights stay labelled as such
    picture = photo()
    assert np.allclose(
        loaded.probabilities(picture, "the sky"), segmenter.probabilities(picture, "the sky")
    )
    mine, theirs = segmenter.mask_for(picture, "the sky"), loaded.mask_for(picture, "the sky")
    assert np.array_equal(np.asarray(mine.mask), np.asarray(theirs.mask))
    assert theirs.source == str(folder) and theirs.coverage == mine.coverage


def test_a_folder_laid_out_like_the_hub_download_loads(segmenter, tmp_path, data_dir):
    """vocab.json + merges.txt and a ViTFeatureExtractor preprocessor_config.json, as older
    hub uploads such as CIDAS/clipseg-rd64-refined have, with no processor_config.json."""
    import shutil

    from pipelines.clip_tokenizer import write_tokenizer_files
    from pipelines.segment import load_segmenter

    folder = tmp_path / "hub-like"
    segmenter.model.save_pretrained(folder)
    tokenizer_files = write_tokenizer_files(data_dir / "clip-tokenizer" / "clip-bpe-49408")
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(tokenizer_files / name, folder / name)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "do_normalize": True,
                "do_resize": True,
                "feature_extractor_type": "ViTFeatureExtractor",
                "image_mean": [0.485, 0.456, 0.406],
                "image_std": [0.229, 0.224, 0.225],
                "processor_class": "CLIPSegProcessor",
                "resample": 2,
                "size": 64,  # the real one reads 352
            }
        )
    )
    loaded = load_segmenter(str(folder), "cpu")
    picture = photo()
    mine, theirs = segmenter.mask_for(picture, "a dog"), loaded.mask_for(picture, "a dog")
    assert np.array_equal(np.asarray(mine.mask), np.asarray(theirs.mask))
