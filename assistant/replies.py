"""Short, spoken-friendly replies: say what was done, offer the next step."""

from __future__ import annotations

from assistant.errors import ERROR_CODES
from assistant.plan import Intent, Plan
from assistant.rewrite import split_negatives, subject_of
from assistant.state import ImageNode

HELP_TEXT = (
    "Tell me what to draw, like: draw a lighthouse on a cliff at night. Then change it: "
    "make it darker. Say undo to go back, again for a new version, or ask what prompt I used."
)

PLACEHOLDER_NOTE = (
    "This picture is a placeholder, because no real Stable Diffusion model is set up. "
    "Set image.model to a model folder or a hub id for real pictures."
)


def _short(text: str, limit: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def image_reply(plan: Plan, node: ImageNode, first_placeholder: bool) -> str:
    """What to say once an image is ready."""
    if plan.intent == Intent.EDIT:
        text = "Done, I've changed it. Want another change, or undo?"
    elif plan.intent == Intent.AGAIN:
        text = "Here's another version. Like this one better?"
    elif plan.intent == Intent.VARIATIONS:
        text = f"Here are {plan.count} more versions. Say the first one, or the last one, to pick."
    elif plan.intent == Intent.STYLE:
        text = f"Here it is as {plan.style}. Another style, or undo?"
    elif plan.intent == Intent.INPAINT:
        text = "I repainted the area you marked. Keep it, or undo?"
    elif plan.intent == Intent.OUTPAINT:
        where = "on every side" if plan.direction == "all" else f"to the {plan.direction}"
        if plan.direction in ("up", "down"):
            where = f"{plan.direction}wards"
        text = f"I extended it {where}, now {node.width} by {node.height}. More?"
    elif plan.intent == Intent.UPSCALE:
        text = f"Here it is at {node.width} by {node.height} pixels."
    elif plan.intent == Intent.SAME_SEED:
        text = f"Same seed, new prompt: {_short(plan.prompt, 60)}. Better?"
    else:
        wanted, _ = split_negatives(plan.request)
        text = f"Here's {_short(subject_of(wanted))}. Want me to change anything?"
    if node.placeholder and first_placeholder:
        text += " " + PLACEHOLDER_NOTE
    return text


def command_reply(plan: Plan, current: ImageNode | None) -> str:
    """What to say for a request that did not make a new image."""
    match plan.intent:
        case Intent.UNDO:
            return (
                "Back to the previous picture."
                if current
                else "Back to the start, no picture in view. What should I draw?"
            )
        case Intent.REDO:
            return "Forward again."
        case Intent.CANCEL:
            return "Okay, never mind."
        case Intent.SELECT:
            return (
                f"Back to {current.id}: {_short(subject_of(current.request), 60)}."
                if current
                else "Okay."
            )
        case Intent.CHITCHAT:
            return chitchat_reply(plan.request)
        case Intent.HELP:
            return HELP_TEXT
        case Intent.DESCRIBE:
            if current is None:
                return "I haven't made a picture yet."
            return (
                f"I used the prompt: {current.prompt}. Seed {current.seed}, "
                f"{current.steps} steps, guidance {current.guidance:g}."
            )
        case Intent.CLARIFY:
            return plan.question or "Could you say that another way?"
    return "Okay."


def chitchat_reply(said: str) -> str:
    low = said.lower()
    if any(w in low for w in ("ignore", "disregard", "pretend", "act as", "you are now")):
        return "I can only draw and change pictures. What should I draw?"
    if any(w in low for w in ("thank", "great", "cool", "nice", "awesome", "perfect", "love")):
        return "Glad you like it! Want to change anything else?"
    if "who" in low or "what are you" in low:
        return "I'm a drawing assistant. Tell me what to draw, and I'll make it."
    return "Hi! Tell me what to draw, like a lighthouse on a cliff at night."


def saved_reply(folder: str, count: int) -> str:
    return f"Saved {count} picture{'s' if count != 1 else ''} with their settings to {folder}."


def error_reply(code: str, message: str) -> str:
    """The user-facing sentence for a failed turn: what went wrong and what to do."""
    if code == "asr-no-speech":
        return "I didn't hear anything. Could you say that again, a little closer?"
    return message or ERROR_CODES.get(code, "Something went wrong.")
