"""Masks for regions named by position: "the top half", "the bottom left corner", "the middle".

Positions need no model, so "add a moon in the top right corner" works offline; regions named
by what they show ("the sky") need the text segmenter (``pipelines/segment.py``).
"""

from __future__ import annotations

import re

from PIL import Image, ImageDraw

# Each position: the box it covers, as fractions (left, top, right, bottom) of the picture.
_BOXES: dict[str, tuple[float, float, float, float]] = {
    "top half": (0.0, 0.0, 1.0, 0.5),
    "bottom half": (0.0, 0.5, 1.0, 1.0),
    "left half": (0.0, 0.0, 0.5, 1.0),
    "right half": (0.5, 0.0, 1.0, 1.0),
    "top left corner": (0.0, 0.0, 0.5, 0.5),
    "top right corner": (0.5, 0.0, 1.0, 0.5),
    "bottom left corner": (0.0, 0.5, 0.5, 1.0),
    "bottom right corner": (0.5, 0.5, 1.0, 1.0),
    "top": (0.0, 0.0, 1.0, 0.4),
    "bottom": (0.0, 0.6, 1.0, 1.0),
    "left side": (0.0, 0.0, 0.4, 1.0),
    "right side": (0.6, 0.0, 1.0, 1.0),
    "middle": (0.25, 0.25, 0.75, 0.75),
}
# What people also say for them, word by word.
_WORDS = {"upper": "top", "lower": "bottom", "centre": "middle", "center": "middle"}


def _canonical(phrase: str) -> str:
    text = re.sub(r"[\s-]+", " ", phrase.lower()).strip(" .,!?")
    text = re.sub(r"^(?:the|a)\s+", "", text)
    text = " ".join(_WORDS.get(word, word) for word in text.split())
    # "the top part", "the left edge", "the middle area": the bare position.
    text = re.sub(
        r"^(top|bottom|left|right|middle) (?:part|edge|area|section|region|side)$", r"\1", text
    )
    if text in ("left", "right"):
        text += " side"
    if re.fullmatch(r"(?:top|bottom) (?:left|right)", text):
        text += " corner"
    return text


def position_of(phrase: str) -> str | None:
    """The canonical position a phrase names ("upper half" → "top half"), or None."""
    text = _canonical(phrase)
    return text if text in _BOXES else None


def position_mask(size: tuple[int, int], position: str) -> Image.Image:
    """A mask (``L``, 255 = repaint) of ``size`` covering the named position.

    Raises
    ------
    KeyError: ``position`` is not one of the known positions (see ``position_of``).
    """
    left, top, right, bottom = _BOXES[position_of(position) or position]
    width, height = size
    mask = Image.new("L", size, 0)
    box = (round(left * width), round(top * height), round(right * width), round(bottom * height))
    ImageDraw.Draw(mask).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=255)
    return mask


def known_positions() -> list[str]:
    return list(_BOXES)
