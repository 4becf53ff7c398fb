"""Declarative policy: who may call which tool on which resource.

Policies live in `policies/*.yaml`, one model per file, all frozen and extra-forbidding so that a
typo is an error, not a silently ignored key. `load_policies(dir)` validates every file at start;
a bad file raises `ConfigError` naming the file and the offending field, and the server exits.

Privilege is declared on the tool (its `scope`, see `servers.common.tools`); policy grants scopes
to roles and roles to identities. Nothing here matches tool names with patterns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from servers.common.errors import ConfigError

# Scopes a tool can require. Adding one is a reviewed change here, not a string in a server.
Scope = Literal["jira:read", "code:read", "tests:run", "pr:write", "pr:read"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_JIRA_KEY = r"^[A-Z][A-Z0-9_]{0,49}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Identity(_Frozen):
    """One caller: a token subject over HTTP or the configured identity over stdio."""

    roles: tuple[str, ...] = Field(min_length=1, description="Roles granted; each must exist in tools.yaml.")
    repos: tuple[str, ...] = Field(default=(), description="Repos (names from repos.yaml) this identity may read.")
    jira_projects: tuple[str, ...] = Field(default=(), description="Jira project keys this identity may read.")

    @field_validator("jira_projects")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import re

        for key in value:
            if not re.fullmatch(_JIRA_KEY, key):
                raise ValueError(f"not a Jira project key: {key!r}")
        return value


class AccessPolicy(_Frozen):
    """access.yaml: identities and what they may read."""

    identities: dict[str, Identity] = Field(description="Identity name -> grants.")


class Role(_Frozen):
    scopes: tuple[Scope, ...] = Field(description="Scopes this role grants; a tool declares the scope it needs.")


class ToolsPolicy(_Frozen):
    """tools.yaml: which role holds which scopes."""

    roles: dict[str, Role]


class Repo(_Frozen):
    """A repository goresolve may work on: a local path or a clone URL (mirrored, then fetched)."""

    path: str | None = Field(default=None, description="Local git repository (relative to the policy dir or absolute).")
    url: str | None = Field(default=None, description="Clone URL, mirrored locally and fetched.")
    default_branch: str = "main"
    github: str | None = Field(default=None, description="owner/name on GitHub, for the github-pr server.")
    pr_base_branches: tuple[str, ...] = Field(
        default=(), description="Base branches github-pr may target besides default_branch."
    )
    accept_unprotected_default_branch: bool = Field(
        default=False,
        description="Let github-pr serve this repo although its default branch lacks required reviews (a write "
        "token could then merge through the API). Off by default; turning it on is an accepted risk.",
    )

    def pr_bases(self) -> tuple[str, ...]:
        """The base branches a pull request may target: the default branch first."""
        return (self.default_branch, *(b for b in self.pr_base_branches if b != self.default_branch))


class ReposPolicy(_Frozen):
    """repos.yaml: the repositories known to goresolve."""

    repos: dict[str, Repo] = Field(default_factory=dict)


class ProtectedPolicy(_Frozen):
    """protected.yaml: what a patch may never touch (applied by go-test-runner and github-pr)."""

    paths: tuple[str, ...] = Field(
        default=(".github/**", ".gitlab-ci.yml", "**/testdata/**", "go.mod", "go.sum", "CODEOWNERS"),
        description="Glob patterns (gitignore-like, ** crosses directories) a patch may not modify.",
    )
    existing_tests_read_only: bool = Field(
        default=True, description="Existing _test.go lines may not change; new test functions may be appended."
    )
    allow_go_mod: bool = Field(default=False, description="Let patches change go.mod/go.sum.")
    max_patch_bytes: int = Field(default=200_000, gt=0, le=10_000_000)


class Policies(_Frozen):
    """Everything in policies/, validated together (cross-file references included)."""

    access: AccessPolicy
    tools: ToolsPolicy
    repos: ReposPolicy = ReposPolicy()
    protected: ProtectedPolicy = ProtectedPolicy()

    def identity(self, name: str) -> Identity | None:
        return self.access.identities.get(name)

    def scopes_of(self, name: str) -> frozenset[str]:
        ident = self.identity(name)
        if ident is None:
            return frozenset()
        return frozenset(s for r in ident.roles for s in self.tools.roles[r].scopes)


_FILES: Mapping[str, type[_Frozen]] = {
    "access": AccessPolicy,
    "tools": ToolsPolicy,
    "repos": ReposPolicy,
    "protected": ProtectedPolicy,
}
_REQUIRED = ("access", "tools")


def _format_error(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{path}: field '{field}': {first['msg']}"


def load_policy_file(path: Path, model: type[_Frozen]) -> _Frozen:
    """Parse one YAML policy file.

    Raises:
        ConfigError: unreadable file, invalid YAML, or a field that fails validation.
    """
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML") from exc
    if raw is None:
        raw = {}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from exc


def load_policies(directory: Path) -> Policies:
    """Load and cross-check every policy file in `directory`.

    Raises:
        ConfigError: a required file is missing, a file is invalid, or a reference is dangling
            (an identity naming an unknown role or repo).
    """
    parts: dict[str, Any] = {}
    for name, model in _FILES.items():
        path = directory / f"{name}.yaml"
        if not path.exists():
            if name in _REQUIRED:
                raise ConfigError(f"{path}: required policy file is missing")
            continue
        parts[name] = load_policy_file(path, model)
    policies = Policies(**parts)
    known_repos = set(policies.repos.repos)
    for ident_name, ident in policies.access.identities.items():
        for i, role in enumerate(ident.roles):
            if role not in policies.tools.roles:
                raise ConfigError(
                    f"{directory / 'access.yaml'}: field 'identities.{ident_name}.roles.{i}': "
                    f"unknown role {role!r} (not in tools.yaml)"
                )
        if "repos" in parts:
            for i, repo in enumerate(ident.repos):
                if repo not in known_repos:
                    raise ConfigError(
                        f"{directory / 'access.yaml'}: field 'identities.{ident_name}.repos.{i}': "
                        f"unknown repo {repo!r} (not in repos.yaml)"
                    )
    return policies


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of each policy file, as committed under policies/schema/."""
    return {name: model.model_json_schema() for name, model in _FILES.items()}


def write_json_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
