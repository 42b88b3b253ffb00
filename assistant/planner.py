"""The LLM's structured plan for an open request: schema-enforced, then checked.

The grammar and the router answer what they know; for everything else an instruct LLM says
what the request means as one JSON object whose shape is enforced while decoding (a grammar
built from ``LLMPlan``'s schema), so every answer parses. It sees what it needs: the pictures
of the session with short descriptions, which one is in view, and the last few turns. The
answer is then checked against the state (the target exists) and against the words said (no
invented subjects); a refused answer means "no plan", and the caller asks back rather than
guess. A weak or confused LLM can never crash a turn or draw a picture nobody asked for.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.llm_chat import warm_prompt
from assistant.plan import ChangeKind, Transform
from assistant.rewrite import _stem, content_words, words
from assistant.state import DialogueState

logger = logging.getLogger(__name__)

MAX_PICTURES_SHOWN = 8  # the newest pictures the LLM is told about
MAX_TURNS_SHOWN = 3  # the last requests it is told about

ChangeKindName = Literal[tuple(k.value for k in ChangeKind)]  # type: ignore[valid-type]
TransformName = Literal[tuple(t.value for t in Transform)]  # type: ignore[valid-type]


class LLMPlan(BaseModel):
    """The schema the LLM fills in: flat and small, since every key costs decoding time."""

    model_config = ConfigDict(extra="forbid")

    intent: Literal[
        "generate", "edit", "transform", "select", "history", "chitchat", "help", "undo",
        "again", "clarify",
    ]  # fmt: skip
    target: str = Field("", max_length=8, description="a picture id such as n2; empty: current")
    subject: str = Field("", max_length=300, description="generate: what to draw")
    kind: ChangeKindName | Literal[""] = Field("", description="edit: the kind of change")
    object: str = Field("", max_length=60, description="edit: the thing changed")
    value: str = Field("", max_length=120, description="edit: what it becomes")
    transform: TransformName | Literal[""] = ""
    avoid: list[str] = Field(default_factory=list, max_length=6)


@dataclass(frozen=True)
class PlanContext:
    """What the LLM is shown about the session."""

    pictures: list[tuple[str, str]]  # (id, short description), oldest first
    current: str | None
    turns: list[str]

    @classmethod
    def of(cls, state: DialogueState) -> PlanContext:
        nodes = list(state.nodes.values())[-MAX_PICTURES_SHOWN:]
        pictures = [(n.id, n.prompt.split(",", 1)[0][:80]) for n in nodes]
        turns = [x.user for x in state.history[-MAX_TURNS_SHOWN:] if x.user]
        return cls(pictures, state.focus_id, turns)

    def describe(self) -> str:
        lines = []
        for node_id, description in self.pictures:
            mark = " (in view)" if node_id == self.current else ""
            lines.append(f"{node_id}{mark}: {description}")
        shown = "\n".join(lines) if lines else "none"
        said = " | ".join(self.turns) if self.turns else "nothing yet"
        return f"Pictures:\n{shown}\nEarlier requests: {said}"


SYSTEM = """You are the planner of a drawing assistant. Answer each request with one JSON \
object.
intent: generate = a new picture (subject: what to draw, in their words); edit = change the \
picture in view (kind, object, value); transform = flip, rotate or crop it (transform); select \
= show an earlier picture (target); history = a question about earlier pictures or requests; \
chitchat = thanks or small talk; help; undo; again = another version; clarify = unclear.
kind: set-attribute, add, remove, replace, setting, time-of-day, weather, season, style, \
adjust, free.
Use only the person's words. avoid: what they do not want."""

_GARDEN = (
    "Pictures:\nn1: a dog in a garden\nn2 (in view): a dog in a garden, at night\n"
    "Earlier requests: draw a dog in a garden | make it night"
)
_BARN = "Pictures:\nn1 (in view): a red barn in a field\nEarlier requests: draw a red barn"
EXAMPLES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "Pictures:\nnone\nEarlier requests: nothing yet",
        "I was thinking of a fox under the moon, no clouds",
        {"intent": "generate", "subject": "a fox under the moon", "avoid": ["clouds"]},
    ),
    (_BARN, "could the sky look a bit more dramatic",
     {"intent": "edit", "kind": "adjust", "object": "sky", "value": "dramatic"}),
    (_GARDEN, "hmm I preferred the one before", {"intent": "select", "target": "n1"}),
    (_BARN, "the barn should be blue",
     {"intent": "edit", "kind": "set-attribute", "object": "barn", "value": "blue"}),
    (_BARN, "how about a little horse next to it",
     {"intent": "edit", "kind": "add", "value": "a little horse next to it"}),
    (_GARDEN, "what about a lighthouse by the sea instead",
     {"intent": "generate", "subject": "a lighthouse by the sea"}),
    (_BARN, "let it be snowing", {"intent": "edit", "kind": "weather", "value": "snowing"}),
    (_GARDEN, "what did I ask for at the start", {"intent": "history"}),
    (_BARN, "mirror it the other way", {"intent": "transform", "transform": "flip-horizontal"}),
    (_GARDEN, "hmm, well", {"intent": "clarify"}),
]  # fmt: skip


