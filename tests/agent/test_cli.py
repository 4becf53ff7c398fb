"""`goresolve resolve` replaying a session recorded from a scripted run, then `runs` and `trace`."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from agent.dispatch.local import LocalRunner
from agent.dispatch.settings import DEFAULT_COMMAND
from agent.dispatch.tickets import ticket_from_event
from agent.llm import Recorder, ScriptedModel, reply
from agent.loop import RunSettings, run_ticket
from agent.policy import AgentPolicy
from goresolve.cli import app
from workqueue import Event, IssueData

from .cli_support import one_error_line, resolve_cli
from .workspace import Workspace

CALLS = [
    ("edit", {"path": "calc.go", "search": "return a - b", "replace": "return a + b"}),
    ("run_tests", {}),
    ("submit", {"title": "Add returns the sum", "summary": "Add subtracted b; it now adds it."}),
]


def _go_env(name: str) -> str:
    return subprocess.run(["go", "env", name], capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def _cli_on(workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's servers on the workspace's index and policies, with their own data directory and runner."""
    env = {
        "GORESOLVE_DATA_DIR": str(tmp_path / "cli-data"),
        "GORESOLVE_AGENT_POLICY_DIR": str(workspace.policy_dir),
        "GORESOLVE_CODE_SEARCH_DB_DIR": str(workspace.index_dir),
        "GORESOLVE_CODE_SEARCH_EMBEDDER": "hashing",
        "GORESOLVE_GO_TEST_RUNNER_WORK_DIR": str(tmp_path / "runner"),
        "GORESOLVE_GO_TEST_RUNNER_GOCACHE": _go_env("GOCACHE"),
        "GORESOLVE_GO_TEST_RUNNER_GOMODCACHE": _go_env("GOMODCACHE"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for name in ("JIRA_READ", "CODE_SEARCH", "GO_TEST_RUNNER", "GITHUB_PR"):
        monkeypatch.setenv(f"GORESOLVE_{name}_LOG_LEVEL", "WARNING")


@pytest.mark.slow
def test_resolve_replays_a_recorded_session_to_a_pull_request_then_runs_and_trace_show_it(
    workspace: Workspace, policy: AgentPolicy, settings: RunSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "session.jsonl"
    model = Recorder(ScriptedModel([reply("", c) for c in CALLS]), cassette)
    recorded = anyio.run(run_ticket, "CALC-1", model, workspace.servers(), policy, settings)
    assert recorded.outcome == "pr", recorded.reason
    _cli_on(workspace, tmp_path, monkeypatch)
    runner = CliRunner()
    # a ticket saved beside other YAML (here a linter's config) is served on its own
    saved = tmp_path / "saved"
    saved.mkdir()
    ticket_file = saved / "CALC-1.yaml"
    shutil.copyfile(workspace.tickets_dir / "CALC-1.yaml", ticket_file)
    (saved / ".golangci.yml").write_text("linters:\n  enable: [govet]\n")
    done = runner.invoke(
        app,
        ["resolve", "--ticket", str(ticket_file), "--repo", str(workspace.repo), "--cassette", str(cassette), "--json"],
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert (result["outcome"], result["ticket"], result["repo"]) == ("pr", "CALC-1", "calc")
    assert result["patch"] == recorded.patch

    listed = runner.invoke(app, ["runs", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [result["run_id"]]

    shown = runner.invoke(app, ["trace", result["run_id"][:17]])
    assert shown.exit_code == 0, shown.output
    assert f"trace {result['trace_id']}" in shown.stdout
    for name in (
        "agent.run",
        "chat scripted",
        "execute_tool edit",
        "execute_tool submit",
        "retrieval",
        "pr (submitted)",
    ):
        assert name in shown.stdout, name


def test_resolve_without_a_model_and_trace_of_an_unknown_run_fail_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    done = runner.invoke(app, ["resolve", "--ticket", "CALC-1", "--repo", "calc"])
    assert done.exit_code == 1
    assert "no model" in done.output and "Traceback" not in done.output
    missing = runner.invoke(app, ["trace", "nope"])
    assert missing.exit_code == 1 and "no run 'nope'" in missing.output


def test_resolve_with_half_a_model_names_the_missing_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GORESOLVE_AGENT_PROVIDER", raising=False)
    monkeypatch.setenv("GORESOLVE_AGENT_MODEL", "gpt-4o-mini")
    done = CliRunner().invoke(app, ["resolve", "--ticket", "CALC-1", "--repo", "calc"])
    assert done.exit_code == 1 and "Traceback" not in done.output
    assert "GORESOLVE_AGENT_MODEL is set but GORESOLVE_AGENT_PROVIDER is not" in done.output


def test_resolve_over_http_with_an_incomplete_server_setting_fails_in_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GORESOLVE_AGENT_MCP_TRANSPORT", "http")
    monkeypatch.setenv("GORESOLVE_AGENT_JIRA_READ_URL", "http://127.0.0.1:1/mcp")
    cassette = Path(__file__).resolve().parents[2] / "examples" / "recordings" / "SVC-101.jsonl"
    done = CliRunner().invoke(
        app, ["resolve", "--ticket", "SVC-101", "--repo", "sample-service", "--cassette", str(cassette)]
    )
    assert done.exit_code == 1
    assert "GORESOLVE_AGENT_JIRA_READ_TOKEN_FILE" in done.output and "Traceback" not in done.output


GITHUB_ISSUE = {
    "number": 41,
    "title": "Add returns the difference instead of the sum",
    "body": "calc.Add(2, 3) returns -1; TestAdd fails.",
    "labels": [{"name": "bug"}],
    "user": {"login": "octocat"},
}
# its discussion, as `gh api repos/acme/calc/issues/41/comments` prints it
GITHUB_COMMENTS = [{"id": 7001, "user": {"login": "hubot"}, "body": "Also Add(1, 1) == 0.", "created_at": None}]


@pytest.mark.slow
def test_resolve_takes_a_github_issue_and_opens_its_pull_request(
    workspace: Workspace, policy: AgentPolicy, settings: RunSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for state in (workspace.state_dir / "servers" / "github-pr", tmp_path / "cli-issues"):
        (state / "issues" / "calc").mkdir(parents=True)
        (state / "issues" / "calc" / "41.json").write_text(json.dumps(GITHUB_ISSUE))
        (state / "issues" / "calc" / "41.comments.json").write_text(json.dumps(GITHUB_COMMENTS))
    cassette = tmp_path / "session.jsonl"
    # the model reads the discussion first: a replay matches only when the same comments are served again
    reads = ("get_github_issue_comments", {"repo": "calc", "number": 41})
    model = Recorder(ScriptedModel([reply("", c) for c in (reads, *CALLS)]), cassette)
    recorded = anyio.run(run_ticket, "calc#41", model, workspace.servers(), policy, settings)
    assert recorded.outcome == "pr", recorded.reason

    _cli_on(workspace, tmp_path, monkeypatch)
    monkeypatch.setenv("GORESOLVE_GITHUB_PR_ISSUES_DIR", str(tmp_path / "cli-issues" / "issues"))
    done = CliRunner().invoke(
        app, ["resolve", "--ticket", "#41", "--repo", "calc", "--cassette", str(cassette), "--json"]
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert (result["outcome"], result["ticket"], result["repo"]) == ("pr", "calc#41", "calc")
    assert result["patch"] == recorded.patch and result["pr"]["branch"] == "goresolve/41-add-returns-the-sum"

    # the issue saved anywhere (as `gh api repos/acme/calc/issues/41` prints it), with no issues directory set
    saved = tmp_path / "saved-issue.json"
    saved.write_text(json.dumps({**GITHUB_ISSUE, "number": 41}))
    saved.with_name("saved-issue.comments.json").write_text(json.dumps(GITHUB_COMMENTS))
    monkeypatch.delenv("GORESOLVE_GITHUB_PR_ISSUES_DIR")
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "cli-data-file"))
    from_file = CliRunner().invoke(
        app, ["resolve", "--ticket", str(saved), "--repo", "calc", "--cassette", str(cassette), "--json"]
    )
    assert from_file.exit_code == 0, from_file.output
    assert (json.loads(from_file.stdout)["outcome"], json.loads(from_file.stdout)["ticket"]) == ("pr", "calc#41")

    other = CliRunner().invoke(
        app, ["resolve", "--ticket", "acme/other#41", "--repo", "calc", "--cassette", str(cassette)]
    )
    assert other.exit_code == 1 and "acme/other#41 is an issue of acme/other, but --repo calc is" in other.output

    # What a GitHub "issue opened" event becomes: the ticket acme/calc#41 on acme/calc (GitHub's names), run by
    # the dispatcher's own command. repos.yaml names calc's GitHub repository; the model is the same recording.
    policies = tmp_path / "policies"
    shutil.copytree(workspace.policy_dir, policies)
    repos = yaml.safe_load((policies / "repos.yaml").read_text())
    repos["repos"]["calc"]["github"] = "acme/calc"
    (policies / "repos.yaml").write_text(yaml.safe_dump(repos))
    monkeypatch.setenv("GORESOLVE_AGENT_POLICY_DIR", str(policies))
    monkeypatch.setenv("GORESOLVE_AGENT_CASSETTE", str(cassette))
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "dispatch-data"))
    monkeypatch.setenv("GORESOLVE_GITHUB_PR_ISSUES_DIR", str(tmp_path / "cli-issues" / "issues"))
    event = Event(
        id="github:1:delivery-41",
        source="github",
        delivery="delivery-41",
        hook_id="1",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        received_at=datetime.now(UTC),
        repo="acme/calc",
        data=IssueData(action="opened", number=41, title=GITHUB_ISSUE["title"], url="u", author="octocat"),
    )
    ticket = ticket_from_event(event, jira_repos={}, default_repo=None)
    assert ticket is not None and (ticket.id, ticket.repo) == ("acme/calc#41", "acme/calc")
    command = (str(Path(sys.executable).parent / "goresolve"), *DEFAULT_COMMAND[1:])
    record = anyio.run(LocalRunner(command, deadline_s=300).run, ticket)
    assert (record.outcome, record.pr_url) == ("pr", "local:calc/pull/1"), record.reason


@pytest.mark.parametrize("route_models", [False, True])
def test_the_configured_model_runs_every_tier_unless_routing_may_choose_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route_models: bool
) -> None:
    """The shipped routing.yaml names models of two providers: with one endpoint configured, the model its
    user named is the one that runs; a gateway serving every tier's model opts in with ROUTE_MODELS."""
    from agent.cli import AgentSettings, build_run

    policies = Path(__file__).resolve().parents[2] / "policies"
    for name, value in {"PROVIDER": "openai", "MODEL": "my-model", "BASE_URL": "http://127.0.0.1:9/v1"}.items():
        monkeypatch.setenv(f"GORESOLVE_AGENT_{name}", value)
    monkeypatch.setenv("GORESOLVE_AGENT_API_KEY", "sk-test")
    monkeypatch.setenv("GORESOLVE_AGENT_ROUTE_MODELS", str(route_models).lower())
    run = build_run(AgentSettings(state_dir=tmp_path), policies, "sample-service", {}, None)
    assert run.router is not None and run.model.name == "my-model"
    if route_models:
        assert run.models is not None and run.models("claude-sonnet-4-5").name == "claude-sonnet-4-5"
    else:
        assert run.models is None


def _resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ticket: str, repo: str) -> Any:
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "data"))
    return resolve_cli(tmp_path, ticket, repo)


