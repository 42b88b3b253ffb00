"""`bench understand`: how well requests in context are understood, by rules, router and LLM.

Each case of benchmarks/understand_set.yaml is planned by ``assistant.understand.understand``
in three modes, interleaved case by case so machine load falls on all of them alike:

- rules: the local grammar only (no router, no LLM);
- router: the grammar and the sentence-embedding router (assistant/router.py), no LLM;
- router + LLM: the same with the LLM planner (``assistant.build.build_planner``), when the
  build has one; otherwise the mode is skipped with a note.

Reported per mode: intent accuracy (tune / heldout), target accuracy, plan fields checked,
literal pictures of commands (a generate plan for something that was not a picture), edit
prompt checks passed, and plan latency p50 / p95 for commands and for open requests.
"""

from __future__ import annotations

import datetime
import inspect
import json
import logging
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from assistant.rewrite import PromptRewriter, RuleRewriter
from benchmarks.understand_cases import (
    SPLITS,
    Case,
    CaseResult,
    build_state,
    check,
    load_cases,
    router_labels,
)

logger = logging.getLogger(__name__)


@dataclass
class Mode:
    """One way of planning: the keywords understand() gets."""

    name: str
    rewriter: PromptRewriter
    router: Any = None
    planner: Any = None
    results: list[CaseResult] = field(default_factory=list)


def rules_rewriter(config: Any = None) -> PromptRewriter:
    """The deterministic rewriter (no LLM), with the configured quality terms and styles
    (``config``: the repository's config.yaml when None)."""
    if config is None:
        from assistant.config import load_config  # noqa: PLC0415

        config = load_config(environ={})
    rw = config.rewrite
    styles = {name: (s.prompt, s.negative) for name, s in rw.styles.items()}
    return PromptRewriter(
        RuleRewriter(rw.quality_terms, rw.default_negative),
        None,
        rw.max_prompt_words,
        styles=styles,
    )


def understand_accepts(keyword: str) -> bool:
    """Whether assistant.understand.understand takes ``keyword`` (the router is new)."""
    from assistant.understand import understand  # noqa: PLC0415

    return keyword in inspect.signature(understand).parameters


