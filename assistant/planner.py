"""The LLM's structured plan for an open request, validated against a schema.

The local grammar answers commands; for everything else an LLM may say what the request is
(a new picture, a change to the current one, or something to ask back) as one line of JSON.
What it writes must parse, match the schema, and use only words the person said; otherwise
the deterministic path decides, so a weak or confused LLM can never crash a turn or invent a
picture nobody asked for.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.rewrite import _stem, content_words, words

logger = logging.getLogger(__name__)

PLAN_FEW_SHOT = """Turn each request about a picture into one line of JSON.

Picture now: none
Request: draw a lighthouse on a cliff at night, no boats
JSON: {{"intent": "generate", "subject": "a lighthouse on a cliff at night", "avoid": ["boats"]}}

Picture now: a red barn in a field
Request: can you make the sky look stormy
JSON: {{"intent": "edit", "subject": "stormy sky", "avoid": []}}

Picture now: a red barn in a field
Request: hmm well
JSON: {{"intent": "clarify", "subject": "", "avoid": []}}

Picture now: {current}
Request: {request}
JSON: {{"intent": \""""


class LLMPlan(BaseModel):
    """The schema the LLM fills in."""

    model_config = ConfigDict(extra="forbid")

    intent: Literal["generate", "edit", "clarify"]
    subject: str = Field("", max_length=400)
    avoid: list[str] = Field(default_factory=list, max_length=8)


class LLMPlanner:
    """Asks an LLM for an ``LLMPlan``; returns None whenever the answer is not usable.

    Parameters
    ----------
    complete: continues a text by one line (``assistant.llm.PromptLLM.complete``).
    """

    def __init__(self, complete: Callable[[str], str]):
        self.complete = complete
        self.last_problem: str | None = None
        self.last_seconds = 0.0

    def plan(self, request: str, current_prompt: str | None) -> LLMPlan | None:
        start = time.perf_counter()
        text = PLAN_FEW_SHOT.format(current=current_prompt or "none", request=request)
        try:
            answer = '{"intent": "' + self.complete(text)
            plan, self.last_problem = parse_plan(answer, request, current_prompt is not None)
        except Exception as e:  # the planner is optional: any failure means "no plan"
            plan, self.last_problem = None, f"LLM failed: {e}"
        self.last_seconds = time.perf_counter() - start
        if plan is None:
            logger.info("LLM plan refused (%s)", self.last_problem)
        return plan


def parse_plan(answer: str, request: str, has_picture: bool) -> tuple[LLMPlan | None, str | None]:
    """Parse and check an LLM answer; returns (plan, None) or (None, why it was refused)."""
    match = re.search(r"\{.*?\}", answer)
    if not match:
        return None, "no JSON object"
    try:
        plan = LLMPlan.model_validate(json.loads(match.group(0)))
    except (json.JSONDecodeError, ValidationError) as e:
        return None, f"does not fit the schema: {str(e).splitlines()[0]}"
    said = {_stem(w) for w in words(request)}
    invented = [
        w for w in content_words(plan.subject + " " + " ".join(plan.avoid)) if _stem(w) not in said
    ]
    if invented:
        return None, f"uses words nobody said: {', '.join(invented)}"
    if plan.intent != "clarify" and not content_words(plan.subject):
        return None, "no subject"
    if plan.intent == "edit" and not has_picture:
        return None, "an edit with no picture"
    return plan, None
