"""A ticket file given on the command line, served by jira-read's local backend on its own.

jira-read's local backend reads every `.yaml`/`.yml`/`.json` file in its folder and refuses to start
when one is not a ticket. A ticket file saved beside other YAML (a repository's `.golangci.yml`, a
`docker-compose.yml`) would stop it, so the backend is pointed at a private folder holding a copy of
that one file.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

import yamlfiles

KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,49}-[1-9][0-9]{0,9}$")
# A GitHub issue as a ticket key: `acme/svc#12`, `svc#12` or `#12` (the repository part names the run's repository).
GITHUB_KEY = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]{0,99}(?:/[\w.-]{1,100})?)?#(?P<number>[1-9][0-9]{0,9})$")


# What reading and parsing a JSON or YAML file raises
UNREADABLE = (OSError, UnicodeDecodeError, ValueError, RecursionError, yaml.YAMLError)


def load_json_or_yaml(path: Path) -> Any:
    """A `.json` file as JSON, any other as YAML through the strict loader (a repeated key or deep nesting
    is refused). Raises: one of UNREADABLE (`why` says what it was in a few words)."""
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yamlfiles.safe_load(text)


def why(exc: BaseException) -> str:
    """Why a file did not load, for a one-line message: the YAML line and reason, else the error's type."""
    if isinstance(exc, yaml.YAMLError):
        where, reason = yamlfiles.describe(exc)
        return reason if where == "(file)" else f"{where}: {reason}"
    return type(exc).__name__


class TicketFileError(Exception):
    """A ticket file that cannot be used; `message` says why, naming the file."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def ticket_file_key(path: Path, shown: str) -> str:
    """The Jira key a ticket file holds: its `key` field, else the file's name without the suffix.

    `shown` is how the file is named in errors (as the user wrote it).

    Raises:
        TicketFileError: the file is missing, empty, not readable YAML/JSON, or its key is not a Jira key.
    """
    if not path.is_file():
        raise TicketFileError(f"no ticket file {shown}")
    try:
        data = load_json_or_yaml(path)
    except UNREADABLE as exc:
        raise TicketFileError(f"{shown}: not a readable ticket file ({why(exc)})") from None
    if data is None or data == "":
        raise TicketFileError(f"{shown}: the file is empty (a ticket file holds a key and the issue's fields)")
    field = data.get("key") if isinstance(data, dict) else None  # pyright: ignore[reportUnknownMemberType]
    key = str(field) if field is not None and str(field) else path.stem
    if not KEY.match(key):
        raise TicketFileError(f"{shown}: its key {key[:60]!r} is not a Jira issue key (like SVC-12)")
    return key


@contextmanager
def single_ticket_dir(path: Path) -> Generator[Path]:
    """A private folder holding only a copy of the ticket file `path`, removed on exit.

    Raises:
        OSError: `path` cannot be read.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-ticket-") as tmp:
        shutil.copyfile(path, Path(tmp) / path.name)
        yield Path(tmp)


def grant_ticket_project(access: Any, project: str, identity: str | None = None) -> None:
    """Let `identity` (every identity when None) read Jira project `project` in `access` (access.yaml as loaded),
    in place: a ticket file the user passes on the command line is theirs to read, whatever its project."""
    for name, entry in ((access or {}).get("identities") or {}).items():
        if isinstance(entry, dict) and (identity is None or name == identity):
            projects: list[Any] = list(entry.get("jira_projects") or [])  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
            if project not in projects:
                entry["jira_projects"] = [*projects, project]


@contextmanager
def policies_reading(policy_dir: Path, project: str) -> Generator[Path]:
    """A private copy of `policy_dir` in which every identity may read `project` (`grant_ticket_project`), for
    reading one ticket file through jira-read's local backend; removed on exit.

    Raises:
        TicketFileError: access.yaml cannot be read.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-policies-") as tmp:
        copy = Path(tmp) / "policies"
        shutil.copytree(policy_dir, copy, ignore=shutil.ignore_patterns("schema"))
        try:
            access: Any = yamlfiles.load_yaml_file(copy / "access.yaml") or {}
        except yamlfiles.YamlFileError as exc:
            raise TicketFileError(exc.message) from None
        grant_ticket_project(access, project)
        (copy / "access.yaml").write_text(yaml.safe_dump(access), encoding="utf-8")
        yield copy


def registered_repos(policy_dir: Path) -> dict[str, Any]:
    """The `repos` map of `policy_dir/repos.yaml` (name -> entry).

    Raises:
        TicketFileError: the file is missing, unreadable, or holds no `repos` map.
    """
    path = policy_dir / "repos.yaml"
    try:
        data: Any = yamlfiles.safe_load(path.read_text(encoding="utf-8")) or {}
    except UNREADABLE as exc:
        raise TicketFileError(f"cannot read {path}: {why(exc)}") from None
    repos: Any = data.get("repos") if isinstance(data, dict) else None  # pyright: ignore[reportUnknownMemberType]
    if not isinstance(repos, dict):
        raise TicketFileError(f"{path} has no `repos` map")
    entries: dict[Any, Any] = repos  # pyright: ignore[reportUnknownVariableType]
    return {str(k): v for k, v in entries.items()}


def repo_in(repos: dict[str, Any], name: str) -> str | None:
    """The name in `repos` (see `registered_repos`) of the repository called `name` there, or on GitHub (its
    `github` field, the owner/name a GitHub event or issue URL uses; GitHub's names ignore case); None for
    neither."""
    found = repo_entry(repos, name)
    return None if found is None else found[0]


def repo_entry(repos: dict[str, Any], name: str) -> tuple[str, str] | None:
    """(the name in `repos`, `name` as repos.yaml spells it) of the repository `name`, or None. The spelling is
    `name` itself when it is a name there or a `github` field as written, the `github` field when they differ
    only in case (GitHub sends `Acme/Svc` for a `github: acme/svc`)."""
    if name in repos:
        return name, name
    folded = name.casefold()
    for key, value in repos.items():
        github = value.get("github") if isinstance(value, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(github, str) and github.casefold() == folded:
            return key, github
    return None


def repo_named(policy_dir: Path, name: str) -> str | None:
    """`repo_in` on `policy_dir/repos.yaml`; None for neither, or an unreadable repos.yaml."""
    try:
        return repo_in(registered_repos(policy_dir), name)
    except TicketFileError:
        return None


def github_issue_number(path: Path) -> int | None:
    """The number of a GitHub issue saved to `path` in GitHub's REST shape (`number` and `title`, as
    `gh api repos/OWNER/REPO/issues/N` prints it), or None for anything else (a Jira ticket has `fields`)."""
    try:
        if path.suffix not in (".json", ".yaml", ".yml") or path.stat().st_size > 1 << 20:
            return None
        data = load_json_or_yaml(path)
    except UNREADABLE:
        return None
    if not isinstance(data, dict) or "fields" in data or not data.get("title"):  # pyright: ignore[reportUnknownMemberType]
        return None
    number: Any = data.get("number")  # pyright: ignore[reportUnknownMemberType]
    return number if isinstance(number, int) and not isinstance(number, bool) and number >= 1 else None
