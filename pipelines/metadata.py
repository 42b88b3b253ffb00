"""Every PNG carries the parameters that made it, in two text chunks.

- ``assistant``: our JSON (the result's params, the parent node id, a format version).
- ``parameters``: the AUTOMATIC1111 text form, which many image viewers and tools read:

      a red fox in snow
      Negative prompt: blurry
      Steps: 4, Sampler: Euler a, CFG scale: 0.0, Seed: 123, Size: 512x512, Model: ...

Files are written atomically (a temp file in the same folder, then ``os.replace``),
so a crash never leaves a half-written image behind.

The JSON form (``METADATA_VERSION`` 1) is the result's params plus two keys::

    {"prompt": "a red fox in snow", "negative_prompt": "blurry", "seed": 123,
     "steps": 4, "guidance": 0.0, "strength": null, "width": 512, "height": 512,
     "model": "random:small", "operation": "generate",
     "scheduler": "EulerAncestralDiscreteScheduler", "sampler": "euler_a",
     "placeholder": false, "elapsed_s": 1.2,
     "prompt_chunks": 1, "prompt_weighting": false,        # pipelines.prompt_weighting
     "nsfw": false, "safety": "passed", "watermark": "SDV2",  # only when those are on
     ...operation-specific keys (mask_bbox, direction, factor, ...)...,
     "parent": "<node id or null>", "version": 1}

``load_settings`` reads it back, or, for images from other tools, parses the A1111 text
into the same key names (``source`` says which was used).
"""

from __future__ import annotations

import json
import logging
import os
import re
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

# our sampler names (pipelines.schedulers.SCHEDULERS) -> the names A1111 shows
SAMPLER_LABELS = {
    "euler": "Euler",
    "euler_a": "Euler a",
    "heun": "Heun",
    "dpm++_2m": "DPM++ 2M",
    "dpm++_2m_karras": "DPM++ 2M Karras",
    "dpm++_2m_sde_karras": "DPM++ 2M SDE Karras",
    "ddim": "DDIM",
    "lcm": "LCM",
    "unipc": "UniPC",
}
# One "Key: value" pair of the A1111 settings line; values may be quoted (and hold commas).
_RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_RE_SIZE = re.compile(r"^(\d+)\s*x\s*(\d+)$")
NEGATIVE_PREFIX = "Negative prompt:"


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
    sampler = SAMPLER_LABELS.get(params.get("sampler") or "")  # knows Karras, SDE, ...
    settings = [
        ("Steps", params.get("steps")),
        ("Sampler", sampler or SAMPLER_NAMES.get(scheduler, scheduler) or None),
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


def parse_a1111_text(text: str) -> dict[str, Any]:
    """Parse AUTOMATIC1111 "parameters" text into our parameter names.

    Parameters
    ----------
    text: prompt lines, optional "Negative prompt:" lines, and a last line of
        "Key: value" settings (Steps, Sampler, CFG scale, Seed, Size, Model, ...).

    Returns
    -------
    ``prompt``, ``negative_prompt`` and, when present, ``steps``, ``sampler`` (our name when
    known, e.g. "dpm++_2m_karras", else A1111's), ``sampler_label`` (A1111's), ``guidance``,
    ``seed``, ``width``, ``height``, ``model``, ``strength``; other settings go to ``extra``
    (a str -> str dict). Unreadable numbers are left out with a log line, never raised.
    """
    # 1. The last line holds the settings when it has at least three "Key: value" pairs.
    lines = text.strip().replace("\r\n", "\n").split("\n")
    settings: dict[str, str] = {}
    if lines and len(_RE_PARAM.findall(lines[-1])) >= 3:
        for key, value in _RE_PARAM.findall(lines.pop()):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = json.loads(value) if _is_json_string(value) else value[1:-1]
            settings[key.strip()] = value
    # 2. Prompt lines, then negative prompt lines.
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX) :].lstrip()
        (negative if in_negative else prompt).append(line)
    result: dict[str, Any] = {
        "prompt": "\n".join(prompt).strip(),
        "negative_prompt": "\n".join(negative).strip(),
    }
    # 3. Known settings under our names; the rest kept as text.
    converters = {
        "Steps": ("steps", int),
        "CFG scale": ("guidance", float),
        "Seed": ("seed", int),
        "Model": ("model", str),
        "Denoising strength": ("strength", float),
    }
    extra = {}
    for key, value in settings.items():
        if key in converters:
            name, convert = converters[key]
            try:
                result[name] = convert(value)
            except ValueError:
                logger.info("A1111 text: ignoring unreadable %s %r", key, value)
        elif key == "Size" and _RE_SIZE.match(value):
            width, height = _RE_SIZE.match(value).groups()
            result.update(width=int(width), height=int(height))
        elif key != "Sampler":
            extra[key] = value
    if "Sampler" in settings:
        result.update(_sampler_from_label(settings["Sampler"], settings.get("Schedule type")))
    if extra:
        result["extra"] = extra
    return result


def _is_json_string(value: str) -> bool:
    try:
        return isinstance(json.loads(value), str)
    except ValueError:
        return False


def _sampler_from_label(label: str, schedule: str | None) -> dict[str, str]:
    """A1111's sampler label (and newer UIs' separate "Schedule type") -> our sampler name."""
    full = label
    if schedule and schedule.lower() == "karras" and "karras" not in label.lower():
        full = f"{label} Karras"
    by_label = {v.lower(): k for k, v in SAMPLER_LABELS.items()}
    return {"sampler": by_label.get(full.lower(), label), "sampler_label": full}


def load_settings(path: str | os.PathLike | BinaryIO) -> dict[str, Any]:
    """Restore the settings that made an image, from our metadata or another tool's.

    Parameters
    ----------
    path: a PNG file or binary file object.

    Returns
    -------
    Our JSON params when present (``source`` "assistant"), else the parsed A1111
    ``parameters`` text (``source`` "a1111", see ``parse_a1111_text``), else
    ``{"source": None}``.
    """
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        ours, theirs = im.info.get(JSON_KEY), im.info.get(A1111_KEY)
    if ours:
        try:
            return {**json.loads(ours), "source": "assistant"}
        except ValueError:
            logger.warning("The %r chunk is not valid JSON; trying the A1111 text", JSON_KEY)
    if theirs:
        return {**parse_a1111_text(theirs), "source": "a1111"}
    return {"source": None}
