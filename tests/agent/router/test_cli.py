"""`goresolve route`: a file or a jira-read key in, the decision out (text or JSON); bad input gets one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agent.router.cli import app
from agent.ticket_files import single_ticket_dir

from .conftest import POLICIES, REPO

SAMPLES = REPO / "servers" / "jira_read" / "samples"


pytestmark = pytest.mark.usefixtures("quiet_logs")


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_a_rule_decided_markdown_ticket(tmp_path: Path) -> None:
    ticket = tmp_path / "SVC-5.md"
    ticket.write_text("# Pool never stops\n\nA goroutine leak in Pool.Close under load.\n")
    result = _run(str(ticket), "--json")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert (decision["ticket"], decision["tier"], decision["rule"], decision["decided_by"]) == (
        "SVC-5",
        "strong",
        "concurrency-text",
        "rule",
    )
    text = _run(str(ticket))
    assert "tier strong (claude-sonnet-4-5) by rule" in text.stdout and "concurrency (race" in text.stdout


def test_without_the_model_an_unmatched_ticket_goes_to_the_strongest_tier(tmp_path: Path) -> None:
    ticket = tmp_path / "t.json"
    ticket.write_text(json.dumps({"title": "Export fails for large projects"}))
    result = _run(str(ticket), "--json")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["tier"] == "strong" and decision["decided_by"] == "fallback"
    assert "goresolve model install" in result.stderr


def test_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    missing = _run(str(tmp_path / "nope.json"))
    assert missing.exit_code == 1 and "error: cannot read nope.json" in missing.stderr
    policies = tmp_path / "policies"
    policies.mkdir()
    for name in ("budgets.yaml", "escalation.yaml"):
        (policies / name).write_text((POLICIES / name).read_text())
    good = yaml.safe_load((POLICIES / "routing.yaml").read_text())
    (policies / "routing.yaml").write_text(yaml.safe_dump({**good, "strongest": "human", "kinds": {"docs": "small"}}))
    (tmp_path / "t.json").write_text('{"title": "x"}')
    bad = _run(str(tmp_path / "t.json"), "--policy-dir", str(policies))
    assert bad.exit_code == 1
    assert "error: routing.yaml: strongest: tier 'human' has no model (and 6 more)" in bad.stderr
    assert "routing.yaml: kinds.trivial: missing" in bad.stderr and "Traceback" not in bad.output
    # before, an empty or malformed key started jira-read and came back as its argument validation error
    for key in ("", "svc-1", "SVC-0"):
        done = _run(key)
        assert done.exit_code == 1, key
        assert f"error: {key!r} is not a Jira key (SVC-12), a GitHub issue (acme/svc#12)" in done.stderr, done.stderr


def _route_over_stdio(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`route ARGS` in its own process, with a real jira-read over stdio (local backend), as `resolve` starts it.

    jira-read's log level is left to the command's own default.
    """
    env = {
        **os.environ,
        "GORESOLVE_ROUTER_MODELS_DIR": str(tmp_path / "no-models"),
        "GORESOLVE_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }
    env.pop("GORESOLVE_JIRA_READ_LOG_LEVEL", None)
    code = "from agent.router.cli import app; app()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=REPO, env=env
    )


def _decision(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{") :])


@pytest.mark.slow
def test_a_ticket_key_is_read_through_jira_read(tmp_path: Path) -> None:
    """On the bundled samples. (One process: each start of the server costs seconds on a loaded machine.)"""
    decision = _decision(_route_over_stdio(tmp_path, "SVC-1", "--json"))
    assert decision["ticket"] == "SVC-1" and decision["tier"] in ("small", "strong", "human")


@pytest.mark.slow
def test_a_refused_ticket_is_one_error_line_without_the_servers_warnings(tmp_path: Path) -> None:
    """Before, jira-read's JSON warning ("access denied") was printed above the error line."""
    done = _route_over_stdio(tmp_path, "OPS-1")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: jira-read refused OPS-1: project OPS is not readable by this caller"
    ]


@pytest.mark.slow
def test_a_missing_ticket_is_one_error_line_without_the_servers_log(tmp_path: Path) -> None:
    done = _route_over_stdio(tmp_path, "SVC-999")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: SVC-999: Error executing tool get_issue: Issue SVC-999 does not exist or is not visible."
    ]


@pytest.mark.slow
def test_a_ticket_file_beside_other_yaml_is_read_through_jira_read_on_its_own(tmp_path: Path) -> None:
    """jira-read's local backend refuses a folder holding a non-ticket YAML file; the file is served alone."""
    folder = tmp_path / "my-service"
    folder.mkdir()
    # named as a user might save it: the key inside the file is what jira-read is asked for
    shutil.copyfile(SAMPLES / "SVC-101.yaml", folder / "login-panic.yaml")
    (folder / ".golangci.yml").write_text("linters:\n  enable: [govet]\n")
    assert _decision(_route_over_stdio(tmp_path, str(folder / "login-panic.yaml"), "--json"))["ticket"] == "SVC-101"
    assert sorted(p.name for p in folder.iterdir()) == [".golangci.yml", "login-panic.yaml"]  # nothing added or moved


@pytest.mark.slow
def test_a_jira_shaped_json_ticket_is_read_through_jira_read_as_resolve_reads_it(tmp_path: Path) -> None:
    issue = yaml.safe_load((SAMPLES / "SVC-101.yaml").read_text())
    (tmp_path / "bug.json").write_text(json.dumps(issue, default=str))
    decision = _decision(_route_over_stdio(tmp_path, str(tmp_path / "bug.json"), "--json"))
    assert decision["ticket"] == "SVC-101" and decision["tier"] == "strong"


