"""The text arguments of one denoising run, and a cache of prompt embeddings.

A run gets its prompts as plain text (the pipeline encodes them itself), or as embeddings
from ``pipelines.prompt_weighting`` when the prompt carries A1111 weights or is longer than
one 75-token CLIP window. With the prompt cache on (``image.cpu_speedups: [prompt_cache]``)
every prompt a pipeline can take as embeddings is encoded once and reused: a new seed, a
variation or an edit of the same picture skips the text encoder (0.1-0.4 s of a 3 s SD-Turbo
image on a CPU). For a plain prompt the embeddings are exactly the pipeline's own (same
tokens, same layout), so the picture is the same pixels with the cache on or off.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

logger = logging.getLogger(__name__)

PROMPT_CACHE_SIZE = 16  # prompt pairs kept; each is (1, 77 * windows, hidden) floats, ~0.3 MB


class PromptEncoder:
    """Turns a run's prompts into pipeline arguments, optionally through an embedding cache.

    Parameters
    ----------
    cache: keep the embeddings of the last ``PROMPT_CACHE_SIZE`` prompt pairs.
    """

    def __init__(self, cache: bool = False):
        self.cache_enabled = cache
        self._cache: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0  # cache hits so far (the benchmark reports them)

    def arguments(self, pipe, params: dict[str, Any], autocast: bool = False) -> dict[str, Any]:
        """The text arguments of one run: the prompts as text, or weighted / long-prompt /
        cached embeddings. Records ``prompt_chunks`` (75-token windows) and
        ``prompt_weighting`` (weights applied) in ``params``.

        Parameters
        ----------
        pipe: the pipeline about to run.
        params: the run's parameters (``prompt``, ``negative_prompt``, ``guidance``,
            ``operation``).
        autocast: the run is under bf16 autocast (cached embeddings are kept apart).
        """
        from pipelines import prompt_weighting

        prompt, negative = params["prompt"], params["negative_prompt"]
        text = {"prompt": prompt, "negative_prompt": negative or None}
        if getattr(pipe, "tokenizer", None) is None:
            return text
        plan = prompt_weighting.plan_prompt(pipe.tokenizer, prompt, negative)
        supported = prompt_weighting.supports(pipe)
        params["prompt_chunks"] = plan.n_chunks if supported else 1
        params["prompt_weighting"] = plan.weighted and supported
        if plan.plain and not (supported and self.cache_enabled):
            return text
        if not supported:
            logger.warning(
                "%s: prompt weights and long prompts are not supported by %s; "
                "the text goes in as typed",
                params["operation"],
                type(pipe).__name__,
            )
            for name, value in (("prompt", prompt), ("negative_prompt", negative)):
                if value:
                    warn_if_truncated(pipe, value, name)
            return text
        if plan.n_chunks > 1:
            logger.info(
                "`prompt` is over %d CLIP tokens: encoded in %d windows, not truncated",
                prompt_weighting.CHUNK_TOKENS,
                plan.n_chunks,
            )
        # Without guidance (<= 1) the pipeline never reads the negative: a plain prompt then
        # skips encoding it, as the pipeline's own path does. Weighted prompts keep both.
        with_negative = not plan.plain or float(params.get("guidance") or 0.0) > 1.0
        embeds, negative_embeds = self._encode(pipe, prompt, negative, with_negative, autocast)
        args = {"prompt_embeds": embeds}
        if negative_embeds is not None:
            args["negative_prompt_embeds"] = negative_embeds
        elif negative:
            args["negative_prompt"] = negative
        return args

    def _encode(self, pipe, prompt: str, negative: str, with_negative: bool, autocast: bool):
        from pipelines import prompt_weighting

        def encode():
            return prompt_weighting.encode_prompt(
                pipe, prompt, negative, with_negative=with_negative
            )

        if not self.cache_enabled:
            return encode()
        encoder = pipe.text_encoder
        key = (id(encoder), str(encoder.dtype), prompt, negative, with_negative, autocast)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return found
        found = encode()
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > PROMPT_CACHE_SIZE:
                self._cache.popitem(last=False)
        return found

    def clear(self) -> None:
        """Forget every cached embedding (after the text encoder changed)."""
        with self._lock:
            self._cache.clear()


def warn_if_truncated(pipe, text: str, name: str) -> None:
    """Log when ``text`` is longer than the pipeline's tokenizer reads."""
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None:
        return
    backend = getattr(tokenizer, "backend_tokenizer", None)  # fast path, no length warning
    if backend is not None:
        n_tokens = len(backend.encode(text).ids)
    else:
        n_tokens = len(tokenizer.tokenize(text)) + 2  # + start and end tokens
    if n_tokens > tokenizer.model_max_length:
        logger.warning(
            "`%s` is %d CLIP tokens; only the first %d are read, the rest is truncated",
            name,
            n_tokens,
            tokenizer.model_max_length,
        )
