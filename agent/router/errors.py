"""The router's errors, one tree.

RouterError
 ├── RoutingPolicyError    routing.yaml is missing, not YAML, or fails validation (file, field, message)
 ├── TicketError           a ticket file or a jira-read answer could not be read as a ticket
 └── ClassifierUnavailable the classifier could not give an answer (model not installed, gateway failure,
                           an answer that never matched the schema); `route` then sends the ticket to the
                           strongest tier and says why
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.llm.types import Usage


class RouterError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PolicyProblem:
    """One validation problem: where (dotted path inside the file) and what."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class RoutingPolicyError(RouterError):
    """routing.yaml is invalid; `problems` lists every problem found, the message names the first."""

    def __init__(self, file: str, problems: list[PolicyProblem]) -> None:
        first = problems[0] if problems else PolicyProblem("(top level)", "invalid")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{file}: {first}{more}")
        self.file = file
        self.problems = problems

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "problems": [{"field": p.field, "message": p.message} for p in self.problems]}


class TicketError(RouterError):
    pass


class ClassifierUnavailable(RouterError):
    """The classifier gave no prediction. `cost_usd` and `usage` are what its model calls were billed on the way
    (answers that never fitted the schema, garbled replies that reported their usage): the run still pays them."""

    def __init__(self, message: str, *, cost_usd: float = 0.0, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.cost_usd = cost_usd
        self.usage = usage if usage is not None else Usage()
