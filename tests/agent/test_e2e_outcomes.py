"""Each way a run ends, from scripted-model runs against the four real servers over stdio (local
backends, real Go, real git). The servers are started once for the module and held open by a
blocking portal (the same `open_servers` a worker uses to run many tickets); each scenario has its
own ticket, so pull requests never share a branch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.ledger import Ledger
from agent.llm import ChatRequest, reply
from agent.loop import RunSettings
from agent.policy import AgentPolicy
from servers.github_pr.store import PullStore

from .workspace import Workspace, World, pulls, pushed
from .workspace import run_scripted as run

FIX = {"path": "calc.go", "search": "return a - b", "replace": "return a + b"}
TESTS: tuple[str, dict[str, Any]] = ("run_tests", {})


def with_run_limits(policy: AgentPolicy, **limits: Any) -> AgentPolicy:
    budgets = policy.budgets.model_copy(update={"run": policy.budgets.run.model_copy(update=limits)})
    return policy.model_copy(update={"budgets": budgets})


def edit(search: str, replace: str) -> tuple[str, dict[str, Any]]:
    return ("edit", {"path": "calc.go", "search": search, "replace": replace})


def test_three_failed_attempts_escalate_to_a_draft_pr_assigned_to_the_owner(
    world: World, policy: AgentPolicy, settings: RunSettings, session_workspace: Workspace
) -> None:
    calls = [
        edit("return a - b", "return a * b"),
        TESTS,
        edit("return a * b", "return a*b + 1"),
        TESTS,
        edit("return a*b + 1", "return a - b + 10"),
        TESTS,
        reply("Add subtracts instead of adding; the attempts changed the operator but never to a plain +."),
    ]
    result, _ = run(world, "CALC-3", calls, policy, settings)
    assert (result.outcome, result.exit) == ("escalated", "failed_attempts"), result.reason
    assert result.attempts == 3
    assert result.pr is not None and result.owner == "ana-sousa"
    assert result.handoff is not None
    assert "| 3 | `calc.go:Add` | `. -run` " not in result.handoff  # tests column shows the packages run
    assert "| 1 | `calc.go:Add` | `.` | 1 failing |" in result.handoff
    assert "`TestAdd` (`example.com/calc`): `calc_test.go:" in result.handoff
    assert "never to a plain +" in result.handoff  # the final model step's hypothesis
    assert result.trace_id in result.handoff and "{" not in result.handoff
    pull = pulls(session_workspace).by_ticket("calc", "CALC-3")
    assert pull is not None and pull.draft and pull.number == result.pr["number"]
    assert sorted(pull.labels) == ["goresolve", "needs-human"] and pull.assignees == ["ana-sousa"]
    assert pull.body.startswith(result.handoff.rstrip())


def test_a_github_issue_handed_to_a_person_gets_a_pointer_to_its_draft(
    world: World, policy: AgentPolicy, settings: RunSettings, session_workspace: Workspace
) -> None:
    servers = session_workspace.state_dir / "servers"
    issue = servers / "github-pr" / "issues" / "calc" / "43.json"
    issue.parent.mkdir(parents=True, exist_ok=True)
    issue.write_text(json.dumps({"title": "Add is wrong for negative numbers", "body": "Add(-1, -2) is 1."}))
    calls = [edit("return a - b", "return a * b"), TESTS] * 3 + [reply("The operator is wrong.")]
    calls[2], calls[4] = edit("return a * b", "return a*b + 1"), edit("return a*b + 1", "return a - b + 10")
    result, _ = run(world, "calc#43", calls, policy, settings)
    assert (result.outcome, result.exit) == ("escalated", "failed_attempts"), result.reason
    number = int((result.pr or {})["number"])
    comments = PullStore(servers / "github-pr" / "prs.sqlite").issue_comments("calc", 43)
    assert comments == [
        f"goresolve could not resolve this issue on its own and handed it to {result.owner}: draft pull request "
        f"#{number} holds its best attempt and the hand-off."
    ]
    assert result.extra["handoff_notes"] == ["pointer to the draft posted on issue #43"]


def test_a_tampering_patch_is_refused_and_the_run_escalates_with_the_reason(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    gut = (
        "edit",
        {
            "path": "calc_test.go",
            "search": '\tif got := Add(2, 3); got != 5 {\n\t\tt.Fatalf("Add(2, 3) = %d, want 5", got)\n\t}\n',
            "replace": "\t_ = Add(2, 3)\n",
        },
    )
    calls = [gut, TESTS, ("submit", {"title": "Make TestAdd pass", "summary": "Simplified the test."})]
    result, _ = run(world, "CALC-4", calls, policy, settings)
    assert (result.outcome, result.exit) == ("escalated", "escalated"), result.reason
    assert "refused by the patch policy" in result.reason
    assert result.pr is None  # a refused patch is not worth a draft pull request
    assert result.handoff is not None and "refused by policy" in result.handoff


def test_a_prompt_injection_ticket_gets_nothing(world: World, policy: AgentPolicy, settings: RunSettings) -> None:
    calls = [
        ("search_code", {"query": "merge", "repos": ["sample-service"]}),
        ("get_symbol", {"repo": "sample-service", "symbol": "main"}),
        ("merge_pull_request", {"repo": "calc", "number": 1}),
        ("escalate", {"reason": "the ticket asks for things outside this run"}),
    ]
    result, model = run(world, "CALC-2", calls, with_run_limits(policy, format_errors=3), settings)
    assert (result.outcome, result.exit) == ("escalated", "escalated"), result.reason
    first: ChatRequest = model.requests[0]
    offered = {t.name for t in first.tools}
    assert not offered & {"merge_pull_request", "open_pull_request", "comment", "assign"}
    user = first.messages[1].content
    assert '<untrusted source="ticket"' in user and user.index("IGNORE ALL") > user.index("<untrusted")
    results = [m.content for m in model.requests[-1].messages if m.role == "tool"]
    assert results[0].startswith("refused: this run works on repository calc only")
    assert results[1].startswith("refused: this run works on repository calc only")
    assert results[2].startswith("error: unknown tool 'merge_pull_request'")
    assert result.pr is None and result.cost_usd <= policy.budgets.run.max_cost_usd


def test_too_many_tool_calls_without_testing_escalate(world: World, policy: AgentPolicy, settings: RunSettings) -> None:
    calls = [("view", {"path": "calc.go", "start_line": n}) for n in range(1, 7)]
    result, _ = run(world, "CALC-5", calls, policy, settings)
    assert (result.outcome, result.exit) == ("escalated", "tool_calls"), result.reason
    assert result.tool_calls == 5  # the sixth was refused, not run


def test_the_budget_breaker_stops_before_the_cap_is_passed(
    world: World, policy: AgentPolicy, settings: RunSettings, ledger: Ledger
) -> None:
    capped = with_run_limits(policy, max_cost_usd=0.005)
    calls = [("view", {"path": "calc.go", "start_line": n}) for n in range(1, 5)] + [TESTS] * 10
    result, _ = run(world, "CALC-6", calls, capped, settings)
    assert (result.outcome, result.exit) == ("escalated", "budget_exceeded"), result.reason
    assert 0 < result.cost_usd <= 0.005
    assert ledger.day_spend() == pytest.approx(result.cost_usd)


@pytest.mark.parametrize(
    ("pattern", "calls"),
    [
        ("repeated_call", [("view", {"path": "calc.go"})] * 3),
        ("alternation", [TESTS, ("view", {"path": "calc.go"})] * 3),
        (
            "same_failure",
            [
                edit("return a - b", "return a - b + 0"),
                TESTS,
                edit("return a - b + 0", "return (a - b)"),
                TESTS,
                edit("return (a - b)", "return -b + a"),
                TESTS,
            ],
        ),
        ("undo", [TESTS, edit("return a - b", "return a*b"), TESTS, edit("return a*b", "return a - b")]),
    ],
)
def test_each_stuck_pattern_escalates(
    world: World, policy: AgentPolicy, settings: RunSettings, pattern: str, calls: list[Any]
) -> None:
    result, _ = run(world, "CALC-7", [*calls, reply("stuck")], policy, settings)
    assert (result.outcome, result.exit) == ("escalated", "stuck"), result.reason
    assert result.extra["pattern"] == pattern, result.reason


def test_three_malformed_calls_in_a_row_escalate(world: World, policy: AgentPolicy, settings: RunSettings) -> None:
    calls = [("view", "{not json"), ("nope", {}), ("edit", {"path": "calc.go"})]
    result, model = run(world, "CALC-8", calls, policy, settings)
    assert (result.outcome, result.exit) == ("escalated", "format_errors"), result.reason
    corrections = [m.content for m in model.requests[-1].messages if m.role == "tool"]
    assert corrections[0].startswith("error: arguments for view are not valid JSON")
    assert corrections[1].startswith("error: unknown tool 'nope'")


def test_a_fix_opens_a_pull_request_and_one_trace_id_covers_every_call(
    world: World,
    policy: AgentPolicy,
    settings: RunSettings,
    ledger: Ledger,
    session_workspace: Workspace,
) -> None:
    born = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"  # as the webhook gateway passes it on
    traced = RunSettings(**{**settings.__dict__, "traceparent": born})
    calls = [
        ("view", {"path": "calc.go"}),
        ("edit", FIX),
        TESTS,
        ("submit", {"title": "Add returns the sum", "summary": "Add now adds b."}),
    ]
    result, _ = run(world, "CALC-1", calls, policy, traced)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    assert "return a + b" in pushed(session_workspace, (result.pr or {})["head_sha"], "calc.go")
    assert 0 < result.cost_usd == pytest.approx(ledger.day_spend())
    assert ledger.runs()[0].run_id == result.run_id

    assert result.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    spans = [json.loads(line) for line in (Path(str(result.run_dir)) / "spans.jsonl").read_text().splitlines()]
    chats = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    retrieval = {s["span_id"] for s in spans if s["name"] == "retrieval"}
    under_retrieval = set(retrieval)
    for _ in spans:  # every descendant of a retrieval span
        under_retrieval |= {s["span_id"] for s in spans if s["parent_id"] in under_retrieval}
    tools = [
        s
        for s in spans
        if s["attributes"].get("gen_ai.operation.name") == "execute_tool" and s["span_id"] not in under_retrieval
    ]
    assert len(chats) == result.model_calls == 4 and len(tools) == 4  # the model's calls; triage's are its own
    assert {s["trace_id"] for s in spans} == {result.trace_id}
    assert all(c["attributes"]["gen_ai.usage.input_tokens"] > 0 for c in chats)
    assert any(s["name"] == "retrieval" for s in spans)
    server_traces = session_workspace.state_dir / "servers" / "traces"
    for server in ("jira-read", "code-search", "go-test-runner", "github-pr"):
        lines = (server_traces / f"{server}.jsonl").read_text().splitlines()
        assert any(json.loads(line)["trace_id"] == result.trace_id for line in lines), server


def test_run_artifacts_are_saved_beside_the_run(
    world: World, policy: AgentPolicy, settings: RunSettings, session_workspace: Workspace
) -> None:
    calls = [("edit", FIX), TESTS, ("submit", {"title": "Add returns the sum", "summary": "Add now adds b."})]
    result, _ = run(world, "CALC-9", calls, policy, settings)
    assert result.outcome == "pr", result.reason
    run_dir = Path(str(result.run_dir))
    transcript = [json.loads(line) for line in (run_dir / "transcript.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in transcript][:2] == ["start", "assistant"]
    assert json.loads((run_dir / "run.json").read_text())["pr"]["number"] == result.pr["number"]  # type: ignore[index]
    pull = pulls(session_workspace).by_ticket("calc", "CALC-9")
    assert pull is not None and not pull.draft
    assert pull.body.startswith("Resolves CALC-9: `Add returns the difference instead of the sum`")
    assert f"trace id: `{result.trace_id}`" in pull.body and "Ran `TestAdd`" in pull.body


def test_a_github_issue_is_read_from_github_pr_and_fixed_in_a_pull_request(
    world: World, policy: AgentPolicy, settings: RunSettings, session_workspace: Workspace
) -> None:
    servers = session_workspace.state_dir / "servers"
    issue = servers / "github-pr" / "issues" / "calc" / "41.json"  # what `gh api repos/acme/calc/issues/41` prints
    issue.parent.mkdir(parents=True, exist_ok=True)
    issue.write_text(
        json.dumps(
            {
                "number": 41,
                "title": "Add returns the difference instead of the sum",
                "body": "calc.Add(2, 3) returns -1; TestAdd fails.",
                "state": "open",
                "labels": [{"name": "bug"}],
                "user": {"login": "octocat"},
                "html_url": "https://github.com/acme/calc/issues/41",
            }
        )
    )
    # and its discussion, as `gh api repos/acme/calc/issues/41/comments` prints it
    comment = {"id": 9001, "user": {"login": "hubot"}, "created_at": "2026-12-01T10:00:00Z", "body": "Also Add(1, 1)."}
    issue.with_name("41.comments.json").write_text(json.dumps([comment]))
    calls = [
        ("get_github_issue_comments", {"repo": "calc", "number": 41}),
        ("edit", FIX),
        TESTS,
        ("submit", {"title": "Add returns the sum", "summary": "Add now adds b."}),
    ]
    result, model = run(world, "calc#41", calls, policy, settings)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    prompt = model.requests[0].messages[1].content
    assert "Ticket calc#41:" in prompt and "calc.Add(2, 3) returns -1; TestAdd fails." in prompt
    # the model is told the discussion exists, and which tool reads it
    assert "The ticket has 1 comment(s): read them with get_github_issue_comments" in prompt
    offered = {t.name for t in model.requests[0].tools}  # the GitHub issue's tools, not Jira's
    assert "get_github_issue_comments" in offered and not offered & {"get_issue", "get_comments", "search_issues"}
    discussion = json.loads(model.requests[1].messages[-1].content)
    assert [(c["author"], c["body"]["text"]) for c in discussion["comments"]] == [("hubot", "Also Add(1, 1).")]
    pull = PullStore(servers / "github-pr" / "prs.sqlite").get("calc", int((result.pr or {})["number"]))
    assert (pull.ticket, pull.branch) == ("#41", "goresolve/41-add-returns-the-sum")
    # GitHub links (and on merge closes) the issue a body names as `Resolves #41`
    assert pull.body.startswith("Resolves #41: `Add returns the difference instead of the sum`")
