"""What the assistant decided to do with one request: a validated Plan."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Intent(StrEnum):
    GENERATE = "generate"  # a new picture
    EDIT = "edit"  # change the current picture (img2img)
    AGAIN = "again"  # the same request with a new seed
    VARIATIONS = "variations"  # "three more like that": several new seeds
    SAME_SEED = "same-seed"  # "same seed but with a red roof": a new prompt, the seed kept
    STYLE = "style"  # "make it watercolor": the current picture in a style preset
    INPAINT = "inpaint"  # repaint the brushed region of the current picture
    OUTPAINT = "outpaint"  # "extend it to the left": a bigger canvas, the picture kept
    UPSCALE = "upscale"  # "bigger", "upscale": more pixels
    SELECT = "select"  # "go back to the first one", "the blue one"
    UNDO = "undo"
    REDO = "redo"
    SAVE = "save"  # export the session as a folder
    DESCRIBE = "describe"  # "what prompt did you use?"
    CANCEL = "cancel"  # "never mind"
    HELP = "help"
    CHITCHAT = "chitchat"  # greetings, thanks, and anything that tries to instruct the assistant
    CLARIFY = "clarify"  # cannot act on it: ask back


# Intents that run the image engine.
IMAGE_INTENTS = {
    Intent.GENERATE,
    Intent.EDIT,
    Intent.AGAIN,
    Intent.VARIATIONS,
    Intent.SAME_SEED,
    Intent.INPAINT,
    Intent.OUTPAINT,
    Intent.UPSCALE,
    Intent.STYLE,
}


class Plan(BaseModel):
    """The outcome of understanding one request against the dialogue state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent: Intent
    request: str = Field(description="what the person said, as transcribed or typed")
    prompt: str = ""
    negative_prompt: str = ""
    operation: str | None = Field(
        None, description="generate | img2img | depth | controlnet | inpaint | outpaint | upscale"
    )
    target_id: str | None = Field(None, description="the image an edit starts from")
    strength: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, description="a fixed seed, or None for the configured one")
    count: int = Field(1, ge=1, le=4, description="how many pictures to make")
    direction: str | None = Field(None, description="outpaint: left|right|up|down|all")
    pixels: int | None = Field(None, ge=8, le=1024, description="outpaint: how far to extend")
    factor: int | None = Field(None, ge=2, le=4, description="upscale: how many times bigger")
    region: str | None = Field(
        None, description="inpaint: the part to repaint, a position or what it shows"
    )
    style: str | None = Field(None, description="the style preset applied, if any")
    question: str | None = Field(None, description="what to ask back, for clarify")
    rewriter: str = Field("rules", description="who wrote the prompt: llm | rules | raw")
    rewrite_note: str | None = Field(None, description="why the LLM's prompt was not used")
    planner: str = Field("grammar", description="who decided the intent: grammar | llm")
