"""Embedders: the ONNX MiniLM matches a numpy BERT from the same weights; the HTTP client against a fake."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import numpy as np
import pytest
from tokenizers import Tokenizer

from servers.code_search import minilm, minilm_graph, static_embed
from servers.code_search.embed import Embedder, HashingEmbedder, make_embedder
from servers.code_search.openai_embed import OpenAIEmbedder
from servers.common.errors import RateLimited, UpstreamFailure

SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w + b


def _numpy_minilm(weights: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """all-MiniLM-L6-v2 for one unpadded sequence, written from the BERT paper, in float64."""
    from math import erf

    w = {k: v.astype(np.float64) for k, v in weights.items()}
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = _layer_norm(
        x + w["embeddings.token_type_embeddings.weight"][0],
        w["embeddings.LayerNorm.weight"],
        w["embeddings.LayerNorm.bias"],
    )
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))
    for i in range(6):
        p = f"encoder.layer.{i}"

        def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return h @ w[f"{p}.{name}.weight"].T + w[f"{p}.{name}.bias"]

        q, k, v = (
            dense(x, f"attention.self.{t}").reshape(n, 12, 32).transpose(1, 0, 2) for t in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(32)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, 384)
        x = _layer_norm(
            dense(ctx, "attention.output.dense") + x,
            w[f"{p}.attention.output.LayerNorm.weight"],
            w[f"{p}.attention.output.LayerNorm.bias"],
        )
        h = dense(gelu(dense(x, "intermediate.dense")), "output.dense")
        x = _layer_norm(h + x, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"])
    mean = x.mean(0)
    return mean / np.linalg.norm(mean)


def _models_dir(path: Path) -> Path:
    """A model directory holding (a link to) the installed weights and nothing built yet."""
    weights = minilm.weights_dir()
    (path / weights.name).symlink_to(weights, target_is_directory=True)
    return path


@pytest.fixture(scope="module")
def fp32(tmp_path_factory: pytest.TempPathFactory) -> minilm.MiniLMEmbedder:
    return minilm.MiniLMEmbedder(cache_dir=_models_dir(tmp_path_factory.mktemp("models")), quantized=False)


@pytest.fixture(scope="module")
def int8() -> minilm.MiniLMEmbedder:
    return minilm.MiniLMEmbedder()


def test_onnx_graph_matches_a_numpy_reference_from_the_same_weights(fp32: minilm.MiniLMEmbedder) -> None:
    weights = minilm_graph.load_safetensors(minilm.weights_dir() / "model.safetensors")
    tokenizer = Tokenizer.from_file(str(minilm.weights_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    got = fp32.embed(SENTENCES)  # batched with padding: the mask must make padding irrelevant
    for row, sentence in enumerate(SENTENCES):
        expected = _numpy_minilm(weights, tokenizer.encode(sentence).ids)
        assert np.abs(got[row] - expected).max() < 2e-5


def test_paraphrases_score_as_published_and_int8_stays_close(
    fp32: minilm.MiniLMEmbedder, int8: minilm.MiniLMEmbedder
) -> None:
    a = fp32.embed(SENTENCES)
    # sentence-transformers documents cos = 0.7553 for the first pair with this model
    assert abs(float(a[0] @ a[1]) - 0.7553) < 1e-3
    assert float(a[0] @ a[2]) < 0.1
    b = int8.embed(SENTENCES)
    assert np.all(np.sum(a * b, axis=1) > 0.99)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert int8.model_id != fp32.model_id  # different vectors, different tables


def test_a_query_embedded_alone_gets_the_vector_of_the_batch_session(
    fp32: minilm.MiniLMEmbedder, int8: minilm.MiniLMEmbedder
) -> None:
    for embedder in (fp32, int8):
        for sentence in SENTENCES:  # one text runs on the query session (one thread); run_ids on the batch one
            on_batch_session = embedder.run_ids(np.array([embedder._tokenizer.encode(sentence).ids], dtype=np.int64))
            assert np.abs(embedder.embed([sentence])[0] - on_batch_session[0]).max() < 1e-5
    batch = fp32.embed(SENTENCES)  # int8 quantizes each batch dynamically, so only fp32 is padding-exact
    assert all(np.abs(fp32.embed([s])[0] - batch[row]).max() < 2e-5 for row, s in enumerate(SENTENCES))
    assert all(e._query_session is not None and e._query_session is not e._session for e in (fp32, int8))


def test_bge_small_is_the_cls_state_of_its_onnx_graph_normalized_and_orders_paraphrases_first() -> None:
    # The weights were installed by `goresolve model install --embedder bge-small` (scripts/test.sh).
    bge = make_embedder("bge-small")
    assert isinstance(bge, minilm.BgeSmallEmbedder) and bge.model_id == "bge-small-en-v1.5-int8" and bge.dim == 384
    vectors = bge.embed(SENTENCES)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.1
    ids = np.array([bge._tokenizer.encode(SENTENCES[0]).ids], dtype=np.int64)
    (hidden,) = bge._session.run(
        None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}
    )
    cls = hidden[0, 0] / np.linalg.norm(hidden[0, 0])
    assert np.abs(bge.embed([SENTENCES[0]])[0] - cls).max() < 1e-5  # a query alone: one-thread session, same vector
    assert bge._query_session is not None and bge._query_session is not bge._session
    assert bge.model_id != make_embedder("minilm").model_id  # another vector space: another table


def test_hashing_embedder_is_deterministic_and_code_aware() -> None:
    e = make_embedder("hashing", dim=64)
    assert isinstance(e, Embedder) and isinstance(e, HashingEmbedder)
    v = e.embed(["parseHTTPHeader", "parse http header", "close the database"])
    assert np.array_equal(v, e.embed(["parseHTTPHeader", "parse http header", "close the database"]))
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("nope")


def _fake(responses: list[httpx.Response], seen: list[dict[str, object]]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return responses.pop(0)

    return httpx.Client(transport=httpx.MockTransport(handler))


def _ok(n: int, dim: int = 3) -> httpx.Response:
    data = [{"index": i, "embedding": [float(i + 1)] + [0.0] * (dim - 1)} for i in reversed(range(n))]
    return httpx.Response(200, json={"data": data})


def test_openai_client_batches_orders_by_index_and_normalizes() -> None:
    seen: list[dict[str, object]] = []
    client = _fake([_ok(2), _ok(1)], seen)
    e = OpenAIEmbedder("http://fake/v1/", "m", 3, client=client, batch_size=2, backoff=0)
    v = e.embed(["a", "b", "c"])
    assert [s["input"] for s in seen] == [["a", "b"], ["c"]] and seen[0]["model"] == "m"
    assert np.allclose(v, [[1, 0, 0], [1, 0, 0], [1, 0, 0]])
    assert e.model_id == "openai-m-3"


def test_openai_client_never_sends_a_credential_in_the_code() -> None:
    seen: list[dict[str, object]] = []
    e = OpenAIEmbedder("http://fake/v1", "m", 3, client=_fake([_ok(2)], seen), backoff=0)
    e.embed(['const key = "AKIAZ7Q4W2XK9LMN3PRT"', "func Add(a, b int) int"])
    assert seen[0]["input"] == ['const key = "[credential removed: aws_access_key]"', "func Add(a, b int) int"]


def test_openai_client_retries_then_reports_upstream_errors() -> None:
    seen: list[dict[str, object]] = []
    retry = httpx.Response(429, headers={"retry-after": "0"})
    assert OpenAIEmbedder("http://f", "m", 3, client=_fake([retry, _ok(1)], seen), backoff=0).embed(["x"]).shape == (
        1,
        3,
    )
    with pytest.raises(RateLimited):
        OpenAIEmbedder("http://f", "m", 3, client=_fake([retry] * 3, seen), retries=2, backoff=0).embed(["x"])
    with pytest.raises(UpstreamFailure, match="service error"):
        OpenAIEmbedder("http://f", "m", 3, client=_fake([httpx.Response(503)] * 2, seen), retries=1, backoff=0).embed(
            ["x"]
        )
    with pytest.raises(UpstreamFailure, match="malformed"):
        OpenAIEmbedder("http://f", "m", 3, client=_fake([httpx.Response(200, text="{}")], seen)).embed(["x"])
    with pytest.raises(UpstreamFailure, match="shape"):
        OpenAIEmbedder("http://f", "m", 4, client=_fake([_ok(1)], seen)).embed(["x"])
    with pytest.raises(UpstreamFailure, match="refused"):
        OpenAIEmbedder("http://f", "m", 3, client=_fake([httpx.Response(401)], seen)).embed(["x"])


def test_model_is_built_once_and_cached(tmp_path: Path, fp32: minilm.MiniLMEmbedder) -> None:
    del fp32
    models = _models_dir(tmp_path)
    first = minilm.ensure_model(models, quantized=False)
    mtime = first.stat().st_mtime_ns
    assert minilm.ensure_model(models, quantized=False) == first and first.stat().st_mtime_ns == mtime
    assert minilm.built_model(models, quantized=False) == first
    assert minilm.built_model(tmp_path / "nothing-installed") is None
    built = sorted(p.name for p in models.iterdir() if not p.is_symlink())
    assert built == [first.name]  # no temporary files left behind


def test_distillation_runs_every_piece_alone_and_centres_the_table() -> None:
    seen: list[np.ndarray] = []

    def teacher(ids: np.ndarray) -> np.ndarray:
        seen.append(ids)
        return np.stack([ids[:, 1].astype(np.float32), np.ones(len(ids), np.float32)], axis=1)

    table = static_embed.distill(teacher, 2500, cls=101, sep=102)
    assert table.shape == (2500, 2) and np.allclose(table.mean(axis=0), 0.0, atol=1e-3)
    assert all((batch[:, 0] == 101).all() and (batch[:, 2] == 102).all() for batch in seen)
    assert np.concatenate([batch[:, 1] for batch in seen]).tolist() == list(range(2500))


def test_static_embedder_is_a_weighted_mean_of_distilled_pieces(int8: minilm.MiniLMEmbedder) -> None:
    tokenizer = Tokenizer.from_file(str(minilm.weights_dir() / "tokenizer.json"))
    texts = [*SENTENCES, "func (r *Router) Match(req *http.Request) bool"]
    pieces = sorted({i for t in texts for i in tokenizer.encode(t, add_special_tokens=False).ids})
    table = np.zeros((tokenizer.get_vocab_size(), 384), np.float32)
    ids = np.asarray(pieces, np.int64)
    table[ids] = int8.run_ids(np.stack([np.full_like(ids, 101), ids, np.full_like(ids, 102)], axis=1))
    table[ids] -= table[ids].mean(axis=0)  # as distill centres (over these pieces only, here)
    static = static_embed.StaticEmbedder.from_parts(table, tokenizer)
    got = static.embed(texts)
    weights = static_embed.sif_weights(table.shape[0], tokenizer.token_to_id("the") or 0)
    first = tokenizer.encode(texts[0], add_special_tokens=False).ids
    expected = weights[first] @ table[first]
    assert np.allclose(got[0], expected / np.linalg.norm(expected), atol=1e-5)
    assert float(got[0] @ got[1]) > float(got[0] @ got[2])  # the paraphrase stays closer than the unrelated one
    assert weights[tokenizer.token_to_id("the")] < 0.02 < 0.9 < weights[tokenizer.token_to_id("request")]
    assert static.embed([""]).shape == (1, 384) and static.model_id.startswith("minilm-static")


def test_quantizing_keeps_the_quantizers_preprocessing_advice_off_the_screen(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "fp32.onnx")
    with caplog.at_level(logging.INFO):
        minilm_graph.quantize(tmp_path / "fp32.onnx", tmp_path / "int8.onnx")
    assert (tmp_path / "int8.onnx").stat().st_size > 0
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
    assert not logging.getLogger().filters  # the filter does not outlive the call
