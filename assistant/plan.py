"""What the assistant decided to do with one request: a validated Plan."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Intent(StrEnum):
    GENERATE = "generate"  # a new picture
    EDIT = "edit"  # change the current picture (img2img)
    AGAIN = "again"  # the same request with a new seed
    UNDO = "undo"
    REDO = "redo"
    DESCRIBE = "describe"  # "what prompt did you use?"
    CANCEL = "cancel"  # "never mind"
    HELP = "help"
    CLARIFY = "clarify"  # cannot act on it: ask back


# Intents that run the image engine.
IMAGE_INTENTS = {Intent.GENERATE, Intent.EDIT, Intent.AGAIN}


class Plan(BaseModel):
    """The outcome of understanding one request against the dialogue state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent: Intent
    request: str = Field(description="what the person said, as transcribed or typed")
    prompt: str = ""
    negative_prompt: str = ""
    operation: str | None = Field(None, description="generate | img2img")
    target_id: str | None = Field(None, description="the image an edit starts from")
    strength: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, description="a fixed seed, or None for the configured one")
    question: str | None = Field(None, description="what to ask back, for clarify")
    rewriter: str = Field("rules", description="who wrote the prompt: llm | rules | raw")
    rewrite_note: str | None = Field(None, description="why the LLM's prompt was not used")
