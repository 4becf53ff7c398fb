"""Every way a run ends is one of these exceptions; `loop.run_ticket` turns them into one `RunResult`.

RunExit
 ├── Submitted          tests pass, patch policy passed, the pull request is open
 ├── Escalated          the model gave up, or a breaker fired (reason says which)
 │    ├── BudgetExceeded   tokens or cost would pass the cap on the next call (checked before it)
 │    ├── BreakerOpen      a server's circuit breaker opened (names the server)
 │    ├── Stuck            the stuck detector saw a loop (names the pattern)
 │    ├── TooManyAttempts  failed test-driven attempts reached the policy limit
 │    ├── FormatErrors     malformed tool calls in a row reached the limit
 │    ├── EpisodeTooLong   too many tool calls without running the tests
 │    └── WallClock        the run's time is up; everything in flight was cancelled
 ├── Refused            the run could not start safely (a server's surface changed, a policy gap)
 ├── InternalError      the agent itself failed unexpectedly (a bug): an error naming the exception's type and
 │                      the trace id, saved like any other end
 └── ModelMisconfigured the model never gave a usable answer because of how it is set up (endpoint, key,
                        model name) or the cassette replayed does not match the run: an error, not a hand-off
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


class RunExit(Exception):
    kind: str = "exit"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Submitted(RunExit):
    kind = "submitted"

    def __init__(self, reason: str, pr: dict[str, Any]) -> None:
        super().__init__(reason)
        self.pr = pr


class Escalated(RunExit):
    kind = "escalated"


class BudgetExceeded(Escalated):
    kind = "budget_exceeded"


class BreakerOpen(Escalated):
    kind = "breaker_open"

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(reason)
        self.server = server


class Stuck(Escalated):
    kind = "stuck"

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(reason)
        self.pattern = pattern


class TooManyAttempts(Escalated):
    kind = "failed_attempts"


class FormatErrors(Escalated):
    kind = "format_errors"


class EpisodeTooLong(Escalated):
    kind = "tool_calls"


class WallClock(Escalated):
    kind = "wall_clock"


class Refused(RunExit):
    kind = "refused"


class InternalError(RunExit):
    kind = "internal_error"


class ServerUnavailable(Refused):
    def __init__(self, server: str, reason: str) -> None:
        super().__init__(reason)
        self.server = server


class SurfaceChanged(Refused):
    def __init__(self, server: str, reason: str) -> None:
        super().__init__(reason)
        self.server = server


class ModelMisconfigured(RunExit):
    """`check` names what to look at: the endpoint, the key, the model name, or the cassette."""

    kind = "model_error"

    def __init__(self, reason: str, check: str) -> None:
        super().__init__(reason)
        self.check = check


Outcome = Literal["pr", "escalated", "error"]


@dataclass
class RunResult:
    run_id: str
    trace_id: str
    ticket: str
    repo: str
    outcome: Outcome
    exit: str  # the exit kind: submitted, escalated, budget_exceeded, ...
    reason: str
    pr: dict[str, Any] | None = None
    handoff: str | None = None
    owner: str | None = None
    tier: str | None = None
    model: str = ""
    cost_usd: float = 0.0
    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    attempts: int = 0
    duration_s: float = 0.0
    patch: str = ""
    run_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def exit_code(self) -> int:
        """CLI exit code: 0 a pull request, 3 escalated to a human, 1 an error."""
        return {"pr": 0, "escalated": 3}.get(self.outcome, 1)


def replay_broke(result: RunResult) -> bool:
    """The run ended because the replayed model refused a request it had not recorded (CassetteMismatch): the
    recording no longer matches the run (or the cassette holds nothing). Its reason keeps the model's words."""
    return result.reason.startswith("model unavailable:") and (
        "differs from the recording" in result.reason or "cassette has" in result.reason
    )
