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
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

import pathglob
import yamlfiles
from jqlscope import PROJECT_KEY
from servers.common.errors import ConfigError
from servers.common.repo_names import RepoName
from servers.common.yamlfile import load_yaml_file

# Scopes a tool can require. Adding one is a reviewed change here, not a string in a server.
Scope = Literal["jira:read", "issue:read", "code:read", "tests:run", "pr:write", "pr:read"]


class _Frozen(BaseModel):
    # strict: a wrong type is an error, never coerced ("no" is not a boolean, "200000" not an integer, true
    # not a number); numbers are finite (.inf is no limit)
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


def _listed(value: Any) -> Any:
    """A YAML list for a tuple field (strict validation takes no list where a tuple is declared)."""
    return tuple(value) if isinstance(value, list) else value


_T = TypeVar("_T")
# a list in YAML, held as a tuple (the models are frozen); its items are validated strictly
Seq = Annotated[tuple[_T, ...], BeforeValidator(_listed)]


class Identity(_Frozen):
    """One caller: a token subject over HTTP or the configured identity over stdio."""

    roles: Seq[str] = Field(min_length=1, description="Roles granted; each must exist in tools.yaml.")
    repos: Seq[RepoName] = Field(default=(), description="Repos (names from repos.yaml) this identity may read.")
    jira_projects: Seq[str] = Field(default=(), description="Jira project keys this identity may read.")

    @field_validator("jira_projects")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:

        for key in value:
            if not PROJECT_KEY.fullmatch(key):
                raise ValueError(f"not a Jira project key: {key!r}")
        return value


class AccessPolicy(_Frozen):
    """access.yaml: identities and what they may read."""

    identities: dict[str, Identity] = Field(description="Identity name -> grants.")


class Role(_Frozen):
    scopes: Seq[Scope] = Field(description="Scopes this role grants; a tool declares the scope it needs.")


class ToolsPolicy(_Frozen):
    """tools.yaml: which role holds which scopes."""

    roles: dict[str, Role]


class Repo(_Frozen):
    """A repository goresolve may work on: a local path or a clone URL (mirrored, then fetched)."""

    path: str | None = Field(default=None, description="Local git repository (relative to the policy dir or absolute).")
    url: str | None = Field(default=None, description="Clone URL, mirrored locally and fetched.")
    default_branch: str = "main"
    github: str | None = Field(default=None, description="owner/name on GitHub, for the github-pr server.")
    pr_base_branches: Seq[str] = Field(
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

    repos: dict[RepoName, Repo] = Field(default_factory=dict, description="Repository name -> where it lives.")


class ProtectedPolicy(_Frozen):
    """protected.yaml: what a patch may never touch (applied by go-test-runner and github-pr)."""

    paths: Seq[str] = Field(
        default=(".github/**", ".gitlab-ci.yml", "**/testdata/**", "**/vendor/**", "go.mod", "go.sum", "CODEOWNERS"),
        description="Glob patterns (gitignore-like: ** crosses directories, * does not; a pattern with a / is "
        "anchored at the root, ./ and // are read as / ; case-sensitive) a patch may not modify, nor anything "
        "under a match.",
    )
    existing_tests_read_only: bool = Field(
        default=True, description="Existing _test.go lines may not change; new test functions may be appended."
    )
    allow_go_mod: bool = Field(default=False, description="Let patches change go.mod/go.sum.")
    max_patch_bytes: int = Field(default=200_000, gt=0, le=10_000_000)
    allow_non_go: Seq[str] = Field(
        default=("**/*.md", "docs/**", "LICENSE*", "CHANGELOG*"),
        description="Globs of non-Go files a patch may change, each matching a whole path (**/*.md allows "
        "notes/a.md, not notes.md/build.sh; a pattern ending in / allows everything under that directory); any "
        "other non-Go file is refused. A file that tests read stays protected even when it matches: go-test-runner "
        "and goresolve check-patch find which with the tamper analyzer, or with static_analysis off by the text of "
        "the _test.go files (every string literal names a file); github-pr, which never reads the tree's tests, "
        "leaves it to go-test-runner.",
    )
    allow_binary: bool = Field(default=False, description="Let patches add or change binary files.")
    allow_mode_changes: bool = Field(default=False, description="Let patches change file modes (e.g. +x).")
    static_analysis: bool = Field(
        default=True, description="Run the Go tamper analyzer on the base and the patched tree and compare."
    )
    test_census: bool = Field(
        default=True, description="After a run, every test listed at the base must have reported, unskipped."
    )
    init_exit_objects: dict[str, str] = Field(
        default={
            "os.Exit": "exits the process",
            "syscall.Exit": "exits the process",
            "runtime.Goexit": "ends the goroutine",
            "golang.org/x/sys/unix.Exit": "exits the process",
            "syscall.Syscall": "makes a raw system call",
            "syscall.Syscall6": "makes a raw system call",
            "syscall.RawSyscall": "makes a raw system call",
            "syscall.RawSyscall6": "makes a raw system call",
            "golang.org/x/sys/unix.Syscall": "makes a raw system call",
            "golang.org/x/sys/unix.Syscall6": "makes a raw system call",
            "golang.org/x/sys/unix.RawSyscall": "makes a raw system call",
            "golang.org/x/sys/unix.RawSyscall6": "makes a raw system call",
        },
        description="Objects (types.Func full names) that may not be reachable from package initialization: "
        "process exit.",
    )
    init_flag_objects: dict[str, str] = Field(
        default={
            "testing.Init": "registers the test flags early",
            "testing.MainStart": "starts a custom test main",
            "(*testing.M).Run": "runs the tests itself",
            "flag.Set": "sets a command-line flag",
            "(*flag.FlagSet).Set": "sets a command-line flag",
            "(flag.Value).Set": "sets a flag value",
            "flag.Lookup": "looks up a command-line flag",
            "(*flag.FlagSet).Lookup": "looks up a command-line flag",
            "flag.CommandLine": "reaches the command-line flag set",
            "flag.Parse": "parses the command line early",
            "os.Args": "reaches the process arguments",
        },
        description="Objects that may not be reachable from package initialization: test-flag mutation.",
    )

    @field_validator("paths", "allow_non_go")
    @classmethod
    def _globs_match_something(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if (why := pathglob.problem(pattern)) is not None:
                raise ValueError(why)
        return value


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
    return f"{path}: field '{field}': {first['msg']}{yamlfiles.quoted_number_hint(first['type'], first['input'])}"


def load_policy_file(path: Path, model: type[_Frozen]) -> _Frozen:
    """Parse one YAML policy file.

    Raises:
        ConfigError: unreadable file, not UTF-8 text, invalid YAML (a repeated key or nesting too deep
            included: `servers.common.yamlfile`), or a field that fails validation.
    """
    raw: Any = load_yaml_file(path)
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


def repo_path(directory: Path, repo: Repo) -> Path | None:
    """The local path of `repo` (relative paths are relative to the policy directory), or None."""
    if repo.path is None:
        return None
    path = Path(repo.path).expanduser()
    return (path if path.is_absolute() else directory / path).resolve()


def check_repo_paths(policies: Policies, directory: Path) -> None:
    """Every repo with a local `path` points at an existing directory.

    Raises:
        ConfigError: a path does not exist (names the file, the field and the resolved path).
    """
    for name, repo in policies.repos.repos.items():
        path = repo_path(directory, repo)
        if path is not None and not path.is_dir():
            raise ConfigError(
                f"{directory / 'repos.yaml'}: field 'repos.{name}.path': {path} does not exist "
                f"(fix the path, or register the repository with `goresolve repo add PATH`)"
            )


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
