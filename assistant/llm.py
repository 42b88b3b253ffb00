"""The LLM behind the planner, the rewriter and the translator: one ``ChatLLM``, loaded once.

``load_chat_llm`` picks the runtime. GGUF sources (the packaged models, a ``.gguf`` path) run
through llama.cpp (``assistant.llm_gguf``), the offline default; hub ids and local model
folders run through transformers (``TransformersChat`` below), the ``hub`` profile's path.
``rewrite.llm_backend`` forces one: transformers can also read a packaged GGUF (de-quantised
once into a cached folder; slow: it is there to compare the runtimes on the same weights).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

from assistant.errors import AssistantError
from assistant.llm_chat import (
    CallStats,
    ChatLLM,
    ChatMessages,
    answer_prefix,
    check_messages,
    parse_json_answer,
    plain_transcript,
)
from assistant.llm_gguf import PACKAGED_GEMMA, PACKAGED_GGUFS, LlamaCppChat, resolve_gguf

logger = logging.getLogger(__name__)

Backend = Literal["auto", "llama.cpp", "transformers"]


def is_gguf_source(source: str) -> bool:
    return source in PACKAGED_GGUFS or source == PACKAGED_GEMMA or source.endswith(".gguf")


def _atomic_copy_dir(build: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    os.replace(build, target)


def packaged_transformers_folder(source: str, cache_dir: Path) -> Path:
    """A packaged GGUF de-quantised once into a bf16 transformers folder (about a minute)."""
    gguf_path = resolve_gguf(source, cache_dir)
    target = cache_dir / "llm" / f"{gguf_path.stem}-bf16"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    logger.info("De-quantising %s once for transformers (about a minute on 2 cores)", gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.bfloat16
    )
    # A GGUF-loaded model remembers its quantizer; saving needs it forgotten.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    build = Path(tempfile.mkdtemp(dir=target.parent, prefix=".build-"))
    model.save_pretrained(build)
    tokenizer.save_pretrained(build)
    _atomic_copy_dir(build, target)
    logger.info(
        "Cached %s for transformers in %s (%.1f s)", source, target, time.perf_counter() - start
    )
    return target


def packaged_gemma_folder(cache_dir: Path) -> Path:
    """The Gemma 3 270M base model as a transformers folder (kept for the transformers path)."""
    return packaged_transformers_folder(PACKAGED_GEMMA, cache_dir)


class TransformersChat:
    """A causal LM through transformers, behind the ``ChatLLM`` interface.

    Greedy. Stops on token ids (end of turn, and every token whose text holds a stop string):
    transformers' own ``stop_strings`` cost ~1.35 s before the first token of every call on
    this CPU. The KV cache (``past_key_values``) of the longest common token prefix with the
    previous call is kept, so the fixed instructions and examples are evaluated once. A
    ``json_schema`` is asked for in the prompt by the caller and checked after decoding
    (``ValueError`` when the answer does not fit); nothing constrains the decoding here.

    Parameters
    ----------
    source: a hub id, a local folder, or a packaged GGUF setting (de-quantised once).
    cache_dir: the assistant's cache (for packaged sources).
    device: "cpu", "cuda", "mps".
    prefix_cache: keep the common prefix's KV cache between calls (off only to measure it).
    repeat_penalty: transformers' repetition penalty for free text (1.0: none).
    """

    def __init__(
        self,
        source: str,
        cache_dir: Path,
        device: str = "cpu",
        prefix_cache: bool = True,
        repeat_penalty: float = 1.0,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder: str | Path = source
        if is_gguf_source(source):
            folder = packaged_transformers_folder(source, cache_dir)
        elif source.startswith("packaged:"):
            raise AssistantError("model-missing", _unknown_packaged(source))
        elif source.startswith(("/", ".", "~")):
            folder = Path(source).expanduser()
            if not folder.exists():
                raise AssistantError("model-missing", f"rewrite.llm: no model folder at {folder}")
        start = time.perf_counter()
        dtype = torch.float16 if device == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
        except (OSError, ValueError) as e:
            raise AssistantError(
                "model-missing",
                f"rewrite.llm: could not load {source!r} ({e.__class__.__name__}). Use a hub id "
                "(the hub profile: Qwen/Qwen2.5-0.5B-Instruct), a local model folder, a .gguf "
                "file, a packaged model, or none (the deterministic rewriter).",
            ) from e
        self.model.eval()
        self.name = source
        self.device = device
        self.prefix_cache = prefix_cache
        self.repeat_penalty = repeat_penalty
        self._end_ids = self._end_of_turn_ids()
        self._stop_ids: dict[tuple[str, ...], list[int]] = {}
        self._cache = None  # a DynamicCache holding self._cached_ids
        self._cached_ids: list[int] = []
        self._lock = threading.Lock()
        self.last_new_ids: list[int] = []
        self.last_stats = CallStats()
        logger.info("Loaded %s through transformers in %.1f s", source, time.perf_counter() - start)

    def _end_of_turn_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        # Gemma's converted tokenizer does not mark <start_of_image> special, but the base
        # model ends a text with it.
        for token in ("<|im_end|>", "<end_of_turn>", "<start_of_image>"):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id:
                ids.add(token_id)
        return sorted(i for i in ids if isinstance(i, int))

    def stop_token_ids(self, stop: list[str]) -> list[int]:
        """Ids of every vocabulary token whose text holds one of ``stop`` (decoded once)."""
        key = tuple(sorted(stop))
        if key not in self._stop_ids:
            texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
            self._stop_ids[key] = [i for i, t in enumerate(texts) if any(s in t for s in stop)]
        return self._stop_ids[key]

    # --- the ChatLLM interface ------------------------------------------------------------
    def chat(
        self,
        messages: ChatMessages,
        *,
        json_schema: dict | None = None,
        max_tokens: int = 96,
        stop: list[str] | None = None,
    ) -> str:
        check_messages(messages)
        head, prefix = answer_prefix(messages)
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(
                head, add_generation_prompt=True, tokenize=False
            )
        else:  # a base model without a template
            text = plain_transcript(head)
        answer = self.complete(text + prefix, max_tokens=max_tokens, stop=stop)
        return parse_json_answer(answer, json_schema, self.name) if json_schema else answer

    def complete(
        self,
        text: str,
        *,
        json_schema: dict | None = None,
        max_tokens: int = 96,
        stop: list[str] | None = None,
    ) -> str:
        """Greedy continuation of raw ``text``, cut at the first of ``stop``."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        with self._lock:
            answer = self._generate(ids, max_tokens, stop or [], json_schema is None)
        for s in stop or []:
            answer = answer.split(s, 1)[0]
        return parse_json_answer(answer, json_schema, self.name) if json_schema else answer

    def _generate(self, ids: list[int], max_tokens: int, stop: list[str], free_text: bool) -> str:
        import torch
        from transformers import DynamicCache

        start = time.perf_counter()
        keep = 0
        if self.prefix_cache and self._cache is not None:
            keep = min(_common_prefix(self._cached_ids, ids), len(ids) - 1)
        if keep > 0:
            # A negative count removes that many tokens from the end (the form every version
            # of transformers' Cache.crop takes).
            self._cache.crop(keep - self._cache.get_seq_length())
            cache = self._cache
        else:
            cache = DynamicCache(config=self.model.config)
        input_ids = torch.tensor([ids], device=self.device)
        penalty = self.repeat_penalty if free_text else 1.0
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                past_key_values=cache,
                max_new_tokens=max_tokens,
                do_sample=False,
                repetition_penalty=penalty,
                eos_token_id=self._end_ids + (self.stop_token_ids(stop) if stop else []),
                pad_token_id=self.tokenizer.pad_token_id or self._end_ids[0],
            )
        new_ids = out[0, len(ids) :].tolist()
        self.last_new_ids = new_ids
        # generate() hides where prefill ends; prefill_s stays 0 (total_s is what counts).
        self.last_stats = CallStats(len(ids), keep, len(new_ids), 0.0, time.perf_counter() - start)
        self._cache = cache if self.prefix_cache else None
        self._cached_ids = (ids + new_ids)[: cache.get_seq_length()] if self.prefix_cache else []
        return self.tokenizer.decode(new_ids, skip_special_tokens=True)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _unknown_packaged(source: str) -> str:
    known = ", ".join([*PACKAGED_GGUFS, PACKAGED_GEMMA])
    return (
        f"rewrite.llm: unknown packaged model {source!r}; use one of {known}, a .gguf file, "
        "a hub id, a local folder, or none."
    )


