"""Every PNG carries the parameters that made it, in two text chunks.

- ``assistant``: our JSON (the result's params, the parent node id, a format version).
- ``parameters``: the AUTOMATIC1111 text form, which many image viewers and tools read:

      a red fox in snow
      Negative prompt: blurry
      Steps: 4, Sampler: Euler a, CFG scale: 0.0, Seed: 123, Size: 512x512, Model: ...

Files are written atomically (a temp file in the same folder, then ``os.replace``),
so a crash never leaves a half-written image behind.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO

from common.files import atomic_write

logger = logging.getLogger(__name__)

METADATA_VERSION = 1  # bump when the JSON layout changes
JSON_KEY = "assistant"
A1111_KEY = "parameters"

# diffusers scheduler class -> the sampler name AUTOMATIC1111 shows
SAMPLER_NAMES = {
    "EulerAncestralDiscreteScheduler": "Euler a",
    "EulerDiscreteScheduler": "Euler",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "DPMSolverSinglestepScheduler": "DPM++ SDE",
    "DDIMScheduler": "DDIM",
    "PNDMScheduler": "PLMS",
    "LMSDiscreteScheduler": "LMS",
    "HeunDiscreteScheduler": "Heun",
    "LCMScheduler": "LCM",
    "UniPCMultistepScheduler": "UniPC",
}


def _format_number(value: Any) -> str:
    """Floats as A1111 writes them: 7.0, 0.6, 7.25."""
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


def a1111_text(params: dict) -> str:
    """Render ``params`` in the AUTOMATIC1111 "parameters" text form.

    Parameters
    ----------
    params: an ``ImageResult.params`` dict (prompt, negative_prompt, steps, guidance,
        seed, width, height, model, scheduler, strength).

    Returns
    -------
    The prompt, an optional "Negative prompt:" line, and one line of settings.
    """
    lines = [str(params.get("prompt", ""))]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    scheduler = params.get("scheduler") or ""
    settings = [
        ("Steps", params.get("steps")),
        ("Sampler", SAMPLER_NAMES.get(scheduler, scheduler) or None),
        ("CFG scale", params.get("guidance")),
        ("Seed", params.get("seed")),
        ("Size", f"{params['width']}x{params['height']}" if "width" in params else None),
        ("Model", params.get("model")),
        ("Denoising strength", params.get("strength")),
    ]
    lines.append(", ".join(f"{k}: {_format_number(v)}" for k, v in settings if v is not None))
    return "\n".join(lines)


def save_png(image, path: str | os.PathLike, params: dict, parent: str | None = None) -> Path:
    """Write ``image`` as a PNG carrying ``params``, atomically.

    Parameters
    ----------
    image: a PIL image.
    path: destination file; its folder must exist.
    params: the generation parameters (JSON-serialisable).
    parent: id of the image this one was derived from, if any.

    Returns
    -------
    The path written.
    """
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    record = {**params, "parent": parent, "version": METADATA_VERSION}
    info = PngInfo()
    info.add_text(JSON_KEY, json.dumps(record, ensure_ascii=False, default=str))
    # iTXt keeps non-Latin-1 prompts intact; A1111 readers accept either chunk type.
    info.add_itxt(A1111_KEY, a1111_text(params))
    atomic_write(path, lambda f: image.save(f, format="PNG", pnginfo=info))
    logger.debug("Saved %s", path)
    return path


def read_png_params(path: str | os.PathLike | BinaryIO) -> dict:
    """Read back the JSON parameters ``save_png`` stored.

    Parameters
    ----------
    path: a PNG file, or a binary file object (e.g. ``io.BytesIO`` of a download).

    Returns
    -------
    The params dict (with ``parent`` and ``version``), or ``{}`` when the file carries none.
    """
    from PIL import Image

    with Image.open(path) as im:
        im.load()  # text chunks after the image data are read only once the image is loaded
        text = im.info.get(JSON_KEY)
    return json.loads(text) if text else {}


def read_a1111_text(path: str | os.PathLike | BinaryIO) -> str | None:
    """Return the AUTOMATIC1111 ``parameters`` text of a PNG, or None."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return im.info.get(A1111_KEY)
