"""Measure the router's thresholds on the TUNE split of benchmarks/understand_set.yaml.

For every scoring (top-k mean of the nearest examples, k = 1..3) and every pair of thresholds
(score from 0.30 to 0.95, margin from 0.00 to 0.30, steps of 0.01), count on the tune split
the requests routed confidently to the right label, confidently to a wrong one, and not
confidently. Content requests (generate / edit / inpaint / clarify) count as "open". The
chosen pair maximises right - WRONG_COST * wrong (a confident wrong route runs the wrong
command; an unsure one only falls through to the grammar and the LLM), then prefers the lowest
thresholds. The heldout split is only reported at that pair, never used to choose it.

Run: ``python -m benchmarks.router_thresholds`` (about 2 s).
"""

from __future__ import annotations

import logging

import numpy as np

from assistant.router import IntentRouter
from benchmarks.understand import machine
from benchmarks.understand_cases import load_cases, router_labels

SCORES = np.round(np.arange(0.30, 0.951, 0.01), 2)
MARGINS = np.round(np.arange(0.0, 0.301, 0.01), 2)
TOP_KS = (1, 2, 3)
WRONG_COST = 10  # one confident mistake costs as much as ten requests left to the planner
LEXICAL_WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5)


def _routes(router: IntentRouter, cases) -> list[tuple[float, float, bool, bool]]:
    """Per case: (score, margin, right label, exact match or repair)."""
    out = []
    for case in cases:
        r = router.route(case.say)
        out.append((r.score, r.margin, r.intent in router_labels(case.expect), r.score >= 1.0))
    return out


def _count(routes, score_t: float, margin_t: float) -> tuple[int, int, int]:
    right = wrong = 0
    for score, margin, ok, _ in routes:
        if score >= score_t and margin >= margin_t:
            right += ok
            wrong += not ok
    return right, wrong, len(routes) - right - wrong


def choose(routes) -> tuple[float, float, tuple[int, int, int]]:
    """The best (score, margin) pair on these routes, and its counts."""
    best = None
    for s in SCORES:
        for m in MARGINS:
            right, wrong, unsure = _count(routes, s, m)
            key = (WRONG_COST * wrong - right, s + m)
            if best is None or key < best[0]:
                best = (key, float(s), float(m), (right, wrong, unsure))
    _, s, m, counts = best
    return s, m, counts


def main() -> int:
    tune, heldout = load_cases(split="tune"), load_cases(split="heldout")
    print(f"Router thresholds on the tune split ({len(tune)} cases); {machine()}\n")
    print(
        "| top-k | lexical weight | score ≥ | margin ≥ | tune right / wrong / unsure "
        "| heldout right / wrong / unsure |"
    )
    print("|---|---|---|---|---|---|")
    best = None
    for k in TOP_KS:
        for w in LEXICAL_WEIGHTS:
            router = IntentRouter.load(top_k=k, lexical_weight=w)
            s, m, (right, wrong, unsure) = choose(_routes(router, tune))
            h = _count(_routes(router, heldout), s, m)
            print(
                f"| {k} | {w:.1f} | {s:.2f} | {m:.2f} | {right} / {wrong} / {unsure} "
                f"| {h[0]} / {h[1]} / {h[2]} |"
            )
            gain = right - WRONG_COST * wrong
            if best is None or gain > best[0]:
                best = (gain, k, w, s, m)
    _, k, w, s, m = best
    print(
        f"\nChosen on tune: TOP_K={k}, LEXICAL_WEIGHT={w}, SCORE_THRESHOLD={s:.2f}, "
        f"MARGIN_THRESHOLD={m:.2f}"
    )
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(main())
