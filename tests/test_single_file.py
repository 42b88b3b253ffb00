"""Single-file checkpoints (the original SD 1.x layout) load offline, bit-exact, or fail clearly.

No real checkpoint exists here, so the tiny random pipeline is written in that layout by
``tests.ldm_checkpoint`` and read back through diffusers' ``from_single_file``, with its
diffusers configs taken from a local folder (``image.checkpoint_config``).
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import numpy as np
import pytest

from pipelines.errors import ImageError
from tests.images import request
from tests.ldm_checkpoint import write_ldm_checkpoint

MODULES = ("unet", "vae", "text_encoder")
# Guidance given explicitly: the random and the single-file model have different defaults.
GUIDED = {"guidance": 5.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny random model, its diffusers folder (the config) and its single-file checkpoint."""
    from pipelines.image_engine import ImageEngine
    from pipelines.loading import load_pipeline

    root = tmp_path_factory.mktemp("single-file")
    pipe, info = load_pipeline("random:tiny", device="cpu", tokenizer_cache=root / "tokenizer")
    pipe.save_pretrained(root / "sd-config")
    checkpoint = write_ldm_checkpoint(pipe, root / "tiny-v1.safetensors")
    pixels = np.asarray(ImageEngine(pipe, info).generate(request(**GUIDED)).image)
    return SimpleNamespace(
        pipe=pipe, config=root / "sd-config", checkpoint=checkpoint, pixels=pixels
    )


def assert_same_weights(original, loaded) -> None:
    import torch

    for name in MODULES:
        saved, read = getattr(original, name).state_dict(), getattr(loaded, name).state_dict()
        assert saved.keys() == read.keys(), name
        assert all(torch.equal(saved[k], read[k]) for k in saved), name


def test_checkpoint_has_the_original_layout(tiny):
    from safetensors import safe_open

    with safe_open(str(tiny.checkpoint), framework="pt") as f:
        shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    # A few names every SD 1.x checkpoint has (the text one is what diffusers detects CLIP by).
    for key in (
        "model.diffusion_model.time_embed.0.weight",
        "model.diffusion_model.input_blocks.0.0.weight",
        "model.diffusion_model.middle_block.1.proj_in.weight",
        "model.diffusion_model.out.2.weight",
        "first_stage_model.encoder.down.0.downsample.conv.weight",
        "first_stage_model.post_quant_conv.weight",
        "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight",
    ):
        assert key in shapes, key
    assert len(shapes["first_stage_model.decoder.mid.attn_1.q.weight"]) == 4  # 1x1 conv
    assert not any(".down_blocks." in key or ".resnets." in key for key in shapes)


def test_single_file_round_trip_is_bit_exact(tiny, monkeypatch):
    from pipelines.image_engine import ImageEngine
    from pipelines.loading import load_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe, info = load_pipeline(str(tiny.checkpoint), device="cpu", config=str(tiny.config))
    assert (info.source, info.placeholder, info.label) == (
        "single-file",
        False,
        str(tiny.checkpoint),
    )
    assert_same_weights(tiny.pipe, pipe)
    image = ImageEngine(pipe, info).generate(request(**GUIDED)).image
    assert np.array_equal(np.asarray(image), tiny.pixels)


def test_full_depth_sd15_unet_round_trip(tiny, tmp_path, monkeypatch):
    # The tiny UNet has 2 levels; real SD 1.x has 4 with 2 layers each: 12 input and 12 output
    # blocks (diffusers tells input_blocks.1 from input_blocks.10 by substring), and the key
    # diffusers detects SD 1.x by. Same block layout here, at tiny widths.
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import CHECKPOINT_KEY_NAMES
    from safetensors import safe_open

    from pipelines.components import ARCHS
    from pipelines.loading import load_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny_widths = {"block_out_channels": (4, 4, 8, 8), "cross_attention_dim": 8}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        unet = UNet2DConditionModel(
            **{**ARCHS["sd15"].unet, **tiny_widths, "attention_head_dim": 2, "norm_num_groups": 2}
        )
    pipe = StableDiffusionPipeline(**{**tiny.pipe.components, "unet": unet.eval()})
    pipe.save_pretrained(tmp_path / "config")
    checkpoint = write_ldm_checkpoint(pipe, tmp_path / "sd15-shaped.safetensors")
    with safe_open(str(checkpoint), framework="pt") as f:
        assert CHECKPOINT_KEY_NAMES["v1"] in f.keys()
        assert "model.diffusion_model.input_blocks.11.0.in_layers.0.weight" in f.keys()
    loaded, _ = load_pipeline(str(checkpoint), device="cpu", config=str(tmp_path / "config"))
    assert_same_weights(pipe, loaded)


def test_checkpoint_through_the_config_settings(tiny, tmp_path, monkeypatch):
    # What a user writes: image.model=<file>, image.checkpoint_config=~/<folder>.
    from assistant.build import build_image_engine
    from assistant.config import load_config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tiny.config.parent))  # so "~" is where the config folder is
    config = load_config(
        profile="tiny",
        environ={},
        overrides=[
            ("image.model", str(tiny.checkpoint)),
            ("image.checkpoint_config", f"~/{tiny.config.name}"),
            ("output_dir", str(tmp_path / "out")),
            ("data_dir", str(tmp_path / "data")),
        ],
    )
    engine = build_image_engine(config, "cpu")
    assert engine.info.source == "single-file" and not engine.info.placeholder
    assert_same_weights(tiny.pipe, engine.pipe)
    assert np.array_equal(np.asarray(engine.generate(request(**GUIDED)).image), tiny.pixels)


@pytest.mark.parametrize("where", ["no-model-index", "~/no-such-folder"])
def test_wrong_checkpoint_config_names_the_setting(tiny, tmp_path, monkeypatch, where):
    from pipelines.loading import load_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = str(tmp_path) if where == "no-model-index" else where
    with pytest.raises(ImageError) as err:
        load_pipeline(str(tiny.checkpoint), device="cpu", config=config)
    assert err.value.code == "model-missing"
    assert "image.checkpoint_config" in str(err.value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # download stopped half way
        lambda data: data[:-1],  # one byte short
        lambda data: data[:40],  # cut inside the header
        lambda data: data[:8] + b"\0" * 64 + data[72:],  # header overwritten
    ],
    ids=["half", "one-byte-short", "header-cut", "header-zeroed"],
)
def test_damaged_checkpoint_says_re_download(tiny, tmp_path, damage):
    from pipelines.loading import load_pipeline

    broken = tmp_path / "v1-5-pruned.safetensors"
    broken.write_bytes(damage(tiny.checkpoint.read_bytes()))
    with pytest.raises(ImageError) as err:
        load_pipeline(str(broken), device="cpu", config=str(tiny.config))
    message = str(err.value)
    assert err.value.code == "model-missing"
    assert "damaged" in message and "Re-download" in message and str(broken) in message


def test_offline_single_file_never_opens_a_socket(tiny, monkeypatch):
    from pipelines.loading import load_pipeline

    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network used while HF_HUB_OFFLINE=1: {args!r}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    pipe, _ = load_pipeline(str(tiny.checkpoint), device="cpu", config=str(tiny.config))
    assert attempts == []  # recorded too, in case a library swallowed the AssertionError
    assert_same_weights(tiny.pipe, pipe)
