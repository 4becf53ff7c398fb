"""README.md points only at things that exist: files and folders, commands, and settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from agent.cli import AgentSettings
from goresolve.cli import app
from servers.code_search.settings import CodeSearchSettings
from servers.common.settings import settings_help
from servers.github_pr.settings import GitHubPrSettings
from servers.go_test_runner.settings import GoTestRunnerSettings
from servers.jira_read.settings import JiraReadSettings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TOP = ("servers", "policies", "docs", "tests", "bench", "examples", "charts", "agent", "goresolve", "scripts")
GLOBAL_SETTINGS = {"GORESOLVE_DATA_DIR", "GORESOLVE_SECRETS_DIR", "GORESOLVE_DEBUG"}


def _env_names(cls: Any) -> set[str]:
    """The environment variables a pydantic-settings class reads (its prefix + field, or a field's alias)."""
    prefix = cls.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        names |= {str(c) for c in choices} if choices else {f"{prefix}{name}".upper()}
    return names


def test_links_and_paths_exist() -> None:
    links = re.findall(r"\]\(([^)#\s]+)\)", README)
    quoted = [
        token.rstrip("/")
        for token in re.findall(r"`([^`\s]+)`", README)
        if token.split("/")[0] in TOP and "<" not in token
    ]
    assert links and quoted
    missing = [p for p in links if not p.startswith("http") and not (ROOT / p).exists()]
    missing += [p for p in quoted if not (list(ROOT.glob(p)) if "*" in p else (ROOT / p).exists())]
    assert missing == []


def test_every_goresolve_command_it_names_exists() -> None:
    root: Any = typer.main.get_command(app)
    code = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", README, re.S) + re.findall(r"`([^`\n]+)`", README))
    named = re.findall(r"goresolve ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", code)
    assert named
    unknown = []
    for first, second in named:
        command = root.get_command(typer.Context(root), first)  # sub-commands are imported on first use
        if command is None:
            unknown.append(first)
        elif hasattr(command, "commands") and second and second not in command.commands:
            unknown.append(f"{first} {second}")
    assert unknown == []


def test_every_setting_it_names_exists() -> None:
    known = set(GLOBAL_SETTINGS)
    for cls in (JiraReadSettings, CodeSearchSettings, GoTestRunnerSettings, GitHubPrSettings):
        known |= {env for env, _default, _text in settings_help(cls)}
    known |= _env_names(AgentSettings)
    named = {name for name in re.findall(r"GORESOLVE_[A-Z0-9_]*[A-Z0-9]", README)}
    prefixes = {p for p in re.findall(r"(GORESOLVE_[A-Z_]+_)\*", README)}
    assert named
    unknown = sorted(n for n in named if n not in known and not any(n == p.rstrip("_") for p in prefixes))
    assert unknown == []


def test_notes_it_refers_to_are_in_the_repository() -> None:
    # "the design notes" once pointed outside the repository.
    for phrase in re.findall(r"(?:see|in) the ([a-z]+ notes)", README):
        assert (ROOT / "docs" / f"{phrase.split()[0]}.md").exists(), phrase
    assert "design notes" not in README


def test_the_first_command_leaves_a_working_default_model_and_runs_the_demo() -> None:
    first = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first is not None
    assert "pip install -q -c constraints.txt -e ." in first.group(1)
    assert "goresolve model install" in first.group(1)
    assert first.group(1).strip().endswith(".venv/bin/goresolve demo")


def test_each_server_token_key_it_names_is_the_one_the_server_verifies_with() -> None:
    from servers.common.auth_settings import token_key_env

    named = set(re.findall(r"GORESOLVE_[A-Z_]*TOKEN_KEY", README))
    assert named
    assert named <= {token_key_env(s) for s in ("jira-read", "code-search", "go-test-runner", "github-pr")}


def test_the_architecture_is_drawn_and_the_docs_it_promises_exist() -> None:
    assert "```mermaid" in README
    for doc in ("architecture", "policy-reference", "operations", "security", "ide", "benchmarks"):
        assert f"(docs/{doc}.md)" in README, doc