def test_resolve_refuses_an_empty_an_overlong_or_a_module_less_repository_before_indexing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "--repo is empty" in one_error_line(_resolve(tmp_path, monkeypatch, "CALC-1", ""))
    assert "--repo is empty" in one_error_line(_resolve(tmp_path, monkeypatch, "CALC-1", "  "))
    too_long = one_error_line(_resolve(tmp_path, monkeypatch, "CALC-1", "a" * 5000))
    assert "is neither a repository in" in too_long and len(too_long) < 600
    plain = tmp_path / "notes"
    plain.mkdir()
    subprocess.run(["git", "init", "-q", str(plain)], check=True, timeout=60)
    (plain / "README.md").write_text("no Go here\n")
    line = one_error_line(_resolve(tmp_path, monkeypatch, "CALC-1", str(plain)))
    assert "holds no Go module (no go.mod)" in line
    assert not (tmp_path / "data" / "agent" / "runs").exists()  # no run started


def test_resolve_names_an_unknown_tier_and_the_tiers_that_exist_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GORESOLVE_AGENT_TIER", "bogus")
    line = one_error_line(_resolve(tmp_path, monkeypatch, "CALC-1", "calc"))
    assert "GORESOLVE_AGENT_TIER=bogus" in line
    tiers = yaml.safe_load((Path("policies") / "budgets.yaml").read_text())["tiers"]
    assert all(tier in line for tier in tiers)


