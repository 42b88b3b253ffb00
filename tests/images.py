"""Shared helpers for the image engine tests: tiny, fast requests."""

from __future__ import annotations

SIZE = 64  # pixels
STEPS = 2


def request(**overrides):
    """A tiny ImageRequest (64x64, 2 steps, seed 7) with any field overridden."""
    from pipelines.image_engine import ImageRequest

    values = {
        "prompt": "a photo of a cat",
        "seed": 7,
        "steps": STEPS,
        "width": SIZE,
        "height": SIZE,
    }
    return ImageRequest(**{**values, **overrides})
