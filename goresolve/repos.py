"""`goresolve repo add`: register a local repository in the policy files, validated, in one step.

    goresolve repo add PATH [--name NAME] [--grant IDENTITY ...] [--policy-dir DIR]

It adds `repos.<NAME>: {path, default_branch}` to repos.yaml and NAME to the `repos` of each
granted identity in access.yaml, keeping the files' comments and order (ruamel.yaml round trip).
The new files are written beside the old ones and validated as a whole (`load_policies` plus the
repo-path check) before either replaces its original, so a refused change leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from servers.common.errors import ConfigError
from servers.common.policy import load_policies
from servers.common.repo_names import check_repo_name
from servers.common.yamlfile import load_yaml_file


@dataclass(frozen=True)
class Added:
    name: str
    path: Path
    default_branch: str
    granted: tuple[str, ...]
    changed: bool


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, order and quoting survive
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 120
    return yaml


def _load(yaml: YAML, path: Path) -> CommentedMap:
    if not path.exists():
        return CommentedMap()
    load_yaml_file(path)  # the platform's strict read first: a repeated key, deep nesting, non-UTF-8 named
    try:
        data: Any = yaml.load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({type(exc).__name__})") from None
    if data is None:
        return CommentedMap()
    if not isinstance(data, CommentedMap):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def default_branch(path: Path) -> str:
    """The branch HEAD points at (`main` when HEAD is detached or unreadable)."""
    git = path / ".git"
    head = git / "HEAD" if git.is_dir() else None
    try:
        text = head.read_text(encoding="utf-8").strip() if head else ""
    except OSError:
        text = ""
    prefix = "ref: refs/heads/"
    return text[len(prefix) :] if text.startswith(prefix) else "main"


def add_repo(policy_dir: Path, path: Path, name: str | None = None, grants: Sequence[str] = ()) -> Added:
    """Register the git repository at `path` as `name` (default: its directory name) and grant it.

    Raises:
        ConfigError: the path is not a git repository, the name is invalid or taken by another path,
            an identity does not exist, or the resulting policies do not validate.
    """
    repo_dir = path.expanduser().resolve()
    if not repo_dir.is_dir():
        raise ConfigError(f"{path}: no such directory")
    if not (repo_dir / ".git").exists():
        raise ConfigError(f"{repo_dir}: not a git repository (run `git init` there, or pass the repository's root)")
    repo_name = name or repo_dir.name
    try:
        check_repo_name(repo_name)
    except ValueError as exc:
        raise ConfigError(f"{exc}; pass --name") from None
    policy_dir = policy_dir.resolve()
    load_policies(policy_dir)  # refuse to build on files that are already broken

    yaml = _yaml()
    repos_file, access_file = policy_dir / "repos.yaml", policy_dir / "access.yaml"
    repos_doc, access_doc = _load(yaml, repos_file), _load(yaml, access_file)
    changed = False

    repos = repos_doc.setdefault("repos", CommentedMap())
    existing = repos.get(repo_name)
    if existing is not None:
        known = Path(str(existing.get("path", ""))).expanduser()
        known = (known if known.is_absolute() else policy_dir / known).resolve()
        if known != repo_dir:
            raise ConfigError(f"{repos_file}: repo {repo_name!r} is already registered at {known}; pass another --name")
    else:
        branch = default_branch(repo_dir)
        repos[repo_name] = CommentedMap([("path", str(repo_dir)), ("default_branch", branch)])
        changed = True

    identities = access_doc.get("identities") or CommentedMap()
    for identity in grants:
        if identity not in identities:
            known_ids = ", ".join(sorted(identities)) or "none"
            raise ConfigError(f"{access_file}: no identity {identity!r} to grant (known: {known_ids})")
        entry = identities[identity]
        granted = entry.get("repos")
        if granted is None:
            granted = CommentedSeq()
            granted.fa.set_flow_style()
            entry["repos"] = granted
        if repo_name not in granted:
            granted.append(repo_name)
            changed = True

    if changed:
        _write_validated(yaml, policy_dir, {repos_file: repos_doc, access_file: access_doc})
    branch_now = str(repos[repo_name].get("default_branch", "main"))
    return Added(repo_name, repo_dir, branch_now, tuple(grants), changed)


def _write_validated(yaml: YAML, policy_dir: Path, docs: dict[Path, CommentedMap]) -> None:
    with tempfile.TemporaryDirectory(dir=policy_dir, prefix=".repo-add-") as tmp:
        staged = Path(tmp)
        for item in policy_dir.glob("*.yaml"):
            shutil.copy2(item, staged / item.name)
        for target, doc in docs.items():
            with (staged / target.name).open("w", encoding="utf-8") as out:
                yaml.dump(doc, out)
        try:
            load_policies(staged)
        except ConfigError as exc:  # name the real file, not the staged copy
            raise ConfigError(exc.message.replace(str(staged), str(policy_dir))) from None
        for target in docs:
            os.replace(staged / target.name, target)
