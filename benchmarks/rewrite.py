"""`run_assistant.py bench rewrite`: the prompt rewriter on casual requests.

Default: rules only vs the configured LLM (+ the rules floor): how often the LLM's prompt was
accepted, how often the final prompt kept every content word and put the negatives in the
negative prompt, how many contradicting additions were dropped, and the latency.

``--compare``: the LLM runtime on the same requests, interleaved (each request goes through
every variant before the next request, so a load spike hits all of them): llama.cpp with 1
and 2 threads, with the prefix cache off, and transformers on the same weights (de-quantised
once). Per variant: seconds per rewrite, decode tokens/s, prefill seconds, and whether it
wrote the same text as the reference (llama.cpp, 1 thread, prefix cache on). The load average
is printed before and after.
"""

from __future__ import annotations

import logging
import os
import statistics
import time

from assistant.build import build_llm, build_rewriter, resolve_device
from assistant.config import Config
from assistant.llm import TransformersChat, is_gguf_source
from assistant.llm_gguf import LlamaCppChat, resolve_gguf
from assistant.rewrite import ChatPromptWriter, PromptRewriter, content_words, split_negatives
from assistant.rewrite import subject_of as _subject_of
from benchmarks.casual_requests import REQUESTS

logger = logging.getLogger(__name__)

COMPARE_VARIANTS = ("threads=2", "no-prefix-cache", "transformers")


def _kept(prompt: str, negative_prompt: str, keep: list[str], avoid: list[str]) -> bool:
    have = set(content_words(prompt))
    return all(w in have for w in keep) and all(a in negative_prompt for a in avoid)


def _measure(rewriter: PromptRewriter, label: str) -> dict:
    times, kept, by_llm, notes, dropped = [], 0, 0, [], 0
    for said, keep, avoid in REQUESTS:
        start = time.perf_counter()
        result = rewriter.generate(said)
        times.append(time.perf_counter() - start)
        kept += _kept(result.prompt, result.negative_prompt, keep, avoid)
        by_llm += result.rewriter == "llm"
        if result.note and result.rewriter == "llm":
            dropped += 1  # the note says which contradicting additions went
        elif result.note:
            notes.append(result.note)
    return {
        "label": label,
        "n": len(REQUESTS),
        "kept": kept,
        "llm_valid": by_llm,
        "dropped": dropped,
        "median_s": statistics.median(times),
        "p90_s": sorted(times)[int(0.9 * (len(times) - 1))],
        "max_s": max(times),
        "notes": notes,
    }


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (5 min {five:.2f})"


