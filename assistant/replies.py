"""Short, spoken-friendly replies: say what was done, offer the next step.

Every sentence is English in the code and goes through ``t(lang, ...)``, so the reply follows
the language the person used (catalogs in ``assistant/locales``).
"""

from __future__ import annotations

import re
from typing import Any

from assistant.edit_compiler import SEASONS, TIME_OF_DAY, WEATHER
from assistant.errors import ERROR_CODES
from assistant.i18n import N_, SOURCE_LANGUAGE, has_translation, t
from assistant.language import subject_in
from assistant.plan import Intent, Plan
from assistant.rewrite import split_negatives, subject_of
from assistant.state import ImageNode

HELP_TEXT = N_(
    "Tell me what to draw, like: draw a lighthouse on a cliff at night. Then change it: "
    "make it darker. Say undo to go back, again for a new version, or ask what prompt I used."
)

PLACEHOLDER_NOTE = N_(
    "This picture is a placeholder, because no real Stable Diffusion model is set up. "
    "Set image.model to a model folder or a hub id for real pictures."
)

_OUTPAINT_WHERE = {
    "all": N_("on every side"),
    "left": N_("to the left"),
    "right": N_("to the right"),
    "up": N_("upwards"),
    "down": N_("downwards"),
}


def _short(text: str, limit: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def image_reply(
    plan: Plan,
    node: ImageNode,
    first_placeholder: bool,
    lang: str = SOURCE_LANGUAGE,
    said: str | None = None,
) -> str:
    """What to say once an image is ready.

    ``said`` is the request as the person typed or spoke it: replies in another language name
    the picture in their words, not in the English of the prompt.
    """
    if plan.intent == Intent.EDIT and plan.operation in ("depth", "controlnet"):
        if node.operation in ("depth", "controlnet"):
            text = t(
                lang, "Done, I kept its shapes and changed the rest. Want another change, or undo?"
            )
        else:  # the engine fell back to img2img: say so rather than promise the shapes held
            text = t(
                lang,
                "Done, I've changed it, but the shapes may have moved: no depth model is set up "
                "(image.depth_model). Want another change, or undo?",
            )
    elif plan.intent == Intent.EDIT and plan.change is not None and lang == SOURCE_LANGUAGE:
        text = edit_done(plan.change, plan.more_changes)  # names the changes in English words
    elif plan.intent == Intent.EDIT:
        text = t(lang, "Done, I've changed it. Want another change, or undo?")
    elif plan.intent == Intent.TRANSFORM:
        text = (
            _transforms_said(plan.transforms, lang)
            + " "
            + t(
                lang,
                "It's now {width} by {height}. Keep it, or undo?",
                width=node.width,
                height=node.height,
            )
        )
    elif plan.intent == Intent.COMBINE:
        text = t(
            lang,
            "I redrew {target} with the other picture's subject added, from one combined prompt: "
            "it is drawn anew, not pasted in, so it may look a little different. Keep it, or "
            "undo?",
            target=_short(node.prompt.split(",", 1)[0], 40),
        )
    elif plan.intent == Intent.AGAIN:
        text = t(lang, "Here's another version. Like this one better?")
    elif plan.intent == Intent.VARIATIONS:
        text = t(
            lang,
            "Here are {count} more versions. Say the first one, or the last one, to pick.",
            count=plan.count,
        )
    elif plan.intent == Intent.STYLE:
        text = t(lang, "Here it is as {style}. Another style, or undo?", style=plan.style)
    elif plan.intent == Intent.INPAINT and plan.region and lang == SOURCE_LANGUAGE:
        text = t(lang, "I repainted the {region}. Keep it, or undo?", region=plan.region)
    elif plan.intent == Intent.INPAINT and plan.region:  # the region's name is English
        text = t(lang, "I repainted that part. Keep it, or undo?")
    elif plan.intent == Intent.INPAINT:
        text = t(lang, "I repainted the area you marked. Keep it, or undo?")
    elif plan.intent == Intent.OUTPAINT:
        where = t(lang, _OUTPAINT_WHERE.get(plan.direction or "all", _OUTPAINT_WHERE["all"]))
        text = t(
            lang,
            "I extended it {where}, now {width} by {height}. More?",
            where=where,
            width=node.width,
            height=node.height,
        )
    elif plan.intent == Intent.UPSCALE and not node.model:  # a plain resampler: no model
        text = t(
            lang,
            "Here it is at {width} by {height} pixels, resampled: no upscaler model is set up "
            "(image.upscaler_model), so there is no new detail.",
            width=node.width,
            height=node.height,
        )
    elif plan.intent == Intent.UPSCALE:
        text = t(
            lang, "Here it is at {width} by {height} pixels.", width=node.width, height=node.height
        )
    elif plan.intent == Intent.SAME_SEED:
        text = t(lang, "Same seed, new prompt: {prompt}. Better?", prompt=_short(plan.prompt, 60))
    else:
        if lang != SOURCE_LANGUAGE and said:
            subject = _short(subject_in(said, lang))
        else:
            subject = _short(subject_of(split_negatives(plan.request)[0]))
        text = t(lang, "Here's {subject}. Want me to change anything?", subject=subject)
    if plan.note and lang == SOURCE_LANGUAGE:  # what could not be done as asked
        text = f"{plan.note[0].upper()}{plan.note[1:]}. {text}"
    if node.placeholder and first_placeholder:
        text += " " + t(lang, PLACEHOLDER_NOTE)
    return text


_TRANSFORMS_SAID = {
    "flip-horizontal": N_("I flipped it left to right."),
    "flip-vertical": N_("I flipped it upside down."),
    "rotate-left": N_("I turned it a quarter turn to the left."),
    "rotate-right": N_("I turned it a quarter turn to the right."),
    "rotate-180": N_("I turned it upside down."),
    "square": N_("I cropped it square."),
    "portrait": N_("I cropped it as a portrait."),
    "landscape": N_("I cropped it as a landscape."),
    "wide": N_("I cropped it wide."),
    "zoom-in": N_("I zoomed in on the middle."),
    "bigger": N_("I made it twice as big, resampled, so there is no new detail."),
    "smaller": N_("I made it half the size."),
}


def _transforms_said(transforms: tuple, lang: str) -> str:
    return " ".join(t(lang, _TRANSFORMS_SAID[str(x)]) for x in transforms)


def edit_done(change: Any, more: tuple[Any, ...] = ()) -> str:
    """An English reply that names what changed ("I took out the boat."), every change of a
    request that asked for several ("I made it spring and took out the snow.")."""
    if not more:
        return f"{_one_change_done(change)}. Want another change, or undo?"
    done = [_changed(c) for c in (change, *more)]
    return f"I {', '.join(done[:-1])} and {done[-1]}. Want another change, or undo?"


def _changed(change: Any) -> str:
    """What one change did, as a verb phrase ("made the car blue", "made it at night")."""
    done = _one_change_done(change)
    if done.startswith("I "):
        return done[2:]
    return "made it " + done.removeprefix("Here it is ").removeprefix("as ")


def _one_change_done(change: Any) -> str:
    kind, obj, value = str(change.kind), change.object, change.value
    match kind:
        case "remove":
            done = f"I took out the {obj} and told the model to leave it out"
        case "set-attribute":
            done = f"I made {'the ' + obj if obj else 'it'} {value}"
        case "replace":
            done = f"I turned the {obj} into {value}"
        case "add":
            done = f"I added {value.removeprefix('with ')}"
        case "setting":
            done = f"I moved it {value}"
        case "time-of-day" | "weather" | "season":
            table = {"time-of-day": TIME_OF_DAY, "weather": WEATHER, "season": SEASONS}[kind]
            done = f"Here it is {table.get(value, value).split(',')[0]}"
        case "style":
            done = f"Here it is as {value}"
        case "adjust":
            done = f"I made {'the ' + obj if obj else 'it'} {value.removeprefix('more ')}"
        case _:
            done = f"I changed it: {value}"
    return done


def _made_by(node: ImageNode) -> str:
    """A new picture by its subject, a changed one by the change asked for."""
    if node.parent_id is None:
        return subject_of(node.request) or node.prompt
    return node.request.strip().rstrip(".!?") or node.prompt


def history_reply(plan: Plan, state: Any, lang: str = SOURCE_LANGUAGE) -> str:
    """Answers about the conversation: the pictures so far, what was asked first or last."""
    said = plan.request.lower()
    requests = [x.user for x in state.history if x.user]
    if re.search(r"\b(?:first|start|originally|begin)", said) and requests:
        return t(lang, "You first asked for: {request}.", request=_short(requests[0]))
    if re.search(r"\b(?:last|before|previous|just)\b", said) and requests:
        return t(lang, "Before this you asked: {request}.", request=_short(requests[-1]))
    nodes = list(state.nodes.values())
    if not nodes:
        return t(lang, "We haven't made any pictures yet. What should I draw?")
    # Each picture by what made it ("n2, make it sunnier"): the prompts of edits look alike.
    shown = [f"{n.id}, {_short(_made_by(n), 50)}" for n in nodes[-6:]]
    current = state.current.id if state.current else None
    text = t(lang, "We have {count} pictures: {list}.", count=len(nodes), list="; ".join(shown))
    if current:
        text += " " + t(lang, "{node} is in view. Say its number to go back to one.", node=current)
    return text


def command_reply(plan: Plan, current: ImageNode | None, lang: str = SOURCE_LANGUAGE) -> str:
    """What to say for a request that did not make a new image."""
    match plan.intent:
        case Intent.UNDO if plan.steps_back > 1 and current:
            return t(
                lang,
                "I went back {steps} steps, to {node}.",
                steps=plan.steps_back,
                node=current.id,
            )
        case Intent.UNDO:
            return (
                t(lang, "Back to the previous picture.")
                if current
                else t(lang, "Back to the start, no picture in view. What should I draw?")
            )
        case Intent.REDO:
            return t(lang, "Forward again.")
        case Intent.RESET:
            return t(
                lang,
                "Okay, a fresh start. The earlier pictures are still in the history. What should "
                "I draw?",
            )
        case Intent.CANCEL:
            return t(lang, "Okay, never mind.")
        case Intent.SELECT:
            if current is None:
                return t(lang, "Okay.")
            # An edit's request ("make the book red") does not say what the picture shows.
            shows = current.prompt.split(",")[0] if current.parent_id else None
            return t(
                lang,
                "Back to {node}: {subject}.",
                node=current.id,
                subject=_short(shows or subject_of(current.request), 60),
            )
        case Intent.CHITCHAT:
            return chitchat_reply(plan.request, lang)
        case Intent.HELP:
            return t(lang, HELP_TEXT)
        case Intent.DESCRIBE:
            if current is None:
                return t(lang, "I haven't made a picture yet.")
            return t(
                lang,
                "I used the prompt: {prompt}. Seed {seed}, {steps} steps, guidance {guidance}.",
                prompt=current.prompt,
                seed=current.seed,
                steps=current.steps,
                guidance=f"{current.guidance:g}",
            )
        case Intent.CLARIFY:
            return t(lang, plan.question or N_("Could you say that another way?"))
    return t(lang, "Okay.")


def chitchat_reply(said: str, lang: str = SOURCE_LANGUAGE) -> str:
    low = said.lower()
    if any(w in low for w in ("ignore", "disregard", "pretend", "act as", "you are now")):
        return t(lang, "I can only draw and change pictures. What should I draw?")
    if re.search(r"\b(?:bye|goodbye|see you|good ?night|that's all|i'm done|ciao)\b", low):
        return t(lang, "Bye! The pictures stay in this session: come back to it any time.")
    if any(w in low for w in ("thank", "great", "cool", "nice", "awesome", "perfect", "love")):
        return t(lang, "Glad you like it! Want to change anything else?")
    if "who" in low or "what are you" in low:
        return t(lang, "I'm a drawing assistant. Tell me what to draw, and I'll make it.")
    return t(lang, "Hi! Tell me what to draw, like a lighthouse on a cliff at night.")


def saved_reply(folder: str, count: int, lang: str = SOURCE_LANGUAGE) -> str:
    if count == 1:
        return t(lang, "Saved 1 picture with its settings to {folder}.", folder=folder)
    return t(
        lang, "Saved {count} pictures with their settings to {folder}.", count=count, folder=folder
    )


def error_reply(code: str, message: str, lang: str = SOURCE_LANGUAGE) -> str:
    """The user-facing sentence for a failed turn: what went wrong and what to do.

    Messages that have a translation are said in the user's language; the detailed technical
    ones (a model path, a setting to change) stay in English, where the settings are named.
    """
    if code == "asr-no-speech":
        return t(lang, "I didn't hear anything. Could you say that again, a little closer?")
    if message and has_translation(lang, message):
        return t(lang, message)
    return message or ERROR_CODES.get(code, "Something went wrong.")
