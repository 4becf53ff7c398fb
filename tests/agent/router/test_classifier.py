"""Classifiers: nearest labelled examples on a tiny bank, code-search's own vectors, and the gateway model mode."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from agent.llm import ChatRequest, ChatResponse, PriceBook, ScriptedModel, Usage, reply
from agent.policy import Budgets, Price
from agent.router.classifier import (
    ANSWER_SCHEMA,
    KnnClassifier,
    ModelClassifier,
    load_examples,
    load_params,
    row_names,
)
from agent.router.embedder import MAX_TOKENS, KeywordEmbedder, MiniLM, cached_embed
from agent.router.errors import ClassifierUnavailable
from agent.router.route import route
from agent.router.ticket import TicketFacts

from .conftest import TINY_BANK, vote_params


def test_the_nearest_labelled_examples_decide_on_a_tiny_bank(policy) -> None:  # type: ignore[no-untyped-def]
    embedder = KeywordEmbedder()
    knn = KnnClassifier(embedder, TINY_BANK, vote_params(embedder.model_id), policy)
    leak = knn.predict(TicketFacts.of("goroutine leak when the pool closes", "workers block on the channel"))
    assert leak.kind == "concurrency" and leak.tier == "strong"
    assert leak.neighbours[0][0] == "b/conc#1"
    readme = knn.predict(TicketFacts.of("typo in the README install section"))
    assert readme.kind == "docs" and readme.tier == "small" and readme.confidence > 0.9
    assert sum(readme.tiers.values()) == pytest.approx(1.0)


async def test_a_classifier_answer_is_routed_with_its_neighbours(policy) -> None:  # type: ignore[no-untyped-def]
    embedder = KeywordEmbedder()
    knn = KnnClassifier(embedder, TINY_BANK, vote_params(embedder.model_id), policy)
    decision = await route(
        TicketFacts.of("support a yaml config file", "load config from yaml"), policy, classifier=knn
    )
    assert (decision.tier, decision.kind, decision.decided_by) == ("strong", "feature", "classifier")
    assert decision.neighbours[0][0] == "c/feat#2" and decision.classifier == "knn-keywords-256"


def test_parameters_fitted_for_another_embedder_or_features_are_refused(policy) -> None:  # type: ignore[no-untyped-def]
    embedder = KeywordEmbedder()
    with pytest.raises(ClassifierUnavailable, match="fitted with the minilm"):
        KnnClassifier(embedder, TINY_BANK, vote_params("minilm-l6-int8"), policy)
    other = vote_params(embedder.model_id).model_copy(update={"features": ("vote_docs",)})
    with pytest.raises(ClassifierUnavailable, match="other features"):
        KnnClassifier(embedder, TINY_BANK, other, policy)


def test_the_shipped_bank_and_parameters_fit_together() -> None:
    examples, params = load_examples(), load_params()
    assert params.features == row_names() and params.embedder == f"minilm-l6-int8-t{MAX_TOKENS}"
    assert len(params.coef) == len(params.kinds) and all(len(row) == len(params.features) for row in params.coef)
    assert params.fitted_on["tickets"] == len(examples) and params.fitted_on["split"] == "dev"
    assert {e.kind for e in examples} == set(params.kinds)


def test_the_bank_cache_is_reused_and_keyed_by_model_and_texts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    embedder = KeywordEmbedder()
    first = cached_embed(embedder, ["a b", "c d"], tmp_path)
    assert len(list(tmp_path.glob("bank-*.npy"))) == 1
    assert np.array_equal(cached_embed(embedder, ["a b", "c d"], tmp_path), first)
    cached_embed(embedder, ["a b"], tmp_path)
    assert len(list(tmp_path.glob("bank-*.npy"))) == 2


def test_a_cache_directory_that_cannot_be_written_only_means_no_cache(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocked = tmp_path / "models"
    blocked.write_text("a file where the cache directory would be")  # as a read-only image's directory fails
    vectors = cached_embed(KeywordEmbedder(), ["a b", "c d"], blocked / "router")
    assert vectors.shape == (2, 256) and blocked.is_file() and list(tmp_path.glob("**/*.npy")) == []


def test_a_missing_model_is_named_with_the_command_that_installs_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClassifierUnavailable, match="goresolve model install"):
        MiniLM.load(tmp_path)


@pytest.mark.slow
def test_tickets_land_in_code_search_vector_space() -> None:
    """The router's loader gives exactly the vectors code-search's embedder gives for one text at a time.

    (Batched, code-search pads, and the int8 model quantizes activations per batch, so its vectors move
    slightly with the batch: cosine ~0.99 to these. The router embeds one ticket at a time.)
    """
    from servers.code_search.minilm import MiniLMEmbedder, default_cache_dir

    texts = ["goroutine leak in the worker pool", "Fix typo in README.md\n\npacakge -> package"]
    ours = MiniLM.load(default_cache_dir()).embed(texts)
    code_search = MiniLMEmbedder()
    theirs = np.vstack([code_search.embed([t]) for t in texts])
    assert ours.shape == theirs.shape == (2, 384)
    assert np.array_equal(ours, theirs)
    assert np.all((ours * code_search.embed(texts)).sum(axis=1) > 0.97)


# --- the model mode, with the scripted model ---------------------------------------------------


PRICES = PriceBook(Budgets(prices={"scripted": Price(input=0.15, output=0.6)}))


def _model_policy(policy):  # type: ignore[no-untyped-def]
    return policy.model_copy(update={"classifier": policy.classifier.model_copy(update={"mode": "model"})})


async def test_a_schema_answer_becomes_a_prediction_with_its_cost(policy) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel([reply("", ("route_ticket", {"kind": "docs", "confidence": 0.96, "reason": "README only"}))])
    prediction = await ModelClassifier(model, _model_policy(policy), PRICES).classify(TicketFacts.of("Typo"))
    assert (prediction.kind, prediction.tier) == ("docs", "small")
    assert prediction.tiers["small"] == pytest.approx(0.96 + 0.04 / 6)
    assert prediction.cost_usd > 0 and prediction.detail["reason"] == "README only"
    assert prediction.model == "scripted" and prediction.usage.input_tokens > 0
    request = model.requests[0]
    assert request.tools[0].parameters == ANSWER_SCHEMA and "<ticket>\nTypo\n</ticket>" in request.messages[1].content


async def test_an_answer_off_the_schema_is_retried_then_refused(policy) -> None:  # type: ignore[no-untyped-def]
    bad = reply("", ("route_ticket", {"kind": "urgent", "confidence": 0.9, "reason": "x"}))
    good = reply("", ("route_ticket", {"kind": "bug", "confidence": 0.8, "reason": "wrong output"}))
    model = ScriptedModel([bad, good])
    router_policy = _model_policy(policy)
    classifier = ModelClassifier(model, router_policy, PRICES)
    decision = await route(TicketFacts.of("Wrong sum"), router_policy, classifier=classifier)
    assert decision.kind == "bug" and len(model.requests) == 2 and decision.classifier_model == "scripted"
    assert decision.usage["input_tokens"] > 0 and decision.cost_usd == pytest.approx(
        PRICES.cost("scripted", Usage(decision.usage["input_tokens"], decision.usage["output_tokens"]))
    )
    assert "That answer was refused: kind:" in model.requests[1].messages[-1].content
    always_bad = ScriptedModel([bad, reply('{"kind": "docs"}')])
    with pytest.raises(ClassifierUnavailable, match="never matched the schema"):
        await ModelClassifier(always_bad, _model_policy(policy), PRICES).classify(TicketFacts.of("Wrong sum"))


async def test_extra_fields_and_plain_json_content(policy) -> None:  # type: ignore[no-untyped-def]
    extra = reply(json.dumps({"kind": "docs", "confidence": 0.9, "reason": "r", "tier": "small"}))
    plain = reply(json.dumps({"kind": "feature", "confidence": 0.7, "reason": "new flag"}))
    model = ScriptedModel([extra, plain])
    prediction = await ModelClassifier(model, _model_policy(policy), PRICES).classify(TicketFacts.of("Add --json"))
    assert prediction.kind == "feature" and len(model.requests) == 2


async def test_an_embedder_fault_is_a_fallback_not_a_crash(policy) -> None:  # type: ignore[no-untyped-def]
    class Failing(KeywordEmbedder):
        fail = False

        def embed(self, texts):  # type: ignore[no-untyped-def]
            if self.fail:
                raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")
            return super().embed(texts)

    embedder = Failing()
    knn = KnnClassifier(embedder, TINY_BANK, vote_params(embedder.model_id), policy)
    embedder.fail = True
    decision = await route(TicketFacts.of("support a yaml config file"), policy, classifier=knn)
    assert (decision.tier, decision.decided_by) == ("strong", "fallback")
    assert "the embedding model failed: RuntimeError" in decision.reason


class NamedModel:
    """Answers `answer` (every time), saying it came from `reports`; configured as `name`."""

    def __init__(self, name: str, reports: str, answer: Any) -> None:
        self.name = name
        self.reports = reports
        self.answer = answer

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse(self.answer, Usage(1_000_000, 0), self.reports, "tool_calls")


BOOK = PriceBook(
    Budgets(prices={"claude-sonnet-4-5": Price(input=3.0, output=15.0), "gpt-4o-mini": Price(input=0.15, output=0.6)})
)
ANSWER = reply("", ("route_ticket", {"kind": "docs", "confidence": 0.96, "reason": "README only"}))


async def test_a_routing_answer_is_priced_at_the_configured_model_not_the_one_the_provider_names(policy) -> None:  # type: ignore[no-untyped-def]
    """Before, a sonnet call the provider said came from gpt-4o-mini was charged at gpt-4o-mini's price."""
    model = NamedModel("claude-sonnet-4-5", "gpt-4o-mini", ANSWER)
    prediction = await ModelClassifier(model, _model_policy(policy), BOOK).classify(TicketFacts.of("Typo"))
    assert prediction.cost_usd == pytest.approx(3.0)


