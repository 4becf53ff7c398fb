"""Build the router routing.yaml describes: its classifier chosen from the mode (imports stay lazy).

router = load_router(policy_dir, models_dir=data_dir / "models", budgets=agent_policy.budgets)
decision = await router.decide(TicketFacts.from_issue(issue))   # once per ticket; build once per process
"""

from __future__ import annotations

from pathlib import Path

import structlog

from agent.llm import ChatModel, PriceBook
from agent.policy import Budgets
from agent.router.classifier import Classifier
from agent.router.errors import ClassifierUnavailable
from agent.router.policy import RoutingPolicy, load_routing_policy
from agent.router.route import Router

log = structlog.get_logger("agent.router")


def build_classifier(
    policy: RoutingPolicy,
    *,
    models_dir: Path,
    chat_model: ChatModel | None = None,
    prices: PriceBook | None = None,
) -> Classifier | None:
    """The configured classifier, or None for mode 'none'.

    Raises:
        ClassifierUnavailable: mode 'offline' without the installed model, or mode 'model' without a
            chat model and prices. The caller may route anyway: `route` then uses the strongest tier.
    """
    mode = policy.classifier.mode
    if mode == "none":
        return None
    if mode == "model":
        if chat_model is None or prices is None:
            raise ClassifierUnavailable("classifier.mode is 'model' but no routing model was configured")
        from agent.router.classifier import ModelClassifier

        return ModelClassifier(chat_model, policy, prices)
    from agent.router.classifier import KnnClassifier, load_examples, load_params
    from agent.router.embedder import MiniLM

    return KnnClassifier(
        MiniLM.load(models_dir), load_examples(), load_params(), policy, cache_dir=models_dir / "router"
    )


def load_router(policy_dir: Path, *, models_dir: Path, budgets: Budgets, chat_model: ChatModel | None = None) -> Router:
    """routing.yaml (checked against budgets.yaml's prices) and its classifier, ready to route tickets.

    A classifier that cannot be built (the model not installed, no routing model) is logged and
    recorded: the router still decides by rules and sends the rest to the strongest tier, saying why.

    Raises:
        RoutingPolicyError: routing.yaml is missing or invalid, or names an unpriced model.
    """
    policy = load_routing_policy(policy_dir, budgets)
    try:
        classifier = build_classifier(policy, models_dir=models_dir, chat_model=chat_model, prices=PriceBook(budgets))
    except ClassifierUnavailable as exc:
        log.warning("routing classifier unavailable", reason=exc.message, fallback=policy.strongest)
        return Router(policy, None, classifier_problem=exc.message)
    return Router(policy, classifier)
