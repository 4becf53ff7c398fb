"""Prompt chains: fixed multi-step procedures of typed steps (see core.py), and the two shipped chains.

    ctx = ChainContext(call_tool=..., model=..., prices=..., ledger=..., run_id=...)
    found = await triage(TicketText(key=..., title=..., body=...), ctx, repo="mux", budget=3000)
    built = await agent.chains.scaffold.scaffold(ticket, ctx, repo="order-events", registry=..., toolchain=...)

(The scaffold chain is imported from its module, so a run that only triages never loads protobuf.)
Every failure is a `ChainError` (errors.py) naming its step.
"""

from agent.chains.core import Chain, ChainContext, ChainLimits, FakeStep, ModelStep, Step, ToolStep
from agent.chains.errors import (
    BuildFailed,
    ChainBudgetExceeded,
    ChainError,
    InvalidModelOutput,
    ModelUnavailable,
    RegistryError,
    ToolchainError,
    ToolStepFailed,
    UnknownMessage,
)
from agent.chains.extract import TicketFacts, TicketText, extract_facts
from agent.chains.triage import DEFAULT_BUDGET, TriageResult, TriageSettings, triage

__all__ = [
    "DEFAULT_BUDGET",
    "BuildFailed",
    "Chain",
    "ChainBudgetExceeded",
    "ChainContext",
    "ChainError",
    "ChainLimits",
    "FakeStep",
    "InvalidModelOutput",
    "ModelStep",
    "ModelUnavailable",
    "RegistryError",
    "Step",
    "TicketFacts",
    "TicketText",
    "ToolStep",
    "ToolStepFailed",
    "ToolchainError",
    "TriageResult",
    "TriageSettings",
    "UnknownMessage",
    "extract_facts",
    "triage",
]
