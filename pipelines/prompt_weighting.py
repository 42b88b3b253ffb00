"""Prompt weighting and long prompts, the AUTOMATIC1111 way, for CLIP-conditioned pipelines.

Syntax (as in AUTOMATIC1111's web UI):

- ``(word:1.3)``: weight 1.3; ``(word)``: x1.1; ``((word))``: x1.21; ``[word]``: /1.1.
- ``\\(``, ``\\)``, ``\\[``, ``\\]``, ``\\\\``: literal brackets and backslash.
- An unbalanced bracket is kept as a literal character (A1111 would weight the rest of the
  prompt instead); a stray ``)`` or ``]`` is literal too. Nothing here raises on odd input.

Encoding: the prompt is tokenized chunk by chunk (no start/end tokens), cut into windows of
75 tokens, and each window is encoded as its own 77-token CLIP sequence
(``<start> tokens <end> <pad>...``, the layout of the pipeline's own ``encode_prompt``). The
per-token hidden states are scaled by their weights and the window's original mean is
restored; windows are concatenated along the sequence axis (75 tokens each), and the
negative prompt is padded with empty windows to the same length. A plain prompt of up to 75
tokens therefore gives exactly the pipeline's own embeddings.

compel was considered: it speaks its own syntax (``word++``, ``(word)1.3``), not A1111's,
and weights by blending rather than A1111's scale-and-restore-the-mean, so it is not used.
"""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ROUND_MULTIPLIER = 1.1  # "(word)" raises the weight by 10 %
SQUARE_MULTIPLIER = 1 / 1.1  # "[word]" lowers it by the same factor
CHUNK_TOKENS = 75  # prompt tokens per CLIP window; + start and end tokens = 77
MEAN_FLOOR = 1e-3  # restore the mean only when it is above this fraction of the mean |value|

# One token of the attention syntax per match, in A1111's order (escapes first).
_RE_ATTENTION = re.compile(
    r"""
    \\\(|\\\)|\\\[|\\\]|\\\\|\\|    # escaped brackets and backslashes
    \(|\[|                          # openers
    :\s*([+-]?[.\d]+)\s*\)|         # ":1.3)" closes a round bracket with a weight
    \)|\]|                          # closers
    [^\\()\[\]:]+|                  # plain text
    :                               # a colon that is not a weight
    """,
    re.X,
)


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split a prompt into (text, weight) chunks.

    Parameters
    ----------
    text: a prompt in AUTOMATIC1111 syntax, e.g. ``"a (red:1.3) fox, [blurry]"``.

    Returns
    -------
    Chunks in order, neighbours of equal weight merged, e.g.
    ``[("a ", 1.0), ("red", 1.3), (" fox, ", 1.0), ("blurry", 0.909...)]``;
    ``[("", 1.0)]`` for an empty prompt.
    """
    # Each item is [text, weight]; an opener leaves a literal placeholder that is emptied
    # when its closer turns up, so an unclosed bracket stays in the text as typed.
    res: list[list[Any]] = []
    round_open: list[int] = []  # indices of "(" placeholders in res
    square_open: list[int] = []

    def multiply_after(opener: int, factor: float) -> None:
        res[opener][0] = ""
        for item in res[opener + 1 :]:
            item[1] *= factor

    # 1. Walk the tokens of the syntax.
    for match in _RE_ATTENTION.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            res.append([token[1:] or "\\", 1.0])
        elif token in ("(", "["):
            (round_open if token == "(" else square_open).append(len(res))
            res.append([token, 1.0])
        elif weight is not None and round_open and _is_float(weight):
            multiply_after(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            multiply_after(round_open.pop(), ROUND_MULTIPLIER)
        elif token == "]" and square_open:
            multiply_after(square_open.pop(), SQUARE_MULTIPLIER)
        else:
            res.append([token, 1.0])  # text, or a stray closer / ":0.5)" kept literally
    # 2. Drop emptied placeholders and merge neighbours of the same weight.
    chunks: list[tuple[str, float]] = []
    for chunk_text, chunk_weight in res:
        if not chunk_text:
            continue
        if chunks and chunks[-1][1] == chunk_weight:
            chunks[-1] = (chunks[-1][0] + chunk_text, chunk_weight)
        else:
            chunks.append((chunk_text, chunk_weight))
    return chunks or [("", 1.0)]


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class PromptPlan:
    """How a prompt pair will be encoded."""

    weighted: bool  # some weight differs from 1.0
    n_chunks: int  # 75-token windows, the larger of prompt and negative
    plain: bool  # the pipeline's own encoder gives the same result (no weights, escapes, overflow)


def plan_prompt(tokenizer, prompt: str, negative_prompt: str = "") -> PromptPlan:
    """Decide whether a prompt pair needs ``encode_prompt`` or can go to the pipeline as text.

    Parameters
    ----------
    tokenizer: the pipeline's CLIP tokenizer.
    prompt, negative_prompt: the texts in A1111 syntax.

    Returns
    -------
    A ``PromptPlan``.
    """
    weighted, plain, n_chunks = False, True, 1
    for text in (prompt, negative_prompt or ""):
        chunks = parse_prompt_attention(text)
        ids, weights = _tokenize(tokenizer, chunks)
        weighted = weighted or any(w != 1.0 for w in weights)
        literal = "".join(t for t, _ in chunks) == text  # no escapes or brackets consumed
        plain = plain and literal and len(ids) <= CHUNK_TOKENS
        n_chunks = max(n_chunks, _n_windows(len(ids)))
    return PromptPlan(weighted=weighted, n_chunks=n_chunks, plain=plain and not weighted)


def supports(pipe) -> bool:
    """True for pipelines with one CLIP tokenizer + text encoder that take ``prompt_embeds``.

    SDXL (two text encoders), pipelines that also need pooled embeddings (the latent x2
    upscaler) and pipelines without a ``prompt_embeds`` argument are not supported; they
    get the text as it is.
    """
    if getattr(pipe, "tokenizer", None) is None or getattr(pipe, "text_encoder", None) is None:
        return False
    if getattr(pipe, "text_encoder_2", None) is not None:
        return False
    names = inspect.signature(pipe.__call__).parameters
    if "pooled_prompt_embeds" in names:  # the latent upscaler also wants pooled outputs
        return False
    return "prompt_embeds" in names and "negative_prompt_embeds" in names


def encode_prompt(
    pipe,
    prompt: str,
    negative_prompt: str = "",
    device: Any = None,
    *,
    with_negative: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode a prompt pair with A1111 weights and no 77-token limit.

    Parameters
    ----------
    pipe: a Stable Diffusion 1.x/2.x pipeline (``tokenizer``, ``text_encoder``).
    prompt, negative_prompt: texts in A1111 syntax; the negative may be empty.
    device: where the embeddings go; None = the pipeline's execution device.
    with_negative: False skips the negative (a run without guidance never reads it).

    Returns
    -------
    (prompt_embeds, negative_prompt_embeds), each (1, 77 * n, hidden) in the text encoder's
    dtype, with the same ``n`` (windows) for both; the negative is None without
    ``with_negative``.
    """
    import torch

    tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
    device = device if device is not None else pipe._execution_device
    # 1. Tokenize both texts with their weights; the longer sets the number of windows.
    pos = _tokenize(tokenizer, parse_prompt_attention(prompt))
    neg = _tokenize(tokenizer, parse_prompt_attention(negative_prompt or ""))
    n_windows = _n_windows(len(pos[0]))
    if with_negative:
        n_windows = max(n_windows, _n_windows(len(neg[0])))
    # 2. Encode each window, weight it, and join along the sequence axis.
    texts = (pos, neg) if with_negative else (pos,)
    with torch.no_grad():
        embeds = [_encode_windows(tokenizer, encoder, *t, n_windows, device) for t in texts]
    if n_windows > 1:
        logger.info("Prompt encoded in %d windows of %d tokens", n_windows, CHUNK_TOKENS)
    return embeds[0], embeds[1] if with_negative else None


