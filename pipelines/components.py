"""Stable Diffusion pipelines of the real diffusers classes with randomly initialised weights.

No UNet, VAE or CLIP text-encoder weights can be had offline (see MODELS.md), so
the offline and test profiles build the components from configs, the way
diffusers' own tests do. Four architectures:

- ``tiny``: a few thousand parameters per block, for tests (64x64 in well under a second).
- ``small``: the embedded offline default, a modest UNet that renders 512x512 in
  a second or two on two CPU cores. Output is noise: it exercises every code path.
- ``sd-turbo``: the published SD 2.1-base / SD-Turbo architecture (865M-parameter
  UNet, OpenCLIP ViT-H text tower with 23 layers used, 4-channel VAE).
- ``sd15``: the published SD 1.5 architecture (UNet, CLIP ViT-L/14 text tower, VAE).

The last two exist for honest speed and memory measurements; their output is noise too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

logger = logging.getLogger(__name__)

# SD's training noise schedule, shared by SD 1.x, SD 2.x and SD-Turbo.
SD_BETAS = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
}
SD_VAE_SCALING = 0.18215  # latent scale of the SD 1.x / 2.x VAE
CLIP_VOCAB_SIZE = 49408
CLIP_BOS_ID, CLIP_EOS_ID = 49406, 49407


@dataclass(frozen=True)
class ArchSpec:
    """Config values of one Stable Diffusion architecture; weights are drawn at random."""

    unet: dict[str, Any]  # UNet2DConditionModel config
    vae: dict[str, Any]  # AutoencoderKL config
    text: dict[str, Any]  # transformers CLIPTextConfig values
    scheduler: str  # diffusers scheduler class name
    scheduler_config: dict[str, Any] = field(default_factory=dict)
    default_steps: int = 4  # denoising steps when a request leaves them out
    default_guidance: float = 0.0  # classifier-free guidance scale when left out


def _sd_vae(block_out_channels: tuple[int, ...], layers_per_block: int, groups: int) -> dict:
    """A 4-block AutoencoderKL config: 8x downsampling and 4 latent channels, as SD has."""
    n = len(block_out_channels)
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * n,
        "up_block_types": ("UpDecoderBlock2D",) * n,
        "block_out_channels": block_out_channels,
        "layers_per_block": layers_per_block,
        "latent_channels": 4,
        "norm_num_groups": groups,
        "sample_size": 512,
        "scaling_factor": SD_VAE_SCALING,
    }


def _clip_text(hidden: int, layers: int, heads: int, intermediate: int, act: str) -> dict:
    """CLIPTextConfig values for a text tower that reads the real 49,408-token CLIP vocabulary."""
    return {
        "vocab_size": CLIP_VOCAB_SIZE,
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "max_position_embeddings": 77,
        "hidden_act": act,
        "layer_norm_eps": 1e-5,
        "projection_dim": hidden,
        "bos_token_id": CLIP_BOS_ID,
        "eos_token_id": CLIP_EOS_ID,
        "pad_token_id": CLIP_EOS_ID,
    }


_SD_DOWN = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
_SD_UP = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")
_SD_UNET = {
    "sample_size": 64,  # 512 px / 8
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": _SD_DOWN,
    "up_block_types": _SD_UP,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
}
# Few-step models want the whole noise range covered: "trailing" starts at t=999.
_FEW_STEP_EULER_A = {**SD_BETAS, "timestep_spacing": "trailing"}

ARCHS: dict[str, ArchSpec] = {
    "tiny": ArchSpec(
        unet={
            "sample_size": 8,
            "block_out_channels": (4, 8),
            "layers_per_block": 1,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
            "cross_attention_dim": 8,
            "attention_head_dim": 2,
            "norm_num_groups": 2,
        },
        vae=_sd_vae((4, 4, 4, 4), layers_per_block=1, groups=2),
        text=_clip_text(hidden=8, layers=2, heads=2, intermediate=16, act="gelu"),
        scheduler="EulerAncestralDiscreteScheduler",
        scheduler_config=_FEW_STEP_EULER_A,
        default_steps=2,
    ),
    "small": ArchSpec(
        # No attention at the 64x64 latent level (as SDXL does): that is where CPU time goes.
        # Measured on 2 CPU cores at 512x512: UNet ~0.2-0.3 s per step, VAE decode ~0.25 s.
        unet={
            "sample_size": 64,
            "block_out_channels": (32, 64, 128, 128),
            "layers_per_block": 2,
            "down_block_types": (
                "DownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "DownBlock2D",
            ),
            "up_block_types": (
                "UpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
                "UpBlock2D",
            ),
            "cross_attention_dim": 256,
            "attention_head_dim": 8,
            "norm_num_groups": 32,
        },
        vae=_sd_vae((8, 16, 32, 32), layers_per_block=1, groups=8),
        text=_clip_text(hidden=256, layers=4, heads=4, intermediate=1024, act="gelu"),
        scheduler="EulerAncestralDiscreteScheduler",
        scheduler_config=_FEW_STEP_EULER_A,
        default_steps=2,
    ),
    "sd-turbo": ArchSpec(
        unet={
            **_SD_UNET,
            "cross_attention_dim": 1024,
            "attention_head_dim": (5, 10, 20, 20),
            "use_linear_projection": True,
        },
        vae=_sd_vae((128, 256, 512, 512), layers_per_block=2, groups=32),
        # OpenCLIP ViT-H/14 text tower; SD 2.x reads the penultimate layer, so 23 of 24 are kept.
        text=_clip_text(hidden=1024, layers=23, heads=16, intermediate=4096, act="gelu"),
        scheduler="EulerDiscreteScheduler",
        scheduler_config={**SD_BETAS, "timestep_spacing": "trailing"},
        default_steps=1,
    ),
    "sd15": ArchSpec(
        unet={**_SD_UNET, "cross_attention_dim": 768, "attention_head_dim": 8},
        vae=_sd_vae((128, 256, 512, 512), layers_per_block=2, groups=32),
        # CLIP ViT-L/14 text tower.
        text=_clip_text(hidden=768, layers=12, heads=12, intermediate=3072, act="quick_gelu"),
        scheduler="EulerAncestralDiscreteScheduler",
        scheduler_config={**SD_BETAS, "timestep_spacing": "leading"},
        default_steps=25,
        default_guidance=7.0,
    ),
}


def get_arch(arch: str) -> ArchSpec:
    """Return the spec of a named architecture, or raise ``ImageError("input-invalid")``."""
    from pipelines.errors import ImageError

    if arch not in ARCHS:
        raise ImageError(
            "input-invalid",
            f"Unknown random architecture {arch!r}; choose one of: {', '.join(ARCHS)}.",
        )
    return ARCHS[arch]


def build_scheduler(spec: ArchSpec):
    """Instantiate the diffusers scheduler named by ``spec``."""
    import diffusers

    return getattr(diffusers, spec.scheduler).from_config(spec.scheduler_config)


def build_random_pipeline(
    arch: str, tokenizer: CLIPTokenizer, seed: int = 0
) -> StableDiffusionPipeline:
    """Build a text-to-image ``StableDiffusionPipeline`` with random weights.

    Parameters
    ----------
    arch: ``"tiny"``, ``"small"``, ``"sd-turbo"`` or ``"sd15"`` (see ``ARCHS``).
    tokenizer: the CLIP tokenizer (``pipelines.clip_tokenizer.build_clip_tokenizer``).
    seed: seeds the weight initialisation, so a given arch and seed always give the same model.

    Returns
    -------
    A float32 CPU pipeline without safety checker or feature extractor.
    """
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    spec = get_arch(arch)
    # 1. Draw every weight from one seeded stream (restoring the global RNG afterwards).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**spec.unet)
        vae = AutoencoderKL(**spec.vae)
        text_encoder = CLIPTextModel(CLIPTextConfig(**spec.text))
    # 2. Assemble the pipeline around the shared tokenizer and the arch's scheduler.
    pipe = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=build_scheduler(spec),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    n_params = sum(p.numel() for m in (unet, vae, text_encoder) for p in m.parameters())
    logger.info("Built random %s pipeline: %.1fM parameters", arch, n_params / 1e6)
    return pipe