def run_rewrite_bench(config: Config, compare: bool | list[str] = False) -> int:
    if compare:
        variants = COMPARE_VARIANTS if compare is True else tuple(compare)
        return run_runtime_comparison(config, variants)
    device = resolve_device(config.device)
    start = time.perf_counter()
    llm = build_llm(config, device)
    load_s = time.perf_counter() - start
    llm_rewriter = build_rewriter(config, device, llm)
    rules_only = PromptRewriter(llm_rewriter.rules, None, config.rewrite.max_prompt_words)
    print(f"\nRewriter on {len(REQUESTS)} casual requests (device {device}, load {_load()})")
    if llm is not None:
        print(f"LLM {config.rewrite.llm} loaded in {load_s:.1f} s")
    rows = [_measure(rules_only, "rules only")]
    if llm is not None:
        rows.append(_measure(llm_rewriter, f"LLM {config.rewrite.llm} + rules floor"))
    print(
        "\n| path | LLM prompts accepted | final prompt kept words + negatives | "
        "contradictions dropped | median s | p90 s | max s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        llm_row = r["label"] != "rules only"
        accepted = f"{r['llm_valid']}/{r['n']}" if llm_row else "n/a"
        dropped = f"{r['dropped']}/{r['n']}" if llm_row else "n/a"
        print(
            f"| {r['label']} | {accepted} | {r['kept']}/{r['n']} | {dropped} | "
            f"{r['median_s']:.3f} | {r['p90_s']:.3f} | {r['max_s']:.3f} |"
        )
    for r in rows:
        if r["notes"]:
            reasons: dict[str, int] = {}
            for note in r["notes"]:
                key = note.split(":", 1)[-1].strip().split(" ")[0]
                reasons[key] = reasons.get(key, 0) + 1
            print(f"\nwhy LLM prompts were refused ({r['label']}): {reasons}")
    print(f"\nload after: {_load()}")
    return 0


# --- the runtime comparison ------------------------------------------------------------------
def _variant(name: str, config: Config, reference: LlamaCppChat):
    rw = config.rewrite
    if name == "no-prefix-cache":
        return reference  # the same model; the cache is switched off around each call
    if name.startswith("threads="):
        path = resolve_gguf(rw.llm, config.cache_dir)
        return LlamaCppChat(
            path,
            rw.llm,
            threads=int(name.split("=", 1)[1]),
            context_tokens=rw.llm_context_tokens,
            repeat_penalty=rw.llm_repeat_penalty,
        )
    if name == "transformers":
        return TransformersChat(rw.llm, config.cache_dir, "cpu", repeat_penalty=1.1)
    raise ValueError(f"bench rewrite --compare: unknown variant {name!r}; use {COMPARE_VARIANTS}")


def _timed_rewrite(llm, subject: str, max_tokens: int, cache: bool) -> tuple[str, object]:
    was = llm.prefix_cache
    llm.prefix_cache = cache
    try:
        text = ChatPromptWriter(llm, max_tokens)(subject)
    finally:
        llm.prefix_cache = was
    return text, llm.last_stats


def run_runtime_comparison(config: Config, variants: tuple[str, ...]) -> int:
    rw = config.rewrite
    if not is_gguf_source(rw.llm):
        print("bench rewrite --compare needs a GGUF rewrite.llm (the offline default).")
        return 1
    print(f"\nLLM runtimes on the same rewrites ({rw.llm}); load before: {_load()}")
    start = time.perf_counter()
    path = resolve_gguf(rw.llm, config.cache_dir)
    reference = LlamaCppChat(
        path,
        rw.llm,
        threads=rw.llm_threads,
        context_tokens=rw.llm_context_tokens,
        repeat_penalty=rw.llm_repeat_penalty,
    )
    load_s = time.perf_counter() - start
    print(f"reference: llama.cpp, {rw.llm_threads} thread(s), loaded in {load_s:.1f} s")
    models = {"reference": reference}
    for name in variants:
        start = time.perf_counter()
        models[name] = _variant(name, config, reference)
        print(f"{name}: loaded in {time.perf_counter() - start:.1f} s")
    subjects = [_subject_of(split_negatives(said)[0]) for said, _, _ in REQUESTS[:12]]
    # Warm every variant once on a request outside the set: the first call pays the prefix.
    first: dict[str, float] = {}
    for name, llm in models.items():
        start = time.perf_counter()
        _timed_rewrite(llm, "a warm-up request", rw.max_new_tokens, name != "no-prefix-cache")
        first[name] = time.perf_counter() - start
    rows: dict[str, list] = {name: [] for name in models}
    for i, subject in enumerate(subjects):
        order = list(models)
        order = order[i % len(order) :] + order[: i % len(order)]  # rotate who goes first
        for name in order:
            t0 = time.perf_counter()
            text, stats = _timed_rewrite(
                models[name], subject, rw.max_new_tokens, name != "no-prefix-cache"
            )
            rows[name].append((time.perf_counter() - t0, text, stats))
    reference_texts = [text for _, text, _ in rows["reference"]]
    print(
        "\n| variant | first call s (prefix) | median s / rewrite | p90 s | decode tok/s | "
        "prefill s (median) | same text as reference |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, results in rows.items():
        times = sorted(t for t, _, _ in results)
        rates = [s.tokens_per_s for _, _, s in results if s.tokens_per_s]
        prefill = [s.prefill_s for _, _, s in results]
        same = sum(text == ref for (_, text, _), ref in zip(results, reference_texts, strict=True))
        label = {
            "reference": f"llama.cpp, {rw.llm_threads} thread, prefix cache",
            "threads=2": "llama.cpp, 2 threads, prefix cache",
            "no-prefix-cache": f"llama.cpp, {rw.llm_threads} thread, no prefix cache",
            "transformers": "transformers (fp32, same weights), prefix cache",
        }.get(name, name)
        rate = f"{statistics.median(rates):.1f}" if rates else "n/a"
        pre = f"{statistics.median(prefill):.2f}" if any(prefill) else "n/a"
        print(
            f"| {label} | {first[name]:.2f} | {statistics.median(times):.2f} | "
            f"{times[int(0.9 * (len(times) - 1))]:.2f} | {rate} | {pre} | "
            f"{same}/{len(results)} |"
        )
    print(f"\n{len(subjects)} requests, interleaved; load after: {_load()}")
    for name in ("reference", "transformers"):
        if name in rows:
            print(f"\n{name} wrote, e.g.: {rows[name][0][1]!r}")
    return 0
