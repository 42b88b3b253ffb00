"""Every kind of image operation, as one typed name.

The values are the words already written into saved sessions, PNG metadata
(``params["operation"]``) and plans, so they never change; ``Operation`` is a ``StrEnum``, so
``Operation.GENERATE == "generate"`` and it serialises as the plain string.
"""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """What made (or is to make) a picture."""

    GENERATE = "generate"  # text to image
    GENERATE_BATCH = "generate_batch"  # several candidates of one prompt, one seed each
    IMG2IMG = "img2img"  # redraw a picture on a prompt at a strength
    DEPTH = "depth"  # redraw keeping the depth layout (depth2img)
    CONTROLNET = "controlnet"  # follow a condition map (edges, pose, ...) of a picture
    INPAINT = "inpaint"  # repaint the masked part
    OUTPAINT = "outpaint"  # extend the canvas and paint the new area
    UPSCALE = "upscale"  # enlarge (diffusion upscaler or Lanczos)
    VARIATION = "variation"  # another take at a named strength
    INSTRUCT_EDIT = "instruct_edit"  # an instruction ("make it snowy"), InstructPix2Pix
    UPLOAD = "upload"  # a picture the person brought; no model ran
    TRANSFORM = "transform"  # flip, rotate or crop; no model runs

    @property
    def runs_a_model(self) -> bool:
        """False for operations that only move pixels (upload, transform)."""
        return self not in (Operation.UPLOAD, Operation.TRANSFORM)


# What ``check_request`` accepts: the operations that run a diffusion model on a request.
MODEL_OPERATIONS = tuple(op for op in Operation if op.runs_a_model)


def parse_operation(value: str | Operation) -> Operation:
    """``value`` as an ``Operation``; raises ``ValueError`` listing the names for an unknown one."""
    try:
        return Operation(value)
    except ValueError:
        names = ", ".join(op.value for op in Operation)
        raise ValueError(f"Unknown operation {value!r}; one of {names}.") from None
