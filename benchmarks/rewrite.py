"""`run_assistant.py bench rewrite`: the rewriter on casual requests, rules vs the configured LLM.

Reports how often the LLM's prompt passed validation, how often the final prompt kept every
content word and put the negatives in the negative prompt, and the latency of each path.
"""

from __future__ import annotations

import statistics
import time

from assistant.build import build_rewriter, resolve_device
from assistant.config import Config
from assistant.planner import LLMPlanner
from assistant.rewrite import PromptRewriter, content_words
from benchmarks.casual_requests import REQUESTS


def _kept(prompt: str, negative_prompt: str, keep: list[str], avoid: list[str]) -> bool:
    have = set(content_words(prompt))
    return all(w in have for w in keep) and all(a in negative_prompt for a in avoid)


def _measure(rewriter: PromptRewriter, label: str) -> dict:
    times, kept, by_llm, notes = [], 0, 0, []
    for said, keep, avoid in REQUESTS:
        start = time.perf_counter()
        result = rewriter.generate(said)
        times.append(time.perf_counter() - start)
        kept += _kept(result.prompt, result.negative_prompt, keep, avoid)
        by_llm += result.rewriter == "llm"
        if result.note:
            notes.append(result.note)
    return {
        "label": label,
        "n": len(REQUESTS),
        "kept": kept,
        "llm_valid": by_llm,
        "median_s": statistics.median(times),
        "max_s": max(times),
        "notes": notes,
    }


def _measure_planner(planner: LLMPlanner) -> dict:
    """How often the LLM's JSON plan for a request is valid and right (a new picture)."""
    times, valid, right, problems = [], 0, 0, {}
    for said, _, _ in REQUESTS:
        plan = planner.plan(said, None)
        times.append(planner.last_seconds)
        valid += plan is not None
        right += plan is not None and plan.intent == "generate"
        if plan is None:
            key = (planner.last_problem or "?").split(":")[0]
            problems[key] = problems.get(key, 0) + 1
    return {
        "valid": valid,
        "right": right,
        "median_s": statistics.median(times),
        "max_s": max(times),
        "problems": problems,
    }


def run_rewrite_bench(config: Config) -> int:
    device = resolve_device(config.device)
    llm_rewriter = build_rewriter(config, device)
    rules_only = PromptRewriter(llm_rewriter.rules, None, config.rewrite.max_prompt_words)
    rows = [_measure(rules_only, "rules only")]
    if llm_rewriter.llm is not None:
        rows.append(_measure(llm_rewriter, f"LLM {config.rewrite.llm} + rules floor"))
    print(f"\nRewriter on {len(REQUESTS)} casual requests (device {device})\n")
    print(
        "| path | LLM prompts accepted | final prompt kept words + negatives | median s | max s |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        accepted = f"{r['llm_valid']}/{r['n']}" if r["label"] != "rules only" else "n/a"
        print(
            f"| {r['label']} | {accepted} | {r['kept']}/{r['n']} | {r['median_s']:.3f} | "
            f"{r['max_s']:.3f} |"
        )
    if llm_rewriter.llm is not None:
        p = _measure_planner(LLMPlanner(llm_rewriter.llm.complete))
        n = len(REQUESTS)
        print(
            f"\nLLM structured plans ({config.rewrite.llm}): valid JSON + schema + only "
            f"words said {p['valid']}/{n}, right intent {p['right']}/{n}, median "
            f"{p['median_s']:.2f} s, max {p['max_s']:.2f} s; refused: {p['problems']}"
        )
    for r in rows:
        if r["notes"]:
            reasons: dict[str, int] = {}
            for note in r["notes"]:
                key = note.split(":", 1)[-1].strip().split(" ")[0]
                reasons[key] = reasons.get(key, 0) + 1
            print(f"\nwhy LLM prompts were refused ({r['label']}): {reasons}")
    return 0
