"""Samplers by the names people use ("euler_a", "dpm++_2m_karras") mapped to diffusers schedulers.

Every scheduler is built with ``from_config(pipe.scheduler.config, **overrides)``, so it
keeps the model's noise schedule (betas, prediction type, timestep spacing) and only the
sampling algorithm changes.
"""

from __future__ import annotations

import logging
from typing import Any

from pipelines.errors import ImageError

logger = logging.getLogger(__name__)

# name -> (diffusers class, config overrides)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm++_2m": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False}),
    "dpm++_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "dpm++_2m_sde_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
    ),
    "ddim": ("DDIMScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}


def scheduler_name_of(scheduler) -> str | None:
    """The table name that matches a scheduler instance, or None for one outside the table."""
    cls = type(scheduler).__name__
    karras = bool(getattr(scheduler.config, "use_karras_sigmas", False))
    sde = getattr(scheduler.config, "algorithm_type", "") == "sde-dpmsolver++"
    for name, (class_name, overrides) in SCHEDULERS.items():
        if class_name != cls:
            continue
        if cls == "DPMSolverMultistepScheduler" and (
            overrides.get("use_karras_sigmas", False) != karras
            or (overrides.get("algorithm_type") == "sde-dpmsolver++") != sde
        ):
            continue
        return name
    return None


def make_scheduler(name: str, config) -> Any:
    """Build the scheduler called ``name`` on the noise schedule of ``config``.

    Parameters
    ----------
    name: a key of ``SCHEDULERS`` (case and spaces forgiven: "DPM++ 2M Karras").
    config: the current scheduler's ``config`` (a FrozenDict).

    Returns
    -------
    A new scheduler instance.

    Raises
    ------
    ImageError("input-invalid") listing the known names.
    """
    import diffusers

    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    key = key.replace("dpmpp", "dpm++")
    if key not in SCHEDULERS:
        raise ImageError(
            "input-invalid",
            f"Unknown `scheduler` {name!r}; choose one of: {', '.join(SCHEDULERS)}.",
        )
    class_name, overrides = SCHEDULERS[key]
    base = dict(config)
    # Settings that only some schedulers have would leak across; keep the noise schedule.
    for option in ("use_karras_sigmas", "algorithm_type"):
        base.pop(option, None)
    scheduler = getattr(diffusers, class_name).from_config(base, **overrides)
    logger.info("Scheduler set to %s (%s %s)", key, class_name, overrides or "")
    return scheduler
