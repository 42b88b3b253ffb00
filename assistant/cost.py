"""What one picture request may cost: width x height x steps x images, in megapixel-steps.

The same budget bounds the HTTP image routes (``frontends/api_limits.py``) and every turn
(chat window, voice, ``once``, the API's turns): a session's settings can ask for 2048x2048 at
150 steps, and "four more like that" makes four, which on this project's 2-core CPU held the
engine for about 1.5 h. Above the budget (``api.cost_budget`` for the image device) the
request is refused with ``budget-exceeded`` and a message saying what would fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from assistant.errors import AssistantError

MEGA = 1e6  # pixels per megapixel
DEFAULT_MEGAPIXEL_STEPS = 27.0  # cpu: one 512x512 picture at 100 steps, or 4 at 25


def device_kind(device: str) -> str:
    """``"cuda:1"`` -> ``"cuda"``; the key of ``api.cost_budget``."""
    return str(device).split(":", 1)[0].lower()


@dataclass(frozen=True)
class CostBudget:
    """The most one request may cost, in megapixel-steps (``api.cost_budget``).

    Parameters
    ----------
    megapixel_steps: the budget.
    device: what it was chosen for (named in the refusal).
    """

    megapixel_steps: float
    device: str

    @staticmethod
    def cost(width: int, height: int, steps: int, images: int = 1) -> float:
        """width x height x steps x images / 1e6."""
        return width * height * steps * images / MEGA

    def check(self, width: int, height: int, steps: int, images: int = 1) -> float:
        """The request's cost, or ``budget-exceeded`` saying what would fit.

        Parameters
        ----------
        width, height: output size in pixels.
        steps: denoising steps (the model's default when the request names none).
        images: how many pictures (``n``, or a turn's "make four").

        Returns
        -------
        The cost in megapixel-steps.
        """
        cost = self.cost(width, height, steps, images)
        if cost <= self.megapixel_steps:
            return cost
        fit_steps = math.floor(self.megapixel_steps * MEGA / (width * height * images))
        hint = (
            f"at {width}x{height} and n={images}, at most {fit_steps} "
            f"step{'s' if fit_steps > 1 else ''} fit{'s' if fit_steps == 1 else ''}"
            if fit_steps >= 1
            else f"{width}x{height} with n={images} does not fit even at 1 step"
        )
        raise AssistantError(
            "budget-exceeded",
            f"This request would cost {cost:g} megapixel-steps (width x height x steps x n / "
            f"1e6); this server's limit on {self.device} is {self.megapixel_steps:g} "
            f"(api.cost_budget): {hint}. Ask for fewer steps, fewer images or a smaller size.",
        )


def budget_for(budgets: dict[str, float], device: str) -> CostBudget:
    """The budget of ``device`` from ``api.cost_budget`` (the smallest one for a device not
    listed there)."""
    kind = device_kind(device)
    fallback = min(budgets.values()) if budgets else DEFAULT_MEGAPIXEL_STEPS
    return CostBudget(budgets.get(kind, fallback), kind)
