"""Every operator, policy, settings and ticket file goes through the strict YAML loader (`yamlfiles`): a repeated
key, deep nesting or bytes that are not UTF-8 text stop the command with one line naming the file, where
`yaml.safe_load` let the last key silently win. Valid files load as before (the callers' own tests).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from agent.cli import AgentSettings
from agent.dispatch.errors import TemplateError
from agent.dispatch.jobs import load_template
from agent.policy import DEFAULT_POLICY_DIR
from agent.router.cli import load_ticket
from agent.router.errors import TicketError
from agent.router.ticket import load_ticket_file
from agent.ticket_files import TicketFileError, github_issue_number, registered_repos, ticket_file_key
from goresolve.resolve import ResolveError, prepare
from servers.common.errors import ConfigError, InvalidInput
from servers.github_pr.issue_files import read_issue
from servers.github_pr.settings import GitHubPrSettings, mentionable

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


def _policies(tmp_path: Path, file: str, appended: str) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, directory)
    (tmp_path / "examples" / "sample-service").mkdir(parents=True)  # repos.yaml's relative path
    (directory / file).write_text((directory / file).read_text() + appended)
    return directory


def _go_repo(where: Path) -> Path:
    where.mkdir(parents=True)
    (where / "go.mod").write_text("module example.com/svc\n\ngo 1.22\n")
    (where / "svc.go").write_text("package svc\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(
            ["git", "-C", str(where), *args], check=True, capture_output=True, timeout=60, env={**os.environ, **GIT_ENV}
        )
    return where


def test_resolve_refuses_a_repos_yaml_with_a_repeated_key_naming_it(tmp_path: Path) -> None:
    policies = _policies(tmp_path, "repos.yaml", "repos: {}\n")
    settings = AgentSettings(policy_dir=policies, state_dir=tmp_path / "state")
    with (
        pytest.raises(ResolveError) as caught,
        prepare("SVC-1", "sample-service", settings, Console(file=io.StringIO())),
    ):
        pass
    message = str(caught.value)
    assert message.startswith(f"{policies.resolve() / 'repos.yaml'}: line ") and "\n" not in message
    assert "duplicate key 'repos' (first at line " in message


def test_resolve_refuses_an_access_yaml_with_a_repeated_key_before_registering_a_local_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_EMBEDDER", "hashing")
    policies = _policies(tmp_path, "access.yaml", "identities:\n  local-dev: {roles: [admin]}\n")
    settings = AgentSettings(policy_dir=policies, state_dir=tmp_path / "state")
    repo = _go_repo(tmp_path / "svc")
    with pytest.raises(ResolveError) as caught, prepare("SVC-1", str(repo), settings, Console(file=io.StringIO())):
        pass
    assert str(caught.value).startswith(f"{policies / 'access.yaml'}: line ")  # the user's file, not the run's copy
    assert "duplicate key 'identities'" in str(caught.value)


def test_github_pr_refuses_an_escalation_yaml_with_a_repeated_key_or_binary_bytes(tmp_path: Path) -> None:
    path = tmp_path / "escalation.yaml"
    path.write_text("default_owner: release-captain\nowners: []\ndefault_owner: someone-else\n")
    settings = GitHubPrSettings(policy_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=r"escalation\.yaml: line 3: duplicate key 'default_owner' \(first at line 1\)$"
    ):
        mentionable(settings)
    path.write_bytes(b"default_owner: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"escalation\.yaml: not UTF-8 text \(byte 15\)$"):
        mentionable(settings)
    path.write_text("default_owner: release-captain\nowners: []\n")
    assert mentionable(settings) == ("release-captain",)


def test_a_local_github_issue_file_with_a_repeated_key_is_not_valid_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "3.yaml").write_text("title: first\nbody: b\ntitle: second\n")
    with pytest.raises(InvalidInput) as caught:
        read_issue(tmp_path, "svc", 3)
    assert caught.value.message == "issue #3 of svc (3.yaml): not valid YAML"  # what the model sees, as before
    assert caught.value.detail == "3.yaml: line 3: duplicate key 'title' (first at line 1)"  # logged only
    (folder / "3.yaml").write_text("title: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        read_issue(tmp_path, "svc", 3)
    (folder / "3.yaml").write_text("title: first\nbody: b\n")
    assert read_issue(tmp_path, "svc", 3).title == "first"


def test_ticket_files_and_repos_yaml_with_a_repeated_key_are_one_line(tmp_path: Path) -> None:
    ticket = tmp_path / "SVC-1.yaml"
    ticket.write_text("key: SVC-1\nfields: {summary: a}\nkey: SVC-2\n")
    with pytest.raises(TicketFileError) as caught:
        ticket_file_key(ticket, "SVC-1.yaml")
    assert caught.value.message == (
        "SVC-1.yaml: not a readable ticket file (line 3: duplicate key 'key' (first at line 1))"
    )
    assert github_issue_number(ticket) is None
    # `goresolve route` on it: refused before any server starts
    with pytest.raises(TicketError, match=r"^.*SVC-1\.yaml: not a readable ticket file \(line 3: duplicate key 'key'"):
        load_ticket(str(ticket), DEFAULT_POLICY_DIR)
    (tmp_path / "repos.yaml").write_text("repos: {a: {path: x}}\nrepos: {b: {path: y}}\n")
    with pytest.raises(TicketFileError, match=r"cannot read .*repos\.yaml: line 2: duplicate key 'repos'"):
        registered_repos(tmp_path)
    (tmp_path / "repos.yaml").write_text("repos: {a: {path: x}}\n")
    assert registered_repos(tmp_path) == {"a": {"path": "x"}}


def test_a_markdown_tickets_front_matter_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.md"
    path.write_text("---\nlabels: [a]\nlabels: [b]\n---\n# Title\n\nbody\n")
    with pytest.raises(TicketError, match=r"^t\.md: the front matter: duplicate key 'labels' \(first at line 1\)$"):
        load_ticket_file(path)
    path.write_text("---\nlabels: [a]\n---\n# Title\n\nbody\n")
    assert load_ticket_file(path).labels == ("a",)


def test_the_dispatchers_job_template_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    job = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [{"name": "agent"}]}}}}
    path.write_text(yaml.safe_dump(job) + "kind: Pod\n")
    with pytest.raises(
        TemplateError, match=rf"^job template {path}: line \d+: duplicate key 'kind' \(first at line \d+\)$"
    ):
        load_template(path)
    path.write_bytes(b"\xff")
    with pytest.raises(TemplateError, match=r"not UTF-8 text"):
        load_template(path)
    path.write_text(yaml.safe_dump(job))
    assert load_template(path) == job


# Not YAML, but the same rule for the files a command reads: `goresolve eval FILE` on a binary or absurdly nested
# task file ended in "unexpected UnicodeDecodeError" / RecursionError.
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "not UTF-8 text (byte 0)"),
        (b"[" * 100_000 + b"\n", "a line is nested too deeply to read"),
    ],
    ids=["binary", "deep"],
)
def test_goresolve_eval_on_a_bad_task_file_is_one_line_naming_it(tmp_path: Path, body: bytes, expected: str) -> None:
    from typer.testing import CliRunner

    from goresolve.cli import app

    tasks = tmp_path / "[x] tasks.jsonl"  # named as written, not read as markup
    tasks.write_bytes(body)
    done = CliRunner().invoke(app, ["eval", str(tasks), "--out", str(tmp_path / "out")])
    assert done.exit_code == 2, done.output
    assert "unexpected" not in done.output and "Traceback" not in done.output, done.output
    assert done.output.strip().splitlines() == [f"error: {tasks}: {expected}"]
