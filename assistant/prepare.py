"""Convert and cache the packaged offline weights once, so the first start is not the slow one."""

from __future__ import annotations

import logging
import time

from assistant.config import Config
from assistant.llm import PACKAGED_GEMMA, packaged_gemma_folder

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
    if config.rewrite.llm == PACKAGED_GEMMA:
        steps.append(("rewriter LLM", lambda: packaged_gemma_folder(cache)))
    for name, step in steps:
        start = time.perf_counter()
        where = step()
        logger.info("prepare: %s ready (%.1f s): %s", name, time.perf_counter() - start, where)
    return 0
