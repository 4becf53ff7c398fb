"""The switch that keeps live providers out of test runs (pydantic-ai's ALLOW_MODEL_REQUESTS, inverted).

Live providers call `check_live_allowed()` before every request. Under pytest it refuses unless a
test called `enable_live_requests()`; outside pytest it allows. Library code never reads the
process environment: the pytest check looks at the already-imported modules only.
"""

from __future__ import annotations

import sys

from agent.llm.errors import LiveModelRefused

_enabled: bool | None = None


def enable_live_requests(enabled: bool = True) -> None:
    """Allow (or forbid) live provider calls regardless of the test guard."""
    global _enabled
    _enabled = enabled


def check_live_allowed(provider: str) -> None:
    """Raises LiveModelRefused when a live call would happen inside a test run that did not opt in."""
    allowed = _enabled if _enabled is not None else "pytest" not in sys.modules
    if not allowed:
        raise LiveModelRefused(f"{provider}: live model requests are disabled under tests (enable_live_requests())")