def test_the_private_ticket_folder_holds_a_copy_and_is_removed_after(tmp_path: Path) -> None:
    ticket = tmp_path / "BUG-7.yaml"
    ticket.write_text("key: BUG-7\n")
    with single_ticket_dir(ticket) as folder:
        assert [p.name for p in folder.iterdir()] == ["BUG-7.yaml"]
        assert (folder / "BUG-7.yaml").read_text() == "key: BUG-7\n" and folder != tmp_path
    assert not folder.exists() and ticket.exists()
    with pytest.raises(OSError), single_ticket_dir(tmp_path / "gone.yaml"):
        pass


def test_model_mode_without_a_routing_model_falls_back_and_says_so(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    for name in ("budgets.yaml", "escalation.yaml"):
        (policies / name).write_text((POLICIES / name).read_text())
    good = yaml.safe_load((POLICIES / "routing.yaml").read_text())
    good["classifier"] = {**good["classifier"], "mode": "model", "model": "gpt-4o-mini"}
    (policies / "routing.yaml").write_text(yaml.safe_dump(good))
    (tmp_path / "t.json").write_text('{"title": "Export fails for large projects"}')
    result = _run(str(tmp_path / "t.json"), "--json", "--policy-dir", str(policies))
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["tier"] == "strong" and "no routing model was configured" in decision["reason"]


def test_model_mode_replays_a_recorded_routing_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway path end to end: a recorded session played back by the replay provider."""
    import anyio

    from agent.llm import PriceBook, Recorder, ScriptedModel, reply
    from agent.policy import load_agent_policy
    from agent.router.classifier import ModelClassifier
    from agent.router.policy import parse_routing_policy
    from agent.router.ticket import load_ticket_file

    policies = tmp_path / "policies"
    policies.mkdir()
    for name in ("budgets.yaml", "escalation.yaml"):
        (policies / name).write_text((POLICIES / name).read_text())
    good = yaml.safe_load((POLICIES / "routing.yaml").read_text())
    good["classifier"] = {**good["classifier"], "mode": "model", "model": "gpt-4o-mini"}
    (policies / "routing.yaml").write_text(yaml.safe_dump(good))
    ticket = tmp_path / "SVC-8.json"
    ticket.write_text('{"title": "Add a --json flag to the export command"}')
    cassette = tmp_path / "route.jsonl"
    answer = reply("", ("route_ticket", {"kind": "feature", "confidence": 0.9, "reason": "a new flag"}))
    recorder = Recorder(ScriptedModel([answer], name="gpt-4o-mini"), cassette)
    prices = PriceBook(load_agent_policy(policies).budgets)
    anyio.run(ModelClassifier(recorder, parse_routing_policy(good), prices).classify, load_ticket_file(ticket))

    monkeypatch.setenv("GORESOLVE_ROUTER_CASSETTE", str(cassette))
    result = _run(str(ticket), "--json", "--policy-dir", str(policies))
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert (decision["tier"], decision["kind"], decision["decided_by"]) == ("strong", "feature", "classifier")
    assert decision["classifier"] == "model-gpt-4o-mini" and decision["cost_usd"] > 0


@pytest.mark.slow
def test_a_github_issue_is_read_through_github_pr(tmp_path: Path) -> None:
    """github-pr's local backend reads the issue from its file; its labels are what the rules see."""
    issues = tmp_path / "issues" / "sample-service"
    issues.mkdir(parents=True)
    issue = {"title": "Docs: README typo in the login section", "body": "", "labels": [{"name": "documentation"}]}
    (issues / "3.json").write_text(json.dumps(issue))
    remotes = tmp_path / "remotes"  # the shipped policies point at a folder that is not a git repository yet
    subprocess.run(["git", "init", "-q", "--bare", str(remotes / "sample-service.git")], check=True, timeout=30)
    dirs = {"GORESOLVE_GITHUB_PR_ISSUES_DIR": str(tmp_path / "issues"), "GORESOLVE_GITHUB_PR_REMOTES_DIR": str(remotes)}
    decision = _decision(_route_over_stdio(tmp_path, "sample-service#3", "--json", **dirs))
    assert decision["ticket"] == "sample-service#3" and decision["tier"] in ("small", "strong", "human")
    missing = _route_over_stdio(tmp_path, "sample-service#4", **dirs)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        "error: sample-service#4: Error executing tool get_github_issue: no issue #4 in sample-service: the local "
        "backend reads sample-service/4.json (or .yaml) in its issues directory (GORESOLVE_GITHUB_PR_ISSUES_DIR)"
    ]
    bare = _route_over_stdio(tmp_path, "#3", **dirs)
    assert bare.returncode == 1 and "name the repository the issue belongs to" in bare.stderr
    # by its GitHub name, which repos.yaml maps to the policy's name
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    repos = yaml.safe_load((policies / "repos.yaml").read_text())
    repos["repos"]["sample-service"].update(path=str(REPO / "examples" / "sample-service"), github="acme/sample")
    (policies / "repos.yaml").write_text(yaml.safe_dump(repos))
    github = _route_over_stdio(tmp_path, "acme/sample#3", "--json", "--policy-dir", str(policies), **dirs)
    assert _decision(github)["ticket"] == "sample-service#3"