class TimedPlanner:
    """The LLM planner, timed: how often a request reached it and what that cost."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.seconds: float | None = None

    def plan(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.plan(*args, **kwargs)
        finally:
            self.seconds = time.perf_counter() - start


def prepare_planner(planner: TimedPlanner, state: Any) -> None:
    """What the controller does after every turn, untimed: the planner's view of the session
    evaluated ahead (``LLMPlanner.prepare_for``), as in a real session where the person reads
    the reply before saying the next request."""
    from assistant.planner import PlanContext  # noqa: PLC0415

    prepare = getattr(planner.inner, "prepare_for", None)
    if prepare is not None:
        prepare(PlanContext.of(state))


def plan_case(case: Case, mode: Mode) -> CaseResult:
    """Plan one case in a fresh copy of its state; time understand() alone."""
    from assistant.understand import understand  # noqa: PLC0415

    state = build_state(case)
    kwargs: dict[str, Any] = {}
    if mode.planner is not None:
        mode.planner.seconds = None
        kwargs["planner"] = mode.planner
        prepare_planner(mode.planner, state)
    if mode.router is not None and understand_accepts("router"):
        kwargs["router"] = mode.router
    start = time.perf_counter()
    try:
        plan = understand(case.say, state, mode.rewriter, **kwargs)
    except Exception as e:  # a crash is a wrong answer, reported, not the end of the bench
        logger.exception("case %s (%s) raised", case.id, mode.name)
        error = f"{type(e).__name__}: {e}"
        return CaseResult(case, "error", False, False, problems=[error], error=error)
    result = check(case, plan, time.perf_counter() - start)
    result.llm_seconds = mode.planner.seconds if mode.planner is not None else None
    return result


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(results: list[CaseResult]) -> dict[str, Any]:
    """The figures of one mode."""
    out: dict[str, Any] = {"cases": len(results)}
    for split in SPLITS:
        mine = [r for r in results if r.case.split == split]
        out[f"intent_{split}"] = sum(r.intent_ok for r in mine) / len(mine) if mine else None
        out[f"n_{split}"] = len(mine)
    targeted = [r for r in results if r.target_ok is not None]
    out["target"] = sum(r.target_ok for r in targeted) / len(targeted) if targeted else None
    out["n_target"] = len(targeted)
    with_params = [r for r in results if r.params_ok is not None]
    out["params_ok"] = sum(r.params_ok for r in with_params)
    out["params_checked"] = len(with_params)
    out["params_expected"] = sum(bool(r.case.expect.params) for r in results)
    out["literal"] = sum(r.literal for r in results)
    out["prompt_passed"] = sum(r.prompt_passed for r in results)
    out["prompt_checks"] = sum(r.prompt_checks for r in results)
    out["errors"] = sum(r.error is not None for r in results)
    commands = [r.seconds * 1000 for r in results if not r.case.expect.is_content and not r.error]
    content = [r.seconds * 1000 for r in results if r.case.expect.is_content and not r.error]
    for name, values in (("command", commands), ("open", content)):
        out[f"{name}_ms_p50"] = statistics.median(values) if values else None
        out[f"{name}_ms_p95"] = _pct(values, 0.95)
    asked = [r.llm_seconds * 1000 for r in results if r.llm_seconds is not None]
    out["llm_asked"] = len(asked)
    out["llm_ms_p50"] = statistics.median(asked) if asked else None
    out["llm_ms_p95"] = _pct(asked, 0.95)
    return out


def router_alone(router: Any, cases: list[Case]) -> dict[str, Any]:
    """The router by itself: confident and right / confident and wrong / unsure, per split."""
    out: dict[str, Any] = {}
    for split in SPLITS:
        right = wrong = unsure = 0
        for case in (c for c in cases if c.split == split):
            routed = router.route(case.say)
            if not routed.confident:
                unsure += 1
            elif routed.intent in router_labels(case.expect):
                right += 1
            else:
                wrong += 1
        if right + wrong + unsure:  # only the splits that were run
            out[split] = {"confident_right": right, "confident_wrong": wrong, "unsure": unsure}
    return out


def machine() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        load = f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"
    except OSError:
        load = "load unknown"
    now = datetime.datetime.now().astimezone().isoformat(timespec="minutes")
    return f"{platform.machine()}, {os.cpu_count()} cores, {load}, {now}"


def _llm_planner(config: Any) -> tuple[Any, PromptRewriter | None, str | None]:
    """(planner, rewriter, why not): the LLM planner and rewriter the build makes from
    ``config`` (``build_planner`` when the build has one, else ``LLMPlanner(build_llm(...))``)."""
    if config is None:
        return None, None, "no config"
    if not config.rewrite.plan_with_llm:
        return None, None, "rewrite.plan_with_llm is off in this profile"
    try:
        from assistant import build  # noqa: PLC0415
        from assistant.planner import LLMPlanner  # noqa: PLC0415

        device = build.resolve_device(config.device)
        if (make := getattr(build, "build_planner", None)) is not None:
            planner = make(config, device)
            rewriter = build.build_rewriter(config, device)
        else:
            llm = build.build_llm(config, device)
            if llm is None:
                return None, None, "rewrite.llm is none"
            planner, rewriter = LLMPlanner(llm), build.build_rewriter(config, device, llm)
    except Exception as e:  # a missing model is a note in the table, not a crash
        return None, None, f"the LLM planner did not load ({type(e).__name__}: {e})"
    return planner, rewriter, None


def run_understand_bench(
    config: Any = None,
    split: str | None = None,
    as_json: bool = False,
    with_llm: bool = True,
    show_misses: int = 40,
) -> int:
    """Plan every case in each mode and print a markdown table (or JSON with ``as_json``)."""
    from assistant.router import IntentRouter  # noqa: PLC0415

    cases = load_cases(split=split)
    rewriter = rules_rewriter(config)
    start = time.perf_counter()
    cache = config.data_dir.expanduser() / "router" if config is not None else None
    router = IntentRouter.load(cache_dir=cache) if cache else IntentRouter.load()
    router_load_s = time.perf_counter() - start
    notes = []
    if not understand_accepts("router"):
        notes.append("understand() takes no router yet: the router mode is the rules mode")
    modes = [Mode("rules", rewriter), Mode("router", rewriter, router=router)]
    if with_llm:
        planner, llm_rewriter, why_not = _llm_planner(config)
        if planner is None:
            notes.append(f"router + LLM skipped: {why_not}")
        else:
            if hasattr(planner, "warm_up"):  # as the app does at start, in the background
                start = time.perf_counter()
                planner.warm_up()
                notes.append(f"LLM planner warmed up first in {time.perf_counter() - start:.1f} s")
            timed = TimedPlanner(planner)
            modes.append(Mode("router + LLM", llm_rewriter, router=router, planner=timed))
    began = machine()
    for case in cases:  # interleaved: every mode sees the same moment of machine load
        for mode in modes:
            mode.results.append(plan_case(case, mode))
    report = {
        "machine": {"start": began, "end": machine()},
        "cases": len(cases),
        "router_load_s": round(router_load_s, 2),
        "notes": notes,
        "modes": {m.name: summarise(m.results) for m in modes},
        "router_alone": router_alone(router, cases),
        "misses": {
            m.name: [
                {"id": r.case.id, "say": r.case.say, "got": r.intent, "problems": r.problems}
                for r in m.results
                if r.problems or r.error
            ]
            for m in modes
        },
    }
    if as_json:
        print(json.dumps(report, indent=1, default=str))
        return 0
    print_report(report, show_misses)
    return 0


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.1%}" if percent else f"{value:.1f}"


def print_report(report: dict[str, Any], show_misses: int = 40) -> None:
    n = next(iter(report["modes"].values()))
    print(f"\nUnderstanding benchmark: {report['cases']} cases ({report['machine']['start']})")
    counts = ", ".join(f"{split} {n[f'n_{split}']}" for split in SPLITS)
    print(f"{counts}; router loaded in {report['router_load_s']} s\n")
    shown = [sp for sp in SPLITS if not sp.startswith("fresh") or n[f"n_{sp}"]]  # fresh*: when run
    print(
        "| mode | " + " | ".join(f"intent {split}" for split in shown) + " | target | plan "
        "fields | literal pictures of commands | edit-prompt checks | command ms p50 / p95 "
        "| open ms p50 / p95 |"
    )
    print("|---|" + "---|" * (len(shown) + 7))
    for name, s in report["modes"].items():
        intents = " | ".join(_fmt(s[f"intent_{split}"], True) for split in shown)
        print(
            f"| {name} | {intents} "
            f"| {_fmt(s['target'], True)} of {s['n_target']} "
            f"| {s['params_ok']}/{s['params_checked']} ({s['params_expected']} expected) "
            f"| {s['literal']} | {s['prompt_passed']}/{s['prompt_checks']} "
            f"| {_fmt(s['command_ms_p50'])} / {_fmt(s['command_ms_p95'])} "
            f"| {_fmt(s['open_ms_p50'])} / {_fmt(s['open_ms_p95'])} |"
        )
    for name, s in report["modes"].items():
        if s.get("llm_asked"):
            print(
                f"\n{name}: the LLM planner was asked for {s['llm_asked']} of {s['cases']} "
                f"requests: p50 {_fmt(s['llm_ms_p50'])} ms, p95 {_fmt(s['llm_ms_p95'])} ms "
                "(the plan's whole time for those requests is in the open / command columns; "
                "the session's context was evaluated ahead, untimed, as after a turn)"
            )
    print("\nRouter alone (confident right / confident wrong / unsure):")
    for split, r in report["router_alone"].items():
        print(f"- {split}: {r['confident_right']} / {r['confident_wrong']} / {r['unsure']}")
    for note in report["notes"]:
        print(f"\nNote: {note}")
    for name, misses in report["misses"].items():
        print(f"\nMisses of {name} ({len(misses)}; first {show_misses}):")
        for m in misses[:show_misses]:
            print(f"- {m['id']} {m['say']!r}: {'; '.join(m['problems']) or m['got']}")
    print(f"\nDone: {report['machine']['end']}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(run_understand_bench())
