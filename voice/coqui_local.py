"""Build a tiny, randomly initialised Coqui VITS voice on disk.

No Coqui weights can be had offline, so tests (and anyone curious about the
local-path route) build one from a config with the real Coqui classes: the
checkpoint and ``config.json`` written here load through
``TTS(model_path=..., config_path=...)`` exactly like a trained voice would.
Its output is noise-like, but it is a real waveform from Coqui's real
synthesis path (text cleaner, tokenizer, VITS inference, HiFi-GAN decoder).
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "model.pth"  # a name ModelManager._find_files also recognises
CONFIG_NAME = "config.json"
SAMPLE_RATE_HZ = 22050
HOP_LENGTH_SAMPLES = 256  # must equal the product of UPSAMPLE_RATES
UPSAMPLE_RATES = (8, 8, 2, 2)  # 8 * 8 * 2 * 2 = 256 samples per spectrogram frame
FFT_SIZE_SAMPLES = 1024  # the linear spectrogram then has 1024 // 2 + 1 = 513 bins
HIDDEN_CHANNELS = 16
DECODER_CHANNELS = 64  # halved by each of the 4 upsampling stages: 4 channels reach the output
OUTPUT_GAIN = 10.0  # scales the random output layer so its noise is clearly audible


def build_tiny_vits(out_dir: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Write a small random VITS checkpoint and its config into ``out_dir``.

    The voice uses plain graphemes (``use_phonemes=False``) with the
    ``english_cleaners``, so no phonemizer is needed to speak.

    Parameters
    ----------
    out_dir:
        Folder to write into; created if missing.
    seed:
        Seed for the random weights, so the same seed gives the same voice.

    Returns
    -------
    tuple[Path, Path]
        ``(checkpoint_path, config_path)``, ready for
        ``TTS(model_path=checkpoint_path, config_path=config_path)``.
    """
    import torch
    from TTS.tts.configs.shared_configs import BaseAudioConfig
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits, VitsArgs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # 1. A tiny architecture: few channels, one layer where the real voice has many.
    model_args = VitsArgs(
        out_channels=FFT_SIZE_SAMPLES // 2 + 1,
        hidden_channels=HIDDEN_CHANNELS,
        hidden_channels_ffn_text_encoder=2 * HIDDEN_CHANNELS,
        num_heads_text_encoder=2,
        num_layers_text_encoder=1,
        num_layers_posterior_encoder=1,
        num_layers_flow=1,
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3, 5]],
        upsample_rates_decoder=list(UPSAMPLE_RATES),
        upsample_initial_channel_decoder=DECODER_CHANNELS,
        upsample_kernel_sizes_decoder=[2 * r for r in UPSAMPLE_RATES],
        periods_multi_period_discriminator=[2],
        use_sdp=False,
        init_discriminator=False,
    )
    audio = BaseAudioConfig(
        sample_rate=SAMPLE_RATE_HZ,
        fft_size=FFT_SIZE_SAMPLES,
        win_length=FFT_SIZE_SAMPLES,
        hop_length=HOP_LENGTH_SAMPLES,
    )
    config = VitsConfig(
        run_name="tiny-random-vits",
        model_args=model_args,
        audio=audio,
        use_phonemes=False,
        phonemizer=None,
        text_cleaner="english_cleaners",
        phoneme_language="en",  # names the text language; no phonemizer is used
        add_blank=True,
    )

    # 2. The real model class; its tokenizer fills in the default VITS characters.
    torch.manual_seed(seed)
    model = Vits(config)
    model.eval()
    _make_output_audible(model)

    # 3. Save in the layout Vits.load_checkpoint reads: {"model": state_dict, ...}.
    checkpoint_path = out / CHECKPOINT_NAME
    config_path = out / CONFIG_NAME
    torch.save({"model": model.state_dict(), "config": config.to_dict()}, checkpoint_path)
    model.config.save_json(str(config_path))
    logger.info("Built a tiny random VITS in %s", out)
    return checkpoint_path, config_path


def _make_output_audible(model) -> None:
    """Make the random decoder's last convolution DC-free and louder.

    Random weights after a leaky ReLU give a waveform that is mostly a constant
    offset with a faint ripple. Removing each filter's mean (so a constant input
    gives zero output) and scaling it by ``OUTPUT_GAIN`` turns that into audible,
    zero-mean noise. Only the initial weights change; synthesis is untouched.
    """
    import torch

    conv_post = model.waveform_decoder.conv_post
    with torch.no_grad():
        conv_post.weight -= conv_post.weight.mean(dim=2, keepdim=True)
        conv_post.weight *= OUTPUT_GAIN
