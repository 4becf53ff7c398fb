"""The router: which tier (a model, or a human) takes a ticket. Rules first, then a classifier, else the strongest.

decision = await route(TicketFacts.from_issue(issue), load_routing_policy(), classifier=classifier)
decision.tier, decision.model, decision.reason, decision.confidence, decision.to_record()
"""

from agent.router.build import build_classifier, load_router
from agent.router.classifier import Classifier, KnnClassifier, ModelClassifier, Prediction
from agent.router.errors import ClassifierUnavailable, PolicyProblem, RouterError, RoutingPolicyError, TicketError
from agent.router.policy import RoutingPolicy, load_routing_policy
from agent.router.route import RouteDecision, Router, route
from agent.router.ticket import TicketFacts, load_ticket_file

__all__ = [
    "Classifier",
    "ClassifierUnavailable",
    "KnnClassifier",
    "ModelClassifier",
    "PolicyProblem",
    "Prediction",
    "RouteDecision",
    "Router",
    "RouterError",
    "RoutingPolicy",
    "RoutingPolicyError",
    "TicketError",
    "TicketFacts",
    "build_classifier",
    "load_router",
    "load_routing_policy",
    "load_ticket_file",
    "route",
]
