"""The one interface every LLM backend offers to the planner, the rewriter and the translator.

``ChatLLM.chat`` takes chat messages (system / user / assistant turns, the model's own chat
template applies them), decodes greedily, and returns the answer text. With ``json_schema``
the answer is one compact JSON document of that schema: llama.cpp enforces it while decoding
(a grammar made from the schema), transformers checks it afterwards; either way a caller gets
text that parses, or an exception. A last message with role ``assistant`` is the start of the
answer: the model continues it, and only what it wrote after it is returned (the rewriter
starts the answer with the person's own words, so they cannot drift away).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

ChatMessages = list[dict[str, str]]

ROLES = ("system", "user", "assistant")


@runtime_checkable
class ChatLLM(Protocol):
    """A loaded chat model. Implementations: ``LlamaCppChat`` (GGUF), ``TransformersChat``."""

    name: str  # the rewrite.llm setting it was built from

    def chat(
        self,
        messages: ChatMessages,
        *,
        json_schema: dict | None = None,
        max_tokens: int = 96,
        stop: list[str] | None = None,
    ) -> str:
        """The model's answer to ``messages`` (greedy; at most ``max_tokens`` tokens; cut at
        the first of ``stop``, which is not included). With ``json_schema``: compact JSON of
        that schema, or ``ValueError`` when no such answer came within ``max_tokens``."""
        ...


def warm_prompt(llm: ChatLLM, prompts: list[ChatMessages]) -> str:
    """Evaluate the fixed start that ``prompts`` (calls of one kind) share, once, so the first
    real call only pays for its own words. llama.cpp holds exactly that prefix and keeps its
    state on disk for the next start; other backends evaluate the first prompt (their prefix
    cache keeps it). Returns how the prefix got there."""
    hold = getattr(llm, "hold_prefix", None)
    if hold is not None:
        return hold(prompts)
    llm.chat(prompts[0], max_tokens=1)  # no schema: one token of JSON is not JSON yet
    return "evaluated"


@dataclass(frozen=True)
class CallStats:
    """What the last call cost (timed here: cyllama's own timings are not reliable)."""

    prompt_tokens: int = 0
    reused_tokens: int = 0  # of the prompt, taken from the previous call's KV cache
    new_tokens: int = 0
    prefill_s: float = 0.0
    total_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        decode_s = self.total_s - self.prefill_s
        return self.new_tokens / decode_s if decode_s > 0 else 0.0


def check_messages(messages: ChatMessages) -> None:
    """Refuse malformed messages up front, with what is wrong."""
    if not messages:
        raise ValueError("chat: no messages")
    for i, m in enumerate(messages):
        if m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError(
                f"chat: message {i} must be {{'role': one of {ROLES}, 'content': str}}, got {m!r}"
            )


def answer_prefix(messages: ChatMessages) -> tuple[ChatMessages, str]:
    """Split off a trailing assistant message: (the conversation, the answer's start)."""
    if messages[-1]["role"] == "assistant":
        return messages[:-1], messages[-1]["content"]
    return messages, ""


def plain_transcript(messages: ChatMessages) -> str:
    """Labelled turns for a base model that has no chat template (Gemma 270M base)."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant: "


_JSON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "null": type(None),
}


def schema_problem(value, schema: dict, where: str = "$") -> str | None:
    """Why ``value`` does not fit ``schema`` (type, enum/const, required, properties,
    additionalProperties, items, min/maxItems, maxLength), or None. The subset the planner's
    schemas use; grammar-constrained backends never need it."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            problems = [schema_problem(value, s, where) for s in schema[key]]
            return None if None in problems else f"{where}: fits none of {key}"
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        ok = any(
            isinstance(value, _JSON_TYPES[k]) and not (k in ("integer", "number") and value is True)
            for k in kinds
            if k in _JSON_TYPES
        )
        if not ok:
            return f"{where}: expected {kind}, got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} is not one of {schema['enum']}"
    if "const" in schema and value != schema["const"]:
        return f"{where}: must be {schema['const']!r}"
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        return f"{where}: longer than {schema['maxLength']} characters"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                return f"{where}: missing {name!r}"
        for name, item in value.items():
            if name in props:
                if problem := schema_problem(item, props[name], f"{where}.{name}"):
                    return problem
            elif schema.get("additionalProperties", True) is False:
                return f"{where}: unexpected key {name!r}"
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            return f"{where}: more than {schema['maxItems']} items"
        if len(value) < schema.get("minItems", 0):
            return f"{where}: fewer than {schema['minItems']} items"
        for i, item in enumerate(value):
            if problem := schema_problem(item, schema.get("items", {}), f"{where}[{i}]"):
                return problem
    return None


def parse_json_answer(answer: str, schema: dict | None, model_name: str) -> str:
    """The first JSON value in ``answer``, checked against ``schema``, as compact JSON."""
    match = re.search(r"[\[{]", answer)
    if not match:
        raise ValueError(f"{model_name} gave no JSON: {answer[:80]!r}")
    try:
        value, _ = json.JSONDecoder().raw_decode(answer[match.start() :])
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{model_name} gave JSON that does not parse ({e.msg}; cut by max_tokens?): "
            f"{answer[:80]!r}"
        ) from e
    if schema is not None and (problem := schema_problem(value, schema)):
        raise ValueError(f"{model_name} gave JSON outside the schema: {problem}")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