def load_chat_llm(
    source: str,
    cache_dir: Path,
    *,
    backend: Backend = "auto",
    device: str = "cpu",
    threads: int = 1,
    context_tokens: int = 4096,
    repeat_penalty: float = 1.3,
) -> ChatLLM | None:
    """The configured chat LLM, or None when ``source`` is "none".

    Parameters
    ----------
    source: ``rewrite.llm``: a packaged model, a .gguf path, a hub id, a local folder, "none".
    backend: "auto" runs GGUF sources through llama.cpp and everything else through
        transformers; "llama.cpp" / "transformers" force one.
    threads: llama.cpp threads (transformers uses torch's thread setting).
    """
    if source.strip().lower() in {"none", "off", ""}:
        return None
    if source.startswith("packaged:") and not is_gguf_source(source):
        raise AssistantError("model-missing", _unknown_packaged(source))
    chosen = (
        backend
        if backend != "auto"
        else ("llama.cpp" if is_gguf_source(source) else "transformers")
    )
    if chosen == "llama.cpp":
        if not is_gguf_source(source):
            raise AssistantError(
                "model-missing",
                f"rewrite.llm_backend is llama.cpp but rewrite.llm {source!r} is not a GGUF file; "
                "give a .gguf path or a packaged model, or set rewrite.llm_backend to auto.",
            )
        path = resolve_gguf(source, cache_dir)
        return LlamaCppChat(
            path,
            source,
            threads=threads,
            context_tokens=context_tokens,
            repeat_penalty=repeat_penalty,
            state_dir=cache_dir / "llm-state",
        )
    # transformers' repetition penalty also counts the prompt's tokens: keep it mild.
    return TransformersChat(source, cache_dir, device, repeat_penalty=min(repeat_penalty, 1.1))
