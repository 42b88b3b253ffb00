"""Write a diffusers Stable Diffusion 1.x pipeline as one original-layout checkpoint.

Real ``v1-5-pruned.safetensors`` files (CompVis / LDM, the layout AUTOMATIC1111 uses) cannot be
had offline, so the tests make one from a tiny random pipeline: the inverse of the key mapping
diffusers' ``from_single_file`` applies. Every diffusers tensor must find an LDM name, or this
raises, so a layout change shows up here rather than as silently missing weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."  # CLIPTextModel as SD 1.x stores it

# Leaf names inside one block, diffusers -> LDM.
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}
_VAE_SAME_NAME = (
    "encoder.conv_in",
    "encoder.conv_out",
    "decoder.conv_in",
    "decoder.conv_out",
    "quant_conv",
    "post_quant_conv",
)
_UNET_TOP = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}

# (diffusers key prefix with "#" for a block number, LDM prefix from those numbers, leaf renames)
Rule = tuple[str, Callable[..., str], dict[str, str]]


def _unet_rules(config) -> list[Rule]:
    # LDM numbers blocks flat: input_blocks.0 is conv_in, then each level holds layers_per_block
    # resnet(+attention) entries and one downsampler entry (none after the last level);
    # output_blocks hold layers_per_block + 1 entries per level, the last one with the upsampler,
    # which sits after the attention when the level has one.
    per = config.layers_per_block + 1
    up_at = [2 if "CrossAttn" in kind else 1 for kind in config.up_block_types]
    res = _UNET_RESNET
    return [
        ("down_blocks.#.resnets.#.", lambda b, j: f"input_blocks.{1 + b * per + j}.0.", res),
        ("down_blocks.#.attentions.#.", lambda b, j: f"input_blocks.{1 + b * per + j}.1.", {}),
        ("down_blocks.#.downsamplers.0.conv.", lambda b: f"input_blocks.{b * per + per}.0.op.", {}),
        ("mid_block.resnets.#.", lambda j: f"middle_block.{2 * j}.", res),
        ("mid_block.attentions.0.", lambda: "middle_block.1.", {}),
        ("up_blocks.#.resnets.#.", lambda b, j: f"output_blocks.{b * per + j}.0.", res),
        ("up_blocks.#.attentions.#.", lambda b, j: f"output_blocks.{b * per + j}.1.", {}),
        (
            "up_blocks.#.upsamplers.0.",
            lambda b: f"output_blocks.{b * per + per - 1}.{up_at[b]}.",
            {},
        ),
        *((f"{old}.", lambda new=new: f"{new}.", {}) for old, new in _UNET_TOP.items()),
    ]


def _vae_rules(config) -> list[Rule]:
    last = len(config.up_block_types) - 1  # LDM numbers decoder levels from the bottom up
    res = _VAE_RESNET
    rules: list[Rule] = [
        ("encoder.down_blocks.#.resnets.#.", lambda b, j: f"encoder.down.{b}.block.{j}.", res),
        ("encoder.down_blocks.#.downsamplers.0.", lambda b: f"encoder.down.{b}.downsample.", {}),
        ("decoder.up_blocks.#.resnets.#.", lambda b, j: f"decoder.up.{last - b}.block.{j}.", res),
        ("decoder.up_blocks.#.upsamplers.0.", lambda b: f"decoder.up.{last - b}.upsample.", {}),
        *((f"{name}.", lambda name=name: f"{name}.", {}) for name in _VAE_SAME_NAME),
    ]
    for part in ("encoder", "decoder"):
        rules += [
            (f"{part}.mid_block.resnets.#.", lambda j, p=part: f"{p}.mid.block_{j + 1}.", res),
            (f"{part}.mid_block.attentions.0.", lambda p=part: f"{p}.mid.attn_1.", _VAE_ATTENTION),
            (f"{part}.conv_norm_out.", lambda p=part: f"{p}.norm_out.", {}),
        ]
    return rules


def _rename(key: str, rules: list[Rule]) -> str:
    for prefix, ldm_prefix, leaves in rules:
        match = re.match(re.escape(prefix).replace("\\#", r"(\d+)"), key)
        if match:
            rest = key[match.end() :]
            for old, new in leaves.items():
                if rest.startswith(f"{old}."):
                    rest = new + rest[len(old) :]
                    break
            return ldm_prefix(*map(int, match.groups())) + rest
    raise KeyError(f"no LDM name for diffusers key {key!r}")


def ldm_state_dict(pipe) -> dict:
    """The UNet, VAE and CLIP text encoder of ``pipe`` under their original LDM names."""
    out = {}
    unet_rules, vae_rules = _unet_rules(pipe.unet.config), _vae_rules(pipe.vae.config)
    for key, tensor in pipe.unet.state_dict().items():
        out[UNET_PREFIX + _rename(key, unet_rules)] = tensor
    for key, tensor in pipe.vae.state_dict().items():
        name = _rename(key, vae_rules)
        if ".mid.attn_1." in name and tensor.ndim == 2:  # LDM's VAE attention is 1x1 convs
            tensor = tensor[:, :, None, None]
        out[VAE_PREFIX + name] = tensor
    for key, tensor in pipe.text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel (no ``text_model.``); checkpoints keep it.
        out[CLIP_PREFIX + key.removeprefix("text_model.")] = tensor
    expected = sum(len(getattr(pipe, m).state_dict()) for m in ("unet", "vae", "text_encoder"))
    assert len(out) == expected, "two diffusers tensors were given the same LDM name"
    return out


def write_ldm_checkpoint(pipe, path: str | Path) -> Path:
    """Save ``pipe`` as one ``.safetensors`` file in the SD 1.x single-file layout."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in ldm_state_dict(pipe).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return Path(path)