def test_resolve_validates_a_ticket_file_as_jira_read_will_naming_the_users_file_and_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = tmp_path / "BUG-7.yaml"
    wrong.write_text("key: BUG-7\nfields: {summary: 42}\n")
    line = one_error_line(_resolve(tmp_path, monkeypatch, str(wrong), str(tmp_path / "no-such-repo")))
    assert str(wrong) in line and "fields.summary" in line and "goresolve-ticket-" not in line
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert "the file is empty" in one_error_line(_resolve(tmp_path, monkeypatch, str(empty), "calc"))


def test_resolve_wraps_the_hand_off_panel_instead_of_cropping_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.exits import RunResult
    from agent.handoff import render_handoff
    from goresolve import resolve

    run_id = "20260101-000000-abcdef"
    handoff = render_handoff(
        ticket="BUG-7",
        title="a title long enough to need wrapping at eighty columns, and then some more words",
        reason="the model escalated: it could not find where the session store drops the token",
        attempts=[],
        hypothesis="No attempt.",
        owner="platform-team",
        trace_id="0" * 32,
        run_id=run_id,
        cost_usd=0.0,
    )
    result = RunResult(run_id, "0" * 32, "BUG-7", "svc", "escalated", "escalated", "gave up", handoff=handoff)
    result.extra["handoff_notes"] = ["no attempt worth keeping and no GitHub issue for this ticket: hand-off saved"]
    shown = io.StringIO()  # an 80-column terminal, wrapping as the command's own panel console does
    monkeypatch.setattr(resolve, "panels", Console(file=shown, width=80, soft_wrap=resolve.panels.soft_wrap))
    monkeypatch.setattr(resolve, "err", Console(file=io.StringIO(), width=80, soft_wrap=resolve.err.soft_wrap))
    resolve._report(result, None)  # pyright: ignore[reportPrivateUsage]
    text = shown.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.replace("│", " ").split())
    assert run_id in flat and "hand-off saved" in flat


