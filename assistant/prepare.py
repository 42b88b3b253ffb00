"""Convert and cache the packaged offline weights once, so the first start is not the slow one."""

from __future__ import annotations

import logging
import time

from assistant.config import Config
from assistant.llm import is_gguf_source, packaged_transformers_folder
from assistant.llm_gguf import resolve_gguf

logger = logging.getLogger(__name__)


def prepare(config: Config) -> int:
    """Build every cache the configured profile reads; returns a process exit code."""
    from pipelines.clip_tokenizer import build_clip_tokenizer
    from voice.whisper_weights import packaged_checkpoint

    cache = config.cache_dir

    def tokenizer():
        build_clip_tokenizer(cache / "clip-tokenizer")
        return cache / "clip-tokenizer"

    steps = [("CLIP tokenizer", tokenizer)]
    if config.asr.model.startswith("packaged:"):
        steps.append(("Whisper checkpoint", lambda: packaged_checkpoint(cache / "whisper")))
    rw = config.rewrite
    if is_gguf_source(rw.llm) and rw.llm_backend == "transformers":
        steps.append(("LLM (de-quantised)", lambda: packaged_transformers_folder(rw.llm, cache)))
    elif is_gguf_source(rw.llm):  # joined once, size and sha256 checked (again) here
        steps.append(("LLM (GGUF)", lambda: resolve_gguf(rw.llm, cache, verify=True)))
    if rw.router:  # the example embeddings, so the first start does not compute them
        from assistant.build import build_router  # noqa: PLC0415 (loads the sentence encoder)

        steps.append(("intent router", lambda: build_router(config) and cache / "router"))
    if is_gguf_source(rw.llm) and rw.llm_backend != "transformers":
        steps.append(("LLM prompt states", lambda: _save_prompt_states(config)))
    for name, step in steps:
        start = time.perf_counter()
        where = step()
        logger.info("prepare: %s ready (%.1f s): %s", name, time.perf_counter() - start, where)
    return 0


def _save_prompt_states(config: Config):
    """The KV states of the rewriter's and planner's fixed prompts, so a start loads them in
    milliseconds instead of evaluating ~12 s of prompt each on one CPU thread."""
    from assistant.build import build_llm, build_rewriter, warmed_prompts  # noqa: PLC0415
    from assistant.planner import LLMPlanner  # noqa: PLC0415

    llm = build_llm(config)
    planner = LLMPlanner(llm) if config.rewrite.plan_with_llm and llm is not None else None
    prompts = warmed_prompts(build_rewriter(config, "cpu", llm), planner)
    done = {name: prompt.warm_up() for name, prompt in prompts}
    llm.close()
    return config.cache_dir / "llm-state", done
