"""Router test helpers: the repository's policies, a tiny labelled bank, fake classifiers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import yaml

from agent.policy import load_agent_policy
from agent.router.classifier import Example, KnnParams, Prediction, row_names
from agent.router.policy import KINDS, RoutingPolicy, load_routing_policy
from agent.router.ticket import TicketFacts

REPO = Path(__file__).resolve().parents[3]
POLICIES = REPO / "policies"
GOOD_POLICY = yaml.safe_load((POLICIES / "routing.yaml").read_text())


@pytest.fixture
def quiet_logs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """For the route command: log lines to stderr, and no installed classifier model."""
    # the goresolve root command sends log lines to stderr; this app alone uses structlog's default (stdout)
    saved = structlog.get_config()
    # start from structlog's defaults: an earlier test may have installed the stdlib processor chain,
    # whose last step hands `extra=` to a logger that a PrintLogger is not
    structlog.reset_defaults()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    monkeypatch.setenv("GORESOLVE_ROUTER_MODELS_DIR", str(tmp_path / "no-models"))
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="session")
def policy() -> RoutingPolicy:
    return load_routing_policy(POLICIES, load_agent_policy(POLICIES).budgets)


class ForbiddenClassifier:
    """Fails the test if a rule-decided ticket reaches the classifier."""

    name = "forbidden"

    async def classify(self, ticket: TicketFacts) -> Prediction:
        raise AssertionError(f"the classifier was called for {ticket.title!r}")


TINY_BANK = [
    Example(id="a/docs#1", title="Fix typo in README", body="the readme says pacakge", kind="docs"),
    Example(id="a/docs#2", title="README install instructions", body="update the readme install section", kind="docs"),
    Example(
        id="b/conc#1", title="goroutine leak in pool", body="workers block on the channel forever", kind="concurrency"
    ),
    Example(
        id="b/conc#2", title="deadlock on shutdown", body="mutex held while the channel blocks", kind="concurrency"
    ),
    Example(id="c/feat#1", title="add json output flag", body="a --json flag for the cli commands", kind="feature"),
    Example(id="c/feat#2", title="support yaml config", body="load the config from a yaml file", kind="feature"),
]


def vote_params(embedder_id: str, k: int = 2, weight: float = 8.0) -> KnnParams:
    """A combination that trusts the neighbour vote only: logit(kind) = weight * vote(kind)."""
    names = row_names()
    coef = tuple(tuple(weight if name == f"vote_{kind}" else 0.0 for name in names) for kind in KINDS)
    return KnnParams(
        embedder=embedder_id,
        k=k,
        temperature=0.1,
        kinds=KINDS,
        features=names,
        coef=coef,
        intercept=(0.0,) * len(KINDS),
    )
