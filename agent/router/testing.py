"""Classifiers for tests of code that routes (the loop's, the CLI's): no model, no embedder, no network."""

from __future__ import annotations

from dataclasses import dataclass

from agent.router.classifier import Prediction, tier_mass
from agent.router.errors import ClassifierUnavailable
from agent.router.policy import KINDS, RoutingPolicy
from agent.router.ticket import TicketFacts


def kinds(**mass: float) -> dict[str, float]:
    """A full kind distribution: the given masses, the remainder on `bug`."""
    out: dict[str, float] = {k: mass.get(k, 0.0) for k in KINDS}
    out["bug"] += max(0.0, 1.0 - sum(out.values()))
    return out


@dataclass
class FixedClassifier:
    """Answers the same kind probabilities for every ticket and counts its calls."""

    kinds: dict[str, float]
    policy: RoutingPolicy
    calls: int = 0

    @property
    def name(self) -> str:
        return "fixed"

    async def classify(self, ticket: TicketFacts) -> Prediction:
        self.calls += 1
        return Prediction(kinds=self.kinds, tiers=tier_mass(self.kinds, self.policy), classifier=self.name)


@dataclass
class UnavailableClassifier:
    """Always unavailable, as when the embedding model is not installed."""

    message: str = "the embedding model is not installed; run `goresolve model install`"

    @property
    def name(self) -> str:
        return "unavailable"

    async def classify(self, ticket: TicketFacts) -> Prediction:
        raise ClassifierUnavailable(self.message)
