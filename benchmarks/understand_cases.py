"""The understanding set (benchmarks/understand_set.yaml): read cases, build their state, check
a Plan against what was expected.

Used by ``bench understand`` (benchmarks/understand.py), benchmarks/router_thresholds.py and
tests/test_understand_set.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.state import DialogueState, Exchange, ImageNode

SET_PATH = Path(__file__).with_name("understand_set.yaml")
# Held-out sets written later, each apart from everything tuned, one file per split
# (understand_fresh.yaml, understand_fresh2.yaml, ...): each is read only when its split is
# asked for, so the tune / heldout proportions of the main set stay as they are.
FRESH_PATHS = {
    p.stem.removeprefix("understand_"): p
    for p in sorted(
        SET_PATH.parent.glob("understand_fresh*.yaml"),
        key=lambda p: int(re.sub(r"\D", "", p.stem) or 1),
    )
}
SPLITS = ("tune", "heldout", *FRESH_PATHS)
# Intents that describe a picture or a change to it: the router's "open" class.
OPEN_INTENTS = frozenset({"generate", "edit", "inpaint", "clarify"})
CONTENT_INTENTS = frozenset({"generate", "edit", "inpaint"})  # timed as "open requests"


@dataclass(frozen=True)
class Expectation:
    intents: tuple[str, ...]  # acceptable intents (one, or a few where people would disagree)
    target: str | None = None
    uses: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    prompt_has: tuple[str, ...] = ()
    prompt_lacks: tuple[str, ...] = ()
    negative_has: tuple[str, ...] = ()

    @property
    def is_command(self) -> bool:
        """Not a description of a picture: drawing it would be a literal picture of a command."""
        return "generate" not in self.intents

    @property
    def is_content(self) -> bool:
        return bool(set(self.intents) & CONTENT_INTENTS)


@dataclass(frozen=True)
class Case:
    id: str
    split: str
    say: str
    expect: Expectation
    pictures: tuple[dict[str, Any], ...] = ()
    turns: tuple[str, ...] = ()
    focus: str | None = None
    undone: int = 0


def load_cases(path: Path = SET_PATH, split: str | None = None) -> list[Case]:
    """Read the set; ``split`` keeps only the cases of one of SPLITS (the fresh ones come from
    their own files, FRESH_PATHS, and only with that ``split``)."""
    if split in FRESH_PATHS and path == SET_PATH:
        path = FRESH_PATHS[split]
    return [c for c in _read_cases(path) if split is None or c.split == split]


def _read_cases(path: Path) -> list[Case]:
    """Every case of one file, each in its session from that file's ``contexts``."""
    data = yaml.safe_load(Path(path).read_text())
    contexts = data.get("contexts") or {}
    cases = []
    for raw in data["cases"]:
        context = dict(contexts[raw["context"]]) if raw.get("context") else {}
        context.update({k: v for k, v in raw.items() if k in ("pictures", "turns", "focus")})
        if "undone" in raw:
            context["undone"] = raw["undone"]
        e = raw["expect"]
        intents = e["intent"] if isinstance(e["intent"], list) else [e["intent"]]
        case = Case(
            id=raw["id"],
            split=raw["split"],
            say=str(raw["say"]),
            expect=Expectation(
                intents=tuple(intents),
                target=e.get("target"),
                uses=tuple(e.get("uses") or ()),
                params=dict(e.get("params") or {}),
                prompt_has=tuple(e.get("prompt_has") or ()),
                prompt_lacks=tuple(e.get("prompt_lacks") or ()),
                negative_has=tuple(e.get("negative_has") or ()),
            ),
            pictures=tuple(context.get("pictures") or ()),
            turns=tuple(context.get("turns") or ()),
            focus=context.get("focus"),
            undone=int(context.get("undone") or 0),
        )
        if case.split not in SPLITS:
            raise ValueError(f"case {case.id}: split must be one of {SPLITS}, not {case.split!r}")
        cases.append(case)
    return cases


