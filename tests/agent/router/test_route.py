"""route(): below the threshold a ticket goes to the strongest tier; each decision is a span, a log line, a record."""

from __future__ import annotations

import json

import pytest
import structlog
from opentelemetry import trace

from agent.router.route import route
from agent.router.testing import FixedClassifier, UnavailableClassifier, kinds
from agent.router.ticket import TicketFacts
from agent.telemetry import run_spans, tracer

UNMATCHED = TicketFacts.of("Export fails for large projects", "the export button returns an error", key="SVC-7")


async def test_a_confident_cheap_answer_goes_to_the_cheap_tier(policy) -> None:  # type: ignore[no-untyped-def]
    confidence = policy.classifier.threshold
    classifier = FixedClassifier(kinds(docs=confidence), policy)
    decision = await route(UNMATCHED, policy, classifier=classifier)
    assert (decision.tier, decision.decided_by, decision.kind) == ("small", "classifier", "docs")
    assert decision.model == "gpt-4o-mini" and decision.confidence == pytest.approx(confidence)
    assert classifier.calls == 1


@pytest.mark.parametrize("below", [0.3, 0.05, 0.0001])
async def test_an_unsure_cheap_answer_goes_to_the_strongest_tier(policy, below: float) -> None:  # type: ignore[no-untyped-def]
    threshold = policy.classifier.threshold
    confidence = threshold - below
    decision = await route(UNMATCHED, policy, classifier=FixedClassifier(kinds(trivial=confidence), policy))
    assert (decision.tier, decision.model, decision.decided_by) == ("strong", "claude-sonnet-4-5", "fallback")
    assert f"small at {confidence:.2f} < threshold {threshold:.2f}" in decision.reason
    assert decision.probabilities["small"] == pytest.approx(confidence, abs=1e-4)


async def test_an_unsure_human_answer_also_goes_to_the_strongest_tier(policy) -> None:  # type: ignore[no-untyped-def]
    decision = await route(UNMATCHED, policy, classifier=FixedClassifier(kinds(security=0.7), policy))
    assert decision.tier == "strong" and decision.decided_by == "fallback"
    confident = await route(UNMATCHED, policy, classifier=FixedClassifier(kinds(security=0.99), policy))
    assert (confident.tier, confident.model) == ("human", None)


async def test_the_strongest_tier_needs_no_threshold(policy) -> None:  # type: ignore[no-untyped-def]
    decision = await route(UNMATCHED, policy, classifier=FixedClassifier(kinds(bug=0.4, feature=0.2, docs=0.4), policy))
    assert (decision.tier, decision.decided_by) == ("strong", "classifier")


async def test_an_unavailable_or_absent_classifier_means_the_strongest_tier_and_says_why(policy) -> None:  # type: ignore[no-untyped-def]
    broken = await route(UNMATCHED, policy, classifier=UnavailableClassifier())
    assert (broken.tier, broken.decided_by) == ("strong", "fallback")
    assert "classifier is unavailable: the embedding model is not installed" in broken.reason
    absent = await route(UNMATCHED, policy)
    assert absent.tier == "strong" and "no classifier is configured" in absent.reason


async def test_a_decision_is_a_span_a_log_line_and_a_record(policy) -> None:  # type: ignore[no-untyped-def]
    sink = run_spans()
    with structlog.testing.capture_logs() as logs, tracer().start_as_current_span("agent.run") as parent:
        decision = await route(UNMATCHED, policy, classifier=FixedClassifier(kinds(trivial=0.5), policy))
    trace_id = parent.get_span_context().trace_id
    spans = {s["name"]: s for s in sink.collect(trace_id)}
    span = spans["router.route"]
    assert span["parent_id"] == format(parent.get_span_context().span_id, "016x")
    assert span["attributes"]["goresolve.route.tier"] == "strong"
    assert span["attributes"]["goresolve.route.decided_by"] == "fallback"
    assert decision.trace_id == format(trace_id, "032x") and decision.span_id == span["span_id"]
    assert [(entry["event"], entry["tier"], entry["ticket"]) for entry in logs] == [("routed", "strong", "SVC-7")]
    record = json.loads(json.dumps(decision.to_record()))
    assert record["tier"] == "strong" and record["decided_by"] == "fallback" and record["ticket"] == "SVC-7"
    assert set(record) >= {"tier", "model", "reason", "confidence", "decided_by", "latency_ms", "trace_id"}
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_load_router_without_the_model_still_routes_and_says_why(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.policy import load_agent_policy
    from agent.router.build import load_router

    from .conftest import POLICIES

    with structlog.testing.capture_logs() as logs:
        router = load_router(POLICIES, models_dir=tmp_path, budgets=load_agent_policy(POLICIES).budgets)
    assert router.classifier is None
    assert logs[0]["event"] == "routing classifier unavailable" and "goresolve model install" in logs[0]["reason"]
    decision = await router.decide(UNMATCHED)
    assert decision.tier == "strong" and "classifier is unavailable" in decision.reason
    ruled = await router.decide(TicketFacts.of("Fix typo in README"))
    assert (ruled.tier, ruled.rule) == ("small", "docs-title")
