"""Condition maps for ControlNet, computed without a model.

``canny`` uses OpenCV's ``cv2.Canny`` when OpenCV is installed and a small numpy
implementation of the same algorithm otherwise (Sobel gradients, non-maximum
suppression, double threshold with hysteresis), so the feature works either way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

logger = logging.getLogger(__name__)

CANNY_LOW, CANNY_HIGH = 100, 200  # gradient thresholds (the ControlNet authors' defaults)
CONDITIONS = ("canny",)  # condition maps this module can compute from a plain image


def canny_map(
    image: Image.Image, low: int = CANNY_LOW, high: int = CANNY_HIGH, use_cv2: bool = True
) -> Image.Image:
    """White edges on black, as the canny ControlNet was trained on.

    Parameters
    ----------
    image: any PIL image.
    low, high: hysteresis thresholds on the gradient magnitude.
    use_cv2: False forces the numpy implementation.

    Returns
    -------
    An RGB image of the same size (edges 255, the rest 0).
    """
    import numpy as np
    from PIL import Image

    grey = np.asarray(image.convert("L"))
    edges = None
    if use_cv2:
        try:
            import cv2

            edges = cv2.Canny(grey, low, high)
        except ImportError:
            logger.debug("OpenCV is not installed; using the numpy canny")
    if edges is None:
        edges = _canny_numpy(grey, low, high)
    return Image.fromarray(np.stack([edges] * 3, axis=-1))


def _canny_numpy(grey: np.ndarray, low: float, high: float) -> np.ndarray:
    """Canny edges of a uint8 (h, w) array; returns uint8 0/255."""
    import numpy as np

    g = grey.astype(np.float32)
    # 1. Sobel gradients (3x3, as cv2.Canny uses by default) on an edge-padded image.
    p = np.pad(g, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    magnitude = np.abs(gx) + np.abs(gy)  # L1 norm, cv2's default
    # 2. Non-maximum suppression along the gradient direction, quantised to 4 directions.
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    m = np.pad(magnitude, 1)
    h, w = magnitude.shape

    def shifted(dy: int, dx: int) -> np.ndarray:
        return m[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    keep = np.zeros_like(magnitude, dtype=bool)
    for lo, hi, (dy, dx) in (
        (0, 22.5, (0, 1)),
        (157.5, 180.1, (0, 1)),
        (22.5, 67.5, (1, 1)),
        (67.5, 112.5, (1, 0)),
        (112.5, 157.5, (1, -1)),
    ):
        sector = (angle >= lo) & (angle < hi)
        peak = (magnitude >= shifted(dy, dx)) & (magnitude >= shifted(-dy, -dx))
        keep |= sector & peak
    thin = np.where(keep, magnitude, 0.0)
    # 3. Hysteresis: strong edges, plus weak ones connected to them (8-neighbourhood).
    strong = thin >= high
    weak = thin >= low
    edges = strong.copy()
    while True:
        grown = np.pad(edges, 1)
        neighbours = np.zeros_like(edges)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                neighbours |= grown[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        new = weak & neighbours & ~edges
        if not new.any():
            break
        edges |= new
    return edges.astype(np.uint8) * 255
