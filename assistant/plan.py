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
    TRANSFORM = "transform"  # flip, rotate, crop, make it square / portrait: plain image operations
    RESET = "reset"  # "start over": nothing in focus, the next picture starts a new tree
    HISTORY = "history"  # "show me all the pictures", "what was the first thing I asked for?"
    COMBINE = "combine"  # "put the dragon on top of the castle": two pictures' subjects in one


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
    Intent.TRANSFORM,
    Intent.COMBINE,
}


class ChangeKind(StrEnum):
    """What an edit changes, so its prompt can describe the new scene (assistant/edit_compiler)."""

    SET_ATTRIBUTE = "set-attribute"  # "make the car blue": object=car, value=blue
    ADD = "add"  # "add a hat": value="a hat"
    REMOVE = "remove"  # "lose the boat": object=boat (goes to the negative prompt)
    REPLACE = "replace"  # "turn the cat into a dog": object=cat, value=a dog
    SETTING = "setting"  # "put it on a beach": value="on a beach"
    TIME_OF_DAY = "time-of-day"  # value: night, sunset, ...
    WEATHER = "weather"  # value: rain, snow, fog, storm, ...
    SEASON = "season"  # value: winter, autumn, ...
    STYLE = "style"  # value: watercolor, oil painting, photo, ...
    ADJUST = "adjust"  # "darker", "more colorful": value=the quality wanted
    FREE = "free"  # anything else, as said


class Change(BaseModel):
    """One structured change to a picture's scene."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ChangeKind
    object: str = Field("", max_length=80, description="the thing changed, as named")
    value: str = Field("", max_length=160, description="what it becomes, as said")


class Transform(StrEnum):
    """Plain image operations (no model): said plainly in the reply."""

    FLIP_HORIZONTAL = "flip-horizontal"
    FLIP_VERTICAL = "flip-vertical"
    ROTATE_LEFT = "rotate-left"  # 90 degrees counter-clockwise
    ROTATE_RIGHT = "rotate-right"  # 90 degrees clockwise
    ROTATE_180 = "rotate-180"
    SQUARE = "square"  # centre crop to 1:1
    PORTRAIT = "portrait"  # centre crop to 2:3
    LANDSCAPE = "landscape"  # centre crop to 3:2
    WIDE = "wide"  # centre crop to 16:9
    ZOOM_IN = "zoom-in"  # centre crop to half, resized back to the picture's size
    BIGGER = "bigger"  # twice the pixels per side (resampled)
    SMALLER = "smaller"  # half the pixels per side
    RESIZE = "resize"  # to Plan.size, stretched if the shape changes


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
    planner: str = Field("grammar", description="who decided the intent: grammar | router | llm")
    change: Change | None = Field(None, description="edit: what changes in the scene")
    more_changes: tuple[Change, ...] = Field(
        (), description="edit: the further changes of the same request, in order"
    )
    transforms: tuple[Transform, ...] = Field((), description="transform: in order")
    steps_back: int = Field(1, ge=1, le=50, description="undo: how many steps")
    source_ids: tuple[str, ...] = Field((), description="combine: the pictures combined")
    size: tuple[int, int] | None = Field(None, description="transform resize: width, height")
    note: str | None = Field(None, description="what could not be done as asked, said in the reply")

    @property
    def expects_answer(self) -> bool:
        """Whether the reply asks the person something (the microphone reopens for it)."""
        return self.intent == Intent.CLARIFY or self.question is not None