@pytest.mark.slow
def test_resolve_of_a_ticket_the_identity_may_not_read_ends_in_one_line_with_the_servers_logs_in_a_file(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli_on(workspace, tmp_path, monkeypatch)
    cassette = tmp_path / "session.jsonl"
    cassette.write_text("")
    done = CliRunner().invoke(
        app, ["resolve", "--ticket", "NOPE-999", "--repo", "calc", "--cassette", str(cassette), "--json"]
    )
    assert done.exit_code == 1, done.output
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr
    assert not any(line.lstrip().startswith("{") for line in done.stderr.splitlines()), done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("refused: ticket NOPE-999: ") and "access.yaml" in last
    result = json.loads(done.stdout)
    log = Path(result["run_dir"]) / "servers.log"
    assert f"server logs: {log}" in done.stderr
    assert "access denied" in log.read_text()


def test_runs_on_a_new_data_directory_and_trace_of_an_empty_or_shared_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    empty = runner.invoke(app, ["runs"])
    assert empty.exit_code == 0 and "no runs yet" in empty.output
    as_json = runner.invoke(app, ["runs", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []
    for run_id in ("20261205-101010-aaaaaa", "20261205-101011-bbbbbb"):
        (tmp_path / "agent" / "runs" / run_id).mkdir(parents=True)
    shared = runner.invoke(app, ["trace", "20261205"])
    assert shared.exit_code == 1 and "matches 2 runs" in shared.output
    assert "20261205-101010-aaaaaa" in shared.output and "20261205-101011-bbbbbb" in shared.output
    blank = runner.invoke(app, ["trace", ""])
    assert blank.exit_code == 1 and "matches" not in blank.output and "Traceback" not in blank.output


def test_resolve_json_prints_an_error_result_when_it_fails_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script (or the dispatcher) reading --json gets the reason, not an empty stdout."""
    from agent.dispatch.results import parse_result, reason_of

    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path))
    for argv in (["--repo", ""], ["--repo", str(tmp_path / "nowhere"), "--cassette", str(tmp_path / "c.jsonl")]):
        done = CliRunner().invoke(app, ["resolve", "--ticket", "SVC-1", "--json", *argv])
        assert done.exit_code == 1
        result = parse_result(done.stdout)
        assert result is not None and result["outcome"] == "error" and result["exit"] == "refused"
        assert result["ticket"] == "SVC-1" and reason_of(result)