def plan_messages(request: str, context: PlanContext) -> list[dict[str, str]]:
    """The chat: the fixed instructions and examples first (their KV cache is reused), then
    this request in its context."""
    messages = [{"role": "system", "content": SYSTEM}]
    for shown, said, answer in EXAMPLES:
        messages.append({"role": "user", "content": f"{shown}\nRequest: {said}"})
        messages.append({"role": "assistant", "content": json.dumps(answer, separators=(",", ":"))})
    messages.append({"role": "user", "content": f"{context.describe()}\nRequest: {request}"})
    return messages


def plan_schema() -> dict[str, Any]:
    return LLMPlan.model_json_schema()


class LLMPlanner:
    """Asks an instruct LLM for an ``LLMPlan``; returns None whenever the answer is not usable.

    Parameters
    ----------
    llm: anything with ``chat(messages, json_schema=..., max_tokens=...) -> str``
        (``assistant.llm_gguf`` on llama.cpp, or the transformers backend).
    """

    def __init__(self, llm: Any, max_tokens: int = 80):
        self.llm = llm
        self.max_tokens = max_tokens
        self.last_problem: str | None = None
        self.last_answer: str | None = None
        self.last_seconds = 0.0

    def warm_up(self) -> str:
        """Evaluate the fixed instructions and examples once (or load their saved state), so
        the first open request pays only for its own words, not ~12 s of prompt on a CPU."""
        empty = PlanContext([], None, [])
        return warm_prompt(self.llm, [plan_messages(r, empty) for r in ("a red ball", "undo")])

    def prepare_for(self, context: PlanContext) -> str | None:
        """Evaluate the session's context ahead of its next request (while the person reads
        the reply or speaks), so an open request then costs only its own words and the plan.
        Returns how (see ``hold_prefix``), or None for an LLM that cannot hold a prefix."""
        hold = getattr(self.llm, "hold_prefix", None)
        if hold is None:
            return None
        return hold([plan_messages(r, context) for r in ("a red ball", "undo")], save=False)

    def plan(self, request: str, context: PlanContext | None = None) -> LLMPlan | None:
        context = context or PlanContext([], None, [])
        start = time.perf_counter()
        try:
            self.last_answer = self.llm.chat(
                plan_messages(request, context),
                json_schema=plan_schema(),
                max_tokens=self.max_tokens,
            )
            plan, self.last_problem = parse_plan(self.last_answer, request, context)
        except Exception as e:  # the planner is optional: any failure means "no plan"
            plan, self.last_problem = None, f"LLM failed: {e}"
        self.last_seconds = time.perf_counter() - start
        if plan is None:
            logger.info("LLM plan refused (%s): %r", self.last_problem, self.last_answer)
        return plan


def parse_plan(
    answer: str, request: str, context: PlanContext
) -> tuple[LLMPlan | None, str | None]:
    """Parse and check an LLM answer; returns (plan, None) or (None, why it was refused)."""
    start, end = answer.find("{"), answer.rfind("}")
    if start < 0 or end < start:
        return None, "no JSON object"
    try:
        plan = LLMPlan.model_validate(json.loads(answer[start : end + 1]))
    except (json.JSONDecodeError, ValidationError) as e:
        return None, f"does not fit the schema: {str(e).splitlines()[0]}"
    known = {node_id for node_id, _ in context.pictures}
    if plan.target and plan.target not in known:
        return None, f"names a picture that does not exist: {plan.target}"
    # Words may come from the request, or (for an edit's object) from the picture it changes.
    said = {_stem(w) for w in words(request)}
    pictured = {_stem(w) for _, d in context.pictures for w in words(d)}
    new_words = " ".join([plan.subject, plan.value, *plan.avoid])
    invented = [w for w in content_words(new_words) if _stem(w) not in said]
    invented += [w for w in content_words(plan.object) if _stem(w) not in said | pictured]
    if invented:
        return None, f"uses words nobody said: {', '.join(invented)}"
    has_picture = context.current is not None or bool(plan.target)
    if plan.intent == "generate" and not content_words(plan.subject):
        return None, "no subject"
    if plan.intent in ("edit", "transform") and not has_picture:
        return None, f"an {plan.intent} with no picture"
    if plan.intent == "edit" and not plan.kind:
        return None, "an edit with no change"
    if plan.intent == "transform" and not plan.transform:
        return None, "a transform with no operation"
    if plan.intent == "select" and not plan.target:
        return None, "a select with no picture"
    return plan, None
