"""`goresolve route` takes what `goresolve resolve --ticket` takes: issue URLs and the file `gh api` prints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agent.router import cli as router_cli
from agent.router.ticket import TicketFacts
from goresolve.cli import app

from .conftest import POLICIES

GH_ISSUE = {  # as `gh api repos/acme/sample/issues/12` prints it (trimmed)
    "number": 12,
    "title": "Data race in the session store",
    "body": "go test -race reports a race on LastSeen",
    "labels": [{"id": 7, "name": "concurrency", "color": "ededed"}, {"id": 8, "name": "bug"}],
    "repository_url": "https://api.github.com/repos/acme/sample",
    "html_url": "https://github.com/acme/sample/issues/12",
}


pytestmark = pytest.mark.usefixtures("quiet_logs")


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    """The shipped policies, with sample-service known on GitHub as acme/sample."""
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    repos = yaml.safe_load((target / "repos.yaml").read_text())
    repos["repos"]["sample-service"]["github"] = "acme/sample"
    (target / "repos.yaml").write_text(yaml.safe_dump(repos))
    return target


def _decision(output: str) -> dict[str, object]:
    return json.loads(output[output.index("{") :])


def test_the_file_gh_api_prints_is_routed_on_its_label_names(tmp_path: Path, policies: Path) -> None:
    issue = tmp_path / "12.json"
    issue.write_text(json.dumps(GH_ISSUE))
    done = CliRunner().invoke(app, ["route", str(issue), "--json", "--policy-dir", str(policies)])
    assert done.exit_code == 0, done.output
    decision = _decision(done.stdout)
    assert decision["ticket"] == "sample-service#12"  # its repository by the name repos.yaml gives it
    facts = router_cli.load_ticket(str(issue), policies)
    assert list(facts.labels) == ["concurrency", "bug"]
    assert facts.title == GH_ISSUE["title"]


def test_the_file_of_an_unregistered_repository_keeps_its_github_name(tmp_path: Path, policies: Path) -> None:
    issue = tmp_path / "issue.yaml"
    issue.write_text(yaml.safe_dump(GH_ISSUE | {"repository_url": "https://api.github.com/repos/other/thing"}))
    assert router_cli.load_ticket(str(issue), policies).key == "other/thing#12"


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://acme.atlassian.net/browse/SVC-101", "SVC-101"),
        ("https://acme.atlassian.net/jira/software/projects/SVC/issues?selectedIssue=SVC-7", "SVC-7"),
        ("https://github.com/acme/sample/issues/12", "acme/sample#12"),
    ],
)
def test_an_issue_url_is_read_by_its_key(url: str, key: str, policies: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    async def read_ticket(wanted: str, env: dict[str, str], policy_dir: Path) -> TicketFacts:
        asked.append(wanted)
        return TicketFacts.of("panic: nil pointer dereference", "", key=wanted)

    monkeypatch.setattr(router_cli, "read_ticket", read_ticket)
    done = CliRunner().invoke(app, ["route", url, "--json", "--policy-dir", str(policies)])
    assert done.exit_code == 0, done.output
    assert asked == [key] and _decision(done.stdout)["ticket"] == key


def test_a_url_naming_no_issue_is_one_line(policies: Path) -> None:
    done = CliRunner().invoke(app, ["route", "https://example.com/nothing", "--policy-dir", str(policies)])
    assert done.exit_code == 1 and "Traceback" not in done.output
    assert done.output.strip().splitlines() == [
        "error: https://example.com/nothing: no Jira issue key (like SVC-12) or GitHub issue in this URL"
    ]


def test_a_jira_shaped_ticket_file_of_another_project_is_routed_as_resolve_reads_it(
    tmp_path: Path, policies: Path
) -> None:
    """Before, `goresolve route ./BUG-7.yaml` (README's own example) was read through jira-read with the shipped
    access.yaml, which grants SVC only: "project BUG is not readable by this caller", while resolve accepts it."""
    ticket = tmp_path / "BUG-7.yaml"
    fields = {
        "summary": "panic: nil map in export",
        "description": "goroutine 1 [running]",
        "issuetype": {"name": "Bug"},
        "status": {"name": "Open"},
        "priority": {"name": "High"},
        "labels": ["crash"],
        "components": [],
        "created": "2026-01-01T00:00:00.000+0000",
        "updated": "2026-01-01T00:00:00.000+0000",
    }
    ticket.write_text(yaml.safe_dump({"key": "BUG-7", "fields": fields}))
    before = (policies / "access.yaml").read_text()
    facts = router_cli.load_ticket(str(ticket), policies)
    assert facts.key == "BUG-7" and "crash" in facts.labels
    assert (policies / "access.yaml").read_text() == before  # the grant was for that one read, in a copy