def _tokenize(tokenizer, chunks: list[tuple[str, float]]) -> tuple[list[int], list[float]]:
    """Token ids (no start/end) of the chunks and one weight per token."""
    texts = [text for text, _ in chunks]
    encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
    ids: list[int] = []
    weights: list[float] = []
    for token_ids, (_, weight) in zip(encoded.input_ids, chunks, strict=True):
        ids += token_ids
        weights += [weight] * len(token_ids)
    return ids, weights


def _n_windows(n_tokens: int) -> int:
    return max(1, -(-n_tokens // CHUNK_TOKENS))


def _encode_windows(tokenizer, encoder, ids, weights, n_windows, device) -> torch.Tensor:
    """Encode ``ids`` as ``n_windows`` 77-token CLIP sequences, weighted, concatenated."""
    import torch

    length = CHUNK_TOKENS + 2
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    use_mask = bool(getattr(encoder.config, "use_attention_mask", False))
    outputs = []
    for window in range(n_windows):
        # 1. <start> tokens <end> <pad>...: the layout of tokenizer(padding="max_length").
        part = ids[window * CHUNK_TOKENS : (window + 1) * CHUNK_TOKENS]
        part_w = weights[window * CHUNK_TOKENS : (window + 1) * CHUNK_TOKENS]
        n_pad = length - len(part) - 2
        seq = torch.tensor([[bos, *part, eos] + [pad] * n_pad], device=device)
        w = torch.tensor([1.0, *part_w, 1.0] + [1.0] * n_pad)
        mask = None
        if use_mask:
            mask = torch.tensor([[1] * (len(part) + 2) + [0] * n_pad], device=device)
        hidden = encoder(seq, attention_mask=mask)[0].to(dtype=encoder.dtype, device=device)
        # 2. Scale each token's hidden state by its weight, then restore the window's mean.
        #    A window whose mean is ~0 (a final LayerNorm without bias, e.g. random test
        #    encoders) has no mean to restore: dividing by it would give inf/NaN.
        if bool((w != 1.0).any()):
            original_mean = hidden.float().mean()
            scaled = hidden.float() * w.to(device)[None, :, None]
            new_mean = scaled.mean()
            floor = MEAN_FLOOR * hidden.float().abs().mean()
            if original_mean.abs() > floor and new_mean.abs() > floor:
                scaled = scaled * (original_mean / new_mean)
            hidden = scaled.to(hidden.dtype)
        outputs.append(hidden)
    return torch.cat(outputs, dim=1)