def build_state(case: Case) -> DialogueState:
    """The session a case happens in: its pictures as nodes n1.. (fake paths), its turns."""
    state = DialogueState()
    for index, picture in enumerate(case.pictures, 1):
        operation = picture.get("operation", "generate")
        state.add_node(
            ImageNode(
                id=f"n{index}",
                parent_id=picture.get("parent"),
                operation=operation,
                prompt=picture["prompt"],
                negative_prompt=picture.get("negative", ""),
                seed=1000 + index,
                steps=4,
                guidance=0.0,
                strength=None if operation == "generate" else 0.6,
                width=512,
                height=512,
                model="random:small",
                path=f"/nonexistent/n{index}.png",
                request=picture.get("request", picture["prompt"]),
                placeholder=True,
            )
        )
    if case.focus:
        state.select(case.focus)
    for _ in range(case.undone):
        state.undo()
    node_ids = list(state.nodes)
    for index, said in enumerate(case.turns):
        node = node_ids[index] if index < len(node_ids) else None
        state.history.append(Exchange(user=said, reply="Here it is.", node_id=node))
    return state


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """YAML gives lists where a Plan holds tuples (a transform's steps): compare them alike."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _has_word(text: str, word: str) -> bool:
    """``word`` (or its plural / -y / -ing form, "fog" -> "foggy") is in ``text`` as a word of
    its own."""
    word = word.lower()
    # "cats" -> "cat"; "bus", "glass" are their own stems ("buses", "glasses").
    for stem in {word, word.rstrip("s")} - {""}:
        double = re.escape(stem[-1]) + "?"  # "fog" -> "foggy", "sun" -> "sunny"
        if re.search(rf"\b{re.escape(stem)}(?:{double}(?:y|ing))?(?:s|es)?\b", text.lower()):
            return True
    return False


@dataclass
class CaseResult:
    """How one plan compares with its case's expectation (None: not checked)."""

    case: Case
    intent: str
    intent_ok: bool
    literal: bool  # a new picture of what was a command
    target_ok: bool | None = None
    params_ok: bool | None = None
    prompt_checks: int = 0
    prompt_passed: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    prompt: str = ""
    negative: str = ""
    error: str | None = None
    llm_seconds: float | None = None  # the planner's time, when it was asked


def check(case: Case, plan: Any, seconds: float = 0.0) -> CaseResult:
    """Compare a Plan (anything with the Plan's fields) with the case's expectation."""
    e = case.expect
    intent = str(getattr(plan.intent, "value", plan.intent))
    result = CaseResult(
        case,
        intent,
        intent_ok=intent in e.intents,
        literal=e.is_command and intent == "generate",
        seconds=seconds,
        prompt=plan.prompt or "",
        negative=plan.negative_prompt or "",
    )
    if not result.intent_ok:
        result.problems.append(f"intent {intent}, expected {'|'.join(e.intents)}")
    if e.target or e.uses:
        ids = {plan.target_id} | _other_node_ids(plan)
        ids.discard(None)
        if e.uses:  # both pictures named, or (a plan with one slot) the target is one of them
            result.target_ok = ids == set(e.uses) or (len(ids) == 1 and ids <= set(e.uses))
        else:
            result.target_ok = plan.target_id == e.target
        if not result.target_ok:
            result.problems.append(f"target {sorted(ids)}, expected {e.target or list(e.uses)}")
    fields = getattr(type(plan), "model_fields", {})
    checked = {k: v for k, v in e.params.items() if k in fields}
    if checked:
        got = {k: getattr(plan, k) for k in checked}
        result.params_ok = _comparable(got) == _comparable(checked)
        if not result.params_ok:
            result.problems.append(f"params {got}, expected {checked}")
    checks = (
        [(w, _has_word(result.prompt, w), "prompt lacks") for w in e.prompt_has]
        + [(w, not _has_word(result.prompt, w), "prompt has") for w in e.prompt_lacks]
        + [(w, _has_word(result.negative, w), "negative lacks") for w in e.negative_has]
    )
    if result.intent_ok:  # a prompt is only worth checking on the intended path
        result.prompt_checks = len(checks)
        result.prompt_passed = sum(ok for _, ok, _ in checks)
        for word, ok, what in checks:
            if not ok:
                result.problems.append(f"{what} {word!r}")
    return result


def _other_node_ids(plan: Any) -> set[str]:
    """Node ids a plan names besides target_id (e.g. the second picture of a combine)."""
    found: set[str] = set()
    for name in getattr(type(plan), "model_fields", {}):
        if name == "target_id" or not name.endswith(("_id", "_ids")):
            continue
        value = getattr(plan, name)
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list | tuple):
            found.update(v for v in value if isinstance(v, str))
    return found


def router_labels(e: Expectation) -> set[str]:
    """The router's labels that count as right for an expectation (content -> "open")."""
    return {"open" if i in OPEN_INTENTS else i for i in e.intents}
