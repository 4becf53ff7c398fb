"""200 runs against a provider that fails 30% of the time in every way it can: each run ends in a pull
request or an escalation, none hangs, none spends past its cap, and the legitimate edit → test → edit
cycle never raises a stuck alarm."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agent.llm import enable_live_requests

from .faults import FaultyDeveloper, fault_policy, fault_runs
from .llm_fake_server import fake_llm_server

CAP_USD = 0.004  # tight enough that some runs meet the budget breaker


@pytest.mark.slow
async def test_200_runs_at_a_30_percent_fault_rate_all_end_cleanly(tmp_path: Path) -> None:
    enable_live_requests(True)  # the provider is real; its endpoint is the local fake
    try:
        with fake_llm_server() as llm:
            brain = FaultyDeveloper(rate=0.3, seed=13)
            llm.responder.append(brain)
            results = await fault_runs(llm.url, 200, fault_policy(CAP_USD), tmp_path)
    finally:
        enable_live_requests(None)  # type: ignore[arg-type]
    ended = [r for r in results if r is not None]
    assert len(ended) == 200, "a run hung"
    outcomes = Counter((r.outcome, r.exit) for r in ended)
    assert {o for o, _ in outcomes} <= {"pr", "escalated"}, outcomes
    assert outcomes[("pr", "submitted")] > 100, outcomes
    assert not [r for r in ended if r.exit == "stuck"], outcomes
    assert max(r.cost_usd for r in ended) <= CAP_USD
    assert all(brain.counts[f] > 20 for f in ("5xx", "timeout", "malformed", "invented", "truncated")), brain.counts
