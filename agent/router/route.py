"""`route(ticket, policy, classifier=...)`: rules first, then the classifier, and the strongest tier when unsure.

    decided_by  rule        the first matching rule of routing.yaml (no model call)
                classifier  the classifier's tier, its calibrated confidence at or over the threshold
                fallback    the strongest tier: the classifier was unsure, unavailable, or not configured

Sending a hard ticket to the cheap tier is the expensive mistake; the reverse only costs money. So
a classifier's answer other than the strongest tier is taken only with confidence >= threshold.
Every decision is one `router.route` span and one log line, and `to_record()` is what a run stores.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import structlog
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ConfigDict

from agent.router.classifier import Classifier, Prediction
from agent.router.errors import ClassifierUnavailable
from agent.router.policy import RoutingPolicy
from agent.router.rules import RuleSet
from agent.router.ticket import TicketFacts
from agent.telemetry import tracer

log = structlog.get_logger("agent.router")


class RouteDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    ticket: str
    tier: str
    model: str | None  # None: a human takes the ticket
    decided_by: Literal["rule", "classifier", "fallback"]
    reason: str
    confidence: float
    rule: str | None = None
    kind: str | None = None
    classifier: str | None = None
    probabilities: dict[str, float] = {}
    neighbours: list[tuple[str, float]] = []
    cost_usd: float = 0.0
    # the routing model call, when the classifier made one: for the run's cost ledger
    usage: dict[str, int] = {}
    classifier_model: str | None = None
    latency_ms: float = 0.0
    trace_id: str = ""
    span_id: str = ""

    @property
    def to_human(self) -> bool:
        return self.model is None

    def to_record(self) -> dict[str, Any]:
        """The decision as plain JSON for the run record (result.json / transcript)."""
        return self.model_dump(mode="json")


class Router:
    """The policy's rules compiled once, plus an optional classifier; `decide` routes one ticket."""

    def __init__(
        self, policy: RoutingPolicy, classifier: Classifier | None = None, *, classifier_problem: str | None = None
    ) -> None:
        self.policy = policy
        self.rules = RuleSet(policy)
        self.classifier = classifier
        self.classifier_problem = classifier_problem  # why there is no classifier, when one was configured

    async def decide(self, ticket: TicketFacts) -> RouteDecision:
        with tracer().start_as_current_span("router.route") as span:
            started = time.perf_counter()
            fields = await self._decide(ticket)
            ctx = span.get_span_context()
            decision = RouteDecision(
                ticket=ticket.key,
                model=self.policy.model_of(fields["tier"]),
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                trace_id=format(ctx.trace_id, "032x"),
                span_id=format(ctx.span_id, "016x"),
                **fields,
            )
            span.set_attributes(
                {
                    "goresolve.ticket": decision.ticket,
                    "goresolve.route.tier": decision.tier,
                    "goresolve.route.model": decision.model or "human",
                    "goresolve.route.decided_by": decision.decided_by,
                    "goresolve.route.reason": decision.reason[:200],
                    "goresolve.route.confidence": decision.confidence,
                    "goresolve.route.rule": decision.rule or "",
                    "goresolve.route.classifier": decision.classifier or "",
                    "goresolve.cost_usd": decision.cost_usd,
                }
            )
            if decision.decided_by == "fallback" and decision.classifier is None and self.classifier is not None:
                span.set_status(Status(StatusCode.ERROR, decision.reason[:200]))
        log.info(
            "routed",
            ticket=decision.ticket,
            tier=decision.tier,
            model=decision.model,
            decided_by=decision.decided_by,
            rule=decision.rule,
            confidence=round(decision.confidence, 3),
            reason=decision.reason,
            latency_ms=decision.latency_ms,
        )
        return decision

    async def _decide(self, ticket: TicketFacts) -> dict[str, Any]:
        rule = self.rules.first_match(ticket)
        if rule is not None:
            return {
                "tier": rule.tier,
                "decided_by": "rule",
                "rule": rule.name,
                "reason": rule.reason,
                "confidence": 1.0,
            }
        strongest = self.policy.strongest
        if self.classifier is None:
            why = (
                f"the classifier is unavailable: {self.classifier_problem}"
                if self.classifier_problem
                else "no classifier is configured"
            )
            reason = f"no rule matched and {why}"
            return {"tier": strongest, "decided_by": "fallback", "reason": reason, "confidence": 0.0}
        try:
            prediction = await self.classifier.classify(ticket)
        except ClassifierUnavailable as exc:
            billed = exc.usage
            return {
                "tier": strongest,
                "decided_by": "fallback",
                "reason": f"no rule matched and the classifier is unavailable: {exc.message}",
                "confidence": 0.0,
                "cost_usd": exc.cost_usd,  # what its calls were billed: still the run's spend
                "usage": {
                    "input_tokens": billed.input_tokens,
                    "output_tokens": billed.output_tokens,
                    "cached_tokens": billed.cached_tokens,
                },
            }
        return self._threshold(prediction)

    def _threshold(self, p: Prediction) -> dict[str, Any]:
        strongest, threshold = self.policy.strongest, self.policy.classifier.threshold
        common = {
            "kind": p.kind,
            "classifier": p.classifier,
            "probabilities": {t: round(v, 4) for t, v in p.tiers.items()},
            "neighbours": list(p.neighbours),
            "cost_usd": p.cost_usd,
            "classifier_model": p.model,
            "usage": {
                "input_tokens": p.usage.input_tokens,
                "output_tokens": p.usage.output_tokens,
                "cached_tokens": p.usage.cached_tokens,
            },
        }
        if p.tier == strongest or p.confidence >= threshold:
            return {
                **common,
                "tier": p.tier,
                "decided_by": "classifier",
                "reason": f"classifier: {p.kind} ({p.confidence:.2f} for tier {p.tier})",
                "confidence": p.confidence,
            }
        return {
            **common,
            "tier": strongest,
            "decided_by": "fallback",
            "reason": f"classifier unsure: {p.tier} at {p.confidence:.2f} < threshold {threshold:.2f}",
            "confidence": p.tiers.get(strongest, 0.0),
        }


async def route(ticket: TicketFacts, policy: RoutingPolicy, *, classifier: Classifier | None = None) -> RouteDecision:
    """Route one ticket: first matching rule, else the classifier over its threshold, else the strongest tier.

    Never raises for a classifier failure (the decision says `fallback` and why).
    """
    return await Router(policy, classifier).decide(ticket)
