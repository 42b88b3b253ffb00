"""Pictures of a run in progress, shown after each denoising step.

Two sources, cheapest that is there:

- the tiny decoder (TAESD, ``image.tiny_vae``) when it is the pipeline's VAE: a real decode of
  the current latents, what fast CPU front ends (fastsdcpu, A1111's "TAESD" live preview) show;
- otherwise a fixed 4x3 projection of the latent channels to RGB (the community "cheap
  approximation"): composition only, no model call at all.

The last step's preview always uses the projection: the finished picture follows at once, and
a second decode of the same latents would only add time to a 1-step image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from PIL import Image

PREVIEW_MAX_SIDE = 512  # pixels; previews are upsampled from the latent grid up to this
# Fixed 4x3 projection from SD 1.x/2.x latent channels to RGB: good enough to see composition
# emerge, costs no VAE call.
LATENT_RGB_FACTORS = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)


def latents_to_preview(latents: torch.Tensor, max_side: int = PREVIEW_MAX_SIDE) -> Image.Image:
    """Approximate RGB of the first latent in a batch, without the VAE.

    Parameters
    ----------
    latents: (batch, 4, h, w) SD latents.
    max_side: the preview is upsampled x8 (the VAE factor) but no larger than this.

    Returns
    -------
    A small RGB PIL image.
    """
    import torch
    from PIL import Image

    latent = latents[0].detach().to("cpu", torch.float32)
    factors = torch.tensor(LATENT_RGB_FACTORS, dtype=torch.float32)
    rgb = torch.einsum("chw,cr->hwr", latent[: factors.shape[0]], factors)
    pixels = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    image = Image.fromarray(pixels)  # (h, w, 3) uint8 -> RGB
    h, w = pixels.shape[:2]
    scale = max(1, min(8, max_side // max(h, w)))
    return image.resize((w * scale, h * scale), Image.Resampling.BILINEAR)


def is_tiny_decoder(vae) -> bool:
    """True for a TAESD (``diffusers.AutoencoderTiny``)."""
    if vae is None:
        return False
    from diffusers import AutoencoderTiny

    return isinstance(vae, AutoencoderTiny)


def tiny_decoder_preview(vae, latents: torch.Tensor, max_side: int = PREVIEW_MAX_SIDE):
    """Decode the first latent of a batch with a TAESD; the picture is at most ``max_side``.

    Parameters
    ----------
    vae: an ``AutoencoderTiny`` (the pipeline's own, on its device).
    latents: (batch, 4, h, w) latents as the UNet sees them.

    Returns
    -------
    An RGB PIL image.
    """
    import torch
    from PIL import Image

    with torch.no_grad():
        latent = latents[:1].to(vae.device, vae.dtype) / vae.config.scaling_factor
        decoded = vae.decode(latent).sample[0]  # (3, H, W) in [-1, 1]
    pixels = ((decoded.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    image = Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy())
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return image


def step_preview(pipe, latents: torch.Tensor, step: int, total: int) -> Image.Image:
    """The preview after ``step`` (1-based) of ``total``: TAESD when loaded, else the projection."""
    vae = getattr(pipe, "vae", None)
    if step < total and is_tiny_decoder(vae):
        return tiny_decoder_preview(vae, latents)
    return latents_to_preview(latents)
