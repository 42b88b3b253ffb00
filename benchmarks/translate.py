"""`run_assistant.py bench translate`: typed requests in other languages, through the LLM.

For each request: was the translation accepted by the checks (English, not copied back, numbers
kept), and did it keep the English content words a person would expect? Prints a table.
"""

from __future__ import annotations

import os
import statistics
import time

from assistant.build import build_llm, resolve_device
from assistant.config import Config
from assistant.errors import AssistantError
from assistant.translate import LLMTranslator
from benchmarks.foreign_requests import FOREIGN_REQUESTS


def run_translate_bench(config: Config) -> int:
    device = resolve_device(config.device)
    llm = build_llm(config, device)
    if llm is None:
        print("rewrite.llm is none: there is no LLM to translate with.")
        return 1
    translate = LLMTranslator(llm)
    one, five, _ = os.getloadavg()
    print(
        f"\nTyped requests in other languages → English with {config.rewrite.llm} ({device}, "
        f"load {one:.2f}, 5 min {five:.2f})\n"
    )
    print("| language | request | English | accepted | kept words | s |")
    print("|---|---|---|---|---|---|")
    accepted = kept = 0
    times = []
    for language, text, expected in FOREIGN_REQUESTS:
        start = time.perf_counter()
        try:
            english, ok = translate(text, language).text, True
        except AssistantError:
            english = f"(refused: {translate.last_problem}) {translate.last_answer[:60]}"
            ok = False
        times.append(time.perf_counter() - start)
        hits = sum(word in english.lower() for word in expected) if ok else 0
        accepted += ok
        kept += ok and hits == len(expected)
        print(
            f"| {language} | {text} | {english[:70]} | {'yes' if ok else 'no'} | "
            f"{hits}/{len(expected)} | {times[-1]:.1f} |"
        )
    n = len(FOREIGN_REQUESTS)
    print(
        f"\naccepted {accepted}/{n}; accepted and kept every content word {kept}/{n}; "
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s"
    )
    return 0
