"""Requests that change one described part of the picture: which part, and into what.

"replace the sky with a sunset", "add a moon in the top right corner", "make only the car
blue", "repaint the bottom half as a lake". The part is either a position (a mask needs no
model: ``pipelines/regions.py``) or something in the picture (found by the text segmenter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.regions import position_of


@dataclass(frozen=True)
class RegionRequest:
    region: str  # "sky", or a canonical position such as "top right corner"
    change: str  # what to paint there, as said ("a sunset", "blue car")
    is_position: bool


_POSITION_WORDS = r"(?:top|bottom|upper|lower|left|right|middle|centre|center)"
_REPLACE = re.compile(r"^(?:replace|swap) the (?P<region>.+?) (?:with|for) (?P<change>.+)$")
_ADD_AT = re.compile(
    r"^(?:add|put|draw|paint|place) (?P<change>.+?) (?:in|at|on|into|to) the "
    rf"(?P<region>{_POSITION_WORDS}[\w -]*)$"
)
_ONLY = re.compile(
    r"^(?:change|repaint|redraw|make|turn|paint|colou?r) (?:only|just) the (?P<tail>.+)$"
)
_REPAINT = re.compile(r"^(?:repaint|redraw|inpaint|fill|redo) the (?P<tail>.+)$")
_SEPARATOR = re.compile(r" (?:with|to|into|as|so it's|so it is|so that it's) ")


def parse_region_request(said: str) -> RegionRequest | None:
    """The region and the change in a normalised request, or None if it names no region."""
    if m := _REPLACE.match(said):
        return _request(m.group("region"), m.group("change"))
    if (m := _ADD_AT.match(said)) and position_of(m.group("region")):
        return _request(m.group("region"), m.group("change"))
    m = _ONLY.match(said) or _REPAINT.match(said)
    if m is None:
        return None
    tail = m.group("tail")
    if sep := _SEPARATOR.search(tail):  # "the sky with a sunset", "the car to blue"
        return _request(tail[: sep.start()], tail[sep.end() :])
    words = tail.split()
    for n in (3, 2, 1):  # "the top half darker": the longest position first
        if len(words) > n and position_of(" ".join(words[:n])):
            return _request(" ".join(words[:n]), " ".join(words[n:]))
    # "the sky red": the thing, then how it should look.
    return _request(words[0], " ".join([*words[1:], words[0]]) if len(words) > 1 else "")


def _request(region: str, change: str) -> RegionRequest | None:
    region, change = region.strip(" ,"), change.strip(" ,")
    if not region:
        return None
    position = position_of(region)
    return RegionRequest(position or region, change, position is not None)
