"""End to end over stdio: the four real servers on local backends, real Go, real git, a scripted model."""

from __future__ import annotations

import subprocess

from agent.ledger import Ledger
from agent.llm import ScriptedModel, reply
from agent.loop import RunSettings, run_ticket
from agent.policy import AgentPolicy

from .workspace import Workspace

FIX = {"path": "calc.go", "search": "return a - b", "replace": "return a + b"}


async def test_a_scripted_fix_ends_in_a_pull_request_whose_tests_pass(
    workspace: Workspace, policy: AgentPolicy, settings: RunSettings, ledger: Ledger
) -> None:
    model = ScriptedModel(
        [
            reply("", ("view", {"path": "calc.go"})),
            reply("", ("edit", FIX)),
            reply("", ("run_tests", {})),
            reply("", ("submit", {"title": "Add returns the sum", "summary": "Add subtracted b; it now adds it."})),
        ]
    )
    result = await run_ticket("CALC-1", model, workspace.servers(), policy, settings)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    assert result.pr is not None
    remote = workspace.state_dir / "servers" / "github-pr" / "remotes" / "calc.git"
    show = subprocess.run(
        ["git", "-C", str(remote), "show", f"{result.pr['head_sha']}:calc.go"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert "return a + b" in show.stdout
    assert result.cost_usd > 0 and result.cost_usd == ledger.day_spend()
    assert ledger.runs()[0].run_id == result.run_id