async def test_routing_calls_that_gave_no_prediction_are_still_charged(policy) -> None:  # type: ignore[no-untyped-def]
    """Before, answers that never fitted the schema ended as a fallback costing $0, though each was billed."""
    bad = reply("", ("route_ticket", {"kind": "urgent", "confidence": 0.9, "reason": "x"}))
    model = NamedModel("gpt-4o-mini", "gpt-4o-mini", bad)
    router_policy = _model_policy(policy)
    calls = router_policy.classifier.retries + 1
    decision = await route(
        TicketFacts.of("Wrong sum"), router_policy, classifier=ModelClassifier(model, router_policy, BOOK)
    )
    assert decision.decided_by == "fallback" and "never matched the schema" in decision.reason
    assert decision.cost_usd == pytest.approx(0.15 * calls) and decision.usage["input_tokens"] == 1_000_000 * calls


async def test_an_unpriced_routing_model_falls_back_instead_of_failing_the_run(policy) -> None:  # type: ignore[no-untyped-def]
    """Before, UnpricedModel escaped the router (only RouterError was caught): the run ended as an internal error."""
    model = NamedModel("llama3:8b", "llama3:8b", ANSWER)
    router_policy = _model_policy(policy)
    decision = await route(
        TicketFacts.of("Wrong sum"), router_policy, classifier=ModelClassifier(model, router_policy, BOOK)
    )
    assert decision.decided_by == "fallback" and "UnpricedModel" in decision.reason
