"""`goresolve resolve`: one ticket end to end with the configured backends and model.

    goresolve resolve --ticket KEY|URL|FILE --repo NAME|PATH [--json] [--cassette FILE]

The ticket is a Jira key (SVC-12), a Jira issue URL (…/browse/SVC-12), a ticket file in Jira's
issue shape (served by jira-read's local backend from the file's directory), or a GitHub issue
(`acme/svc#12`, `#12`, https://github.com/acme/svc/issues/12) of the repository, which the agent reads
through github-pr (on its local backend, from the issue's file in GORESOLVE_GITHUB_PR_ISSUES_DIR). A
GitHub issue saved as a file (GitHub's REST shape) is served to github-pr's local backend on its own, with
its comments when they are saved beside it (`41.json` and `41.comments.json`).
The repository is a name from policies/repos.yaml (or its GitHub name), or a path: a registered path
maps to its name; an unregistered local git work tree is registered for this run only, in a
temporary copy of the policies that holds that repository alone (and also grants the ticket file's
project), and indexed into a temporary code-search index, so no policy file is edited. A bare
repository is refused (it has no work tree to index), as is an embedder whose model is not installed.
The agent's settings (GORESOLVE_AGENT_*) pick the model; the servers run over stdio with the current
environment, so their own settings apply: each server gets its own only, no other's credential nor the model's key
(`agent.servers.server_env`).

Progress goes to stderr as the run happens; the servers' log lines (and this process's own) go to
`servers.log` in the run's directory instead (`--debug`: to stderr, as they come); `--json` prints the
`RunResult` on stdout. Exit status: 0 a pull request, 3 handed to a human, 1 an error (bad input, a refusal,
or a model that as set up cannot answer: an unreachable endpoint, a refused key, an unknown model, a cassette
that does not match the run).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Generator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import typer
import yaml
from rich.console import Console
from rich.markup import escape

import yamlfiles
from agent.cli import AgentSettings, CommandFailed, PreparedRun, load_agent_settings
from agent.exits import RunResult, replay_broke
from agent.handoff import without_controls
from agent.servers import StdioServer
from agent.ticket_files import (
    GITHUB_KEY,
    KEY,
    TicketFileError,
    github_issue_number,
    grant_ticket_project,
    repo_named,
    single_ticket_dir,
    ticket_file_key,
)
from goresolve.cli import debug_requested
from goresolve.demo import Display, logs_to_file, render_outcome_panel
from goresolve.models import missing_model_for
from goresolve.stopping import Stopped, until_signal
from servers.common.repo_names import repo_slug

KEY_IN_URL = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z0-9_]{0,49}-[1-9][0-9]{0,9})(?![A-Za-z0-9_])")
# A GitHub issue on the web (github.com or a GitHub Enterprise host): https://HOST/acme/svc/issues/12.
# The agent reads it through github-pr as `<repo>#12`.
GITHUB_ISSUE_PATH = re.compile(r"^/(?P<owner>[\w.-]{1,100})/(?P<repo>[\w.-]{1,100})/issues/(?P<number>[1-9]\d{0,9})/?$")
err = Console(stderr=True, soft_wrap=True)
# panels are laid out to the terminal's width: wrapped, never cropped
panels = Console(stderr=True)


class ResolveError(Exception):
    """Bad input or set-up; the message says what to do."""


@dataclass
class Prepared:
    """What the run uses: the ticket key, the repository name, the policy dir, and server env overrides."""

    key: str
    repo: str
    policy_dir: Path
    base_branch: str = "main"
    env: dict[str, str] = field(default_factory=dict[str, str])
    notes: list[str] = field(default_factory=list[str])


def ticket_of(value: str, env: dict[str, str]) -> tuple[str, str | None]:
    """(Jira key, the ticket file's project when a file was given); a file also points jira-read at its directory.

    `prepare` then swaps that directory for a private one holding only the file.

    Raises:
        ResolveError: not a key, a URL naming one, or a readable ticket file.
    """
    if value.startswith(("http://", "https://")):
        url = urlparse(value)
        issue = GITHUB_ISSUE_PATH.match(url.path)
        if issue is not None:
            return f"{issue['owner']}/{issue['repo']}#{issue['number']}", None
        found = KEY_IN_URL.findall(f"{url.path} {url.query}")
        if not found:
            raise ResolveError(f"{value[:200]}: no Jira issue key (like SVC-12) or GitHub issue in this URL")
        return found[-1], None
    if GITHUB_KEY.match(value):
        return value, None
    path = Path(value).expanduser()
    number = github_issue_number(path)
    if number is not None:  # a GitHub issue saved as a file: `prepare` serves it to github-pr's local backend
        return f"#{number}", None
    if path.suffix in (".yaml", ".yml", ".json"):
        try:
            key = ticket_file_key(path, value)
        except TicketFileError as exc:
            raise ResolveError(exc.message) from None
        env["GORESOLVE_JIRA_READ_BACKEND"] = "local"
        env["GORESOLVE_JIRA_READ_TICKETS_DIR"] = str(path.resolve().parent)
        return key, key.rsplit("-", 1)[0]
    if not KEY.match(value):
        raise ResolveError(
            f"{value[:200]!r} is not a Jira key (SVC-12), a GitHub issue (acme/svc#12), an issue URL or a ticket "
            "file (.yaml/.json)"
        )
    return value, None


def _policy_file(path: Path) -> Any:
    """A policy file through the strict loader (an empty file is {}).

    Raises:
        ResolveError: unreadable, not UTF-8, not YAML, a repeated key or too deep, in one line naming the file.
    """
    try:
        return yamlfiles.load_yaml_file(path) or {}
    except yamlfiles.YamlFileError as exc:
        raise ResolveError(exc.message) from None


def _repo_entry(policy_dir: Path, name: str) -> dict[str, Any]:
    data: Any = _policy_file(policy_dir / "repos.yaml")
    entry: Any = (data.get("repos") or {}).get(name) or {}
    return entry if isinstance(entry, dict) else {}  # pyright: ignore[reportUnknownVariableType]


def _for_repo(key: str, name: str, github: str | None, *, strict: bool = True) -> str:
    """A GitHub issue key as the run names it, `<repo>#N`; a Jira key as it is.

    Raises:
        ResolveError: the issue belongs to another repository than `name` (by its name or its GitHub name).
    """
    issue = GITHUB_KEY.match(key)
    if issue is None:
        return key
    part = issue["repo"]
    if strict and part is not None and part not in (name, github):
        on_github = f"GitHub's {github}" if github else "not on GitHub in repos.yaml"
        raise ResolveError(f"{key} is an issue of {part}, but --repo {name} is {on_github}")
    return f"{name}#{issue['number']}"


def _registered(key: str, policy_dir: Path, name: str, env: dict[str, str]) -> Prepared:
    """A repository from repos.yaml: its default branch, and a GitHub issue key checked against it."""
    entry = _repo_entry(policy_dir, name)
    github = str(entry["github"]) if entry.get("github") else None
    branch = str(entry.get("default_branch") or "main")
    return Prepared(_for_repo(key, name, github), name, policy_dir, branch, env)


def _repos_in(policy_dir: Path) -> dict[str, Path]:
    data: Any = _policy_file(policy_dir / "repos.yaml")
    out: dict[str, Path] = {}
    for name, entry in (data.get("repos") or {}).items():
        raw = Path(str((entry or {}).get("path", "")))
        out[str(name)] = (raw if raw.is_absolute() else policy_dir / raw).resolve()
    return out


@contextmanager
def prepare(ticket: str, repo: str, settings: AgentSettings, console: Console) -> Generator[Prepared]:
    """Resolve the ticket and repository; an unregistered local repository is registered for this run only.

    Raises:
        ResolveError: the ticket or repository cannot be used (the message says why).
    """
    with ExitStack() as stack:
        env: dict[str, str] = {}
        key, file_project = ticket_of(ticket, env)
        if file_project is not None:  # a ticket file: served on its own, whatever lies beside it
            try:
                folder = stack.enter_context(single_ticket_dir(Path(ticket).expanduser()))
            except OSError as exc:
                raise ResolveError(f"{ticket}: not a readable ticket file ({type(exc).__name__})") from None
            _check_ticket_file(folder, ticket)
            env["GORESOLVE_JIRA_READ_TICKETS_DIR"] = str(folder)
        # `ticket_of` names a GitHub issue saved as a file `#N`; every other GitHub form is kept as written
        number = int(key[1:]) if key.startswith("#") and key != ticket else None
        issue_file = Path(ticket).expanduser()
        steps = _prepared(key, file_project, repo, settings, env, console)
        prepared = next(steps)  # the repository is known now; `steps` holds its temporary registration open
        try:
            if number is not None:  # served on its own, as the issue of this run's repository
                issues = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="goresolve-issue-")))
                served = issues / repo_slug(prepared.repo)
                served.mkdir()
                try:
                    shutil.copyfile(issue_file, served / f"{number}{issue_file.suffix}")
                except OSError as exc:
                    raise ResolveError(f"{ticket}: not a readable issue file ({type(exc).__name__})") from None
                prepared.env["GORESOLVE_GITHUB_PR_ISSUES_DIR"] = str(issues)
                prepared.notes.append(f"{issue_file.name} was read as issue #{number} of {prepared.repo}")
                comments = _comments_beside(issue_file)
                if comments is not None:
                    try:
                        shutil.copyfile(comments, served / f"{number}.comments{comments.suffix}")
                    except OSError as exc:
                        raise ResolveError(f"{comments}: not a readable file ({type(exc).__name__})") from None
                    prepared.notes.append(f"{comments.name} was read as its comments")
            yield prepared
        finally:
            steps.close()


def _check_ticket_file(folder: Path, shown: str) -> None:
    """The ticket file copied into `folder`, validated as jira-read's local backend will (before it starts).

    Raises:
        ResolveError: the file is not a ticket; the message names the field, and the file as the user wrote it.
    """
    from servers.common.errors import ConfigError
    from servers.jira_read.local import load_tickets

    try:
        load_tickets(folder)
    except ConfigError as exc:
        copies = sorted((str(path) for path in folder.iterdir()), key=len, reverse=True)
        message = exc.message
        for copy in copies:  # name the user's file, not the private copy jira-read is given
            message = message.replace(copy, shown)
        raise ResolveError(message.removesuffix(".")) from None


def _comments_beside(issue_file: Path) -> Path | None:
    """The issue's comments saved beside its file (`41.json` -> `41.comments.json`, `.yaml` or `.yml`), as
    `gh api --paginate --slurp repos/OWNER/REPO/issues/N/comments` prints them; None when there are none."""
    stem = issue_file.with_suffix("").name
    found = (issue_file.with_name(f"{stem}.comments{suffix}") for suffix in (".json", ".yaml", ".yml"))
    return next((path for path in found if path.is_file()), None)


def _prepared(
    key: str, file_project: str | None, repo: str, settings: AgentSettings, env: dict[str, str], console: Console
) -> Generator[Prepared]:
    """`prepare`'s repository half: a registered name or path, else a local path registered for this run."""
    policy_dir = settings.policy_dir.resolve()
    known = _repos_in(policy_dir)
    if not repo.strip():
        raise ResolveError("--repo is empty: give a repository name from repos.yaml or the path of a Go repository")
    candidate = Path(repo).expanduser()
    try:
        exists = candidate.exists()
    except OSError:  # a name too long to be a path (or otherwise not one the system can look up)
        exists = False
    if not exists:
        # the dispatcher names a GitHub issue's repository as GitHub does (owner/name): repos.yaml's `github`
        name = repo_named(policy_dir, repo)
        if name is None:
            raise ResolveError(
                f"{repo[:200]!r} is neither a repository in {policy_dir / 'repos.yaml'} nor a path: give a "
                "registered name (goresolve repo add PATH registers one) or a local repository's path"
            )
        yield _registered(key, policy_dir, name, env)
        return
    for name, path in known.items():
        if path == candidate.resolve():
            yield _registered(key, policy_dir, name, env)
            return
    if _is_bare(candidate.resolve()):
        raise ResolveError(
            f"{candidate.resolve()} is a bare git repository (no work tree to register and index): make a work tree "
            f"with `git -C {candidate.resolve()} worktree add DIR` or `git clone {candidate.resolve()} DIR`, and pass "
            "--repo DIR"
        )
    if not _has_go_module(candidate.resolve()):
        raise ResolveError(f"{candidate.resolve()} holds no Go module (no go.mod): give the path of a Go repository")
    problem = missing_model_for()  # this run indexes it with code-search's embedder: refused before anything is copied
    if problem is not None:
        raise ResolveError(problem)
    with tempfile.TemporaryDirectory(prefix="goresolve-run-") as tmp:
        yield _register_for_this_run(Path(tmp), candidate.resolve(), key, file_project, settings, env, console)


def _is_bare(path: Path) -> bool:
    """A bare repository (or a work tree's `.git` directory): a repository without a `.git` of its own."""
    from servers.common.gitenv import is_repository

    return is_repository(path) and not (path / ".git").exists()


def _has_go_module(path: Path) -> bool:
    """Whether `path` (a directory) holds a go.mod, at its top or in a folder below (neither hidden nor vendored)."""
    if not path.is_dir():
        return False
    for _folder, dirs, files in os.walk(path):
        if "go.mod" in files:
            return True
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("vendor", "node_modules", "testdata")]
    return False


def _register_for_this_run(
    tmp: Path, path: Path, key: str, project: str | None, settings: AgentSettings, env: dict[str, str], console: Console
) -> Prepared:
    from goresolve.repos import add_repo
    from servers.common.errors import ConfigError

    policies = tmp / "policies"
    shutil.copytree(settings.policy_dir.resolve(), policies, ignore=shutil.ignore_patterns("schema"))
    # The run's copy holds this repository only: the servers set up every repository of repos.yaml at start
    # (github-pr mirrors each into a local remote), and the shipped example's path is not a repository at all.
    (policies / "repos.yaml").write_text(yaml.safe_dump({"repos": {}}), encoding="utf-8")
    access: Any = _policy_file(settings.policy_dir / "access.yaml")  # as copied above; named as the user knows it
    for entry in (access.get("identities") or {}).values():
        if isinstance(entry, dict):
            entry.pop("repos", None)  # names repositories this copy no longer holds
    if project is not None:
        grant_ticket_project(access, project, settings.identity)  # the user's own ticket file
    (policies / "access.yaml").write_text(yaml.safe_dump(access), encoding="utf-8")
    name = re.sub(r"[^A-Za-z0-9._-]", "-", path.name).strip(".-") or "repo"
    registered = _repos_in(settings.policy_dir)  # their state (local remotes, indexes) is kept under their names
    while name in registered:
        name += "-local"
    try:
        added = add_repo(policies, path, name, [settings.identity])
    except ConfigError as exc:
        raise ResolveError(exc.message) from None
    console.print(
        f"[bold]registered[/bold] {escape(str(path))} as {added.name} for this run only (default branch "
        f"{added.default_branch}); no policy file was changed"
    )
    index_dir = tmp / "code-index"
    _index(path, added.name, index_dir, policies, console)
    env["GORESOLVE_CODE_SEARCH_DB_DIR"] = str(index_dir)
    notes = [f"{path} was registered as {added.name} for this run only"]
    # a path has no GitHub name to check an issue's repository against: the issue is read as one of this run's
    ticket = _for_repo(key, added.name, None, strict=False)
    return Prepared(ticket, added.name, policies, added.default_branch, env, notes)


def _index(path: Path, name: str, index_dir: Path, policy_dir: Path, console: Console) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from servers.code_search.cli import _Bar  # pyright: ignore[reportPrivateUsage] - the CLI's progress adapter
    from servers.code_search.indexer import index_repo
    from servers.code_search.settings import CodeSearchSettings, open_embedder, open_index
    from servers.common.errors import GoresolveError
    from servers.common.settings import load_settings

    try:
        settings = load_settings(CodeSearchSettings, db_dir=index_dir, policy_dir=policy_dir)
        model = open_embedder(settings)
        index = open_index(settings, model, create=True)
        columns = [TextColumn("[bold]index"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console) as progress:
            report = index_repo(index, model, path, name, None, progress=_Bar(progress))
    except GoresolveError as exc:
        raise ResolveError(f"indexing {path} failed: {exc.message}") from None
    if report.files == 0:
        raise ResolveError(f"{path} has no Go files to index (is it a Go repository, with its files committed?)")
    console.print(f"[green]indexed[/green] {report.files} files → {report.chunks} chunks in {report.seconds:.1f}s")


def resolve_command(
    ticket: Annotated[
        str,
        typer.Option("--ticket", help="Jira key (SVC-12), GitHub issue (acme/svc#12), an issue URL, or a ticket file."),
    ],
    repo: Annotated[str, typer.Option("--repo", help="Repository name from repos.yaml, or a local repository path.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run result as JSON on stdout.")] = False,
    cassette: Annotated[Path | None, typer.Option(help="Replay this recorded session instead of a live model.")] = None,
) -> None:
    """Run one ticket end to end: exit 0 with a pull request, 3 when handed to a human, 1 on error."""
    import anyio

    from agent.cli import build_run

    settings = load_agent_settings()
    try:
        replay = cassette or settings.cassette
        if replay is None:  # fail before a repository is indexed
            try:
                settings.required_live_model("or pass --cassette (GORESOLVE_AGENT_CASSETTE)")
            except ValueError as exc:
                raise ResolveError(str(exc)) from None
        elif not replay.is_file():
            raise ResolveError(f"cassette {replay}: no such file")
        _check_tier(settings, None if replay is not None or settings.route_models else settings.model)
        debug = debug_requested()
        with prepare(ticket, repo, settings, err) as prepared, ExitStack() as slot:
            env = {**os.environ, **prepared.env}
            slot.enter_context(runner_slot(env))
            run = build_run(settings, prepared.policy_dir, prepared.repo, env, cassette, prepared.base_branch)
            log = None if debug else _server_log(settings)
            if log is not None:
                _servers_log_to(run, log)
            err.rule(f"[bold]{prepared.key}[/bold] on {prepared.repo} · model {run.model.name}")
            with ExitStack() as quiet:
                if log is not None:
                    quiet.enter_context(logs_to_file(log))
                with err.status("starting the servers over stdio") as status:
                    result = _run(anyio.run, run, prepared.key, Display(err, status))
            result.extra["notes"] = prepared.notes
    except Stopped as exc:  # the run gave its budget hold back and recorded itself as interrupted
        said = f"interrupted by {signal.Signals(exc.signum).name}: the run stopped and was recorded (goresolve runs)"
        err.print(f"[yellow]{escape(said)}[/yellow]")
        if as_json:
            stopped = {"ticket": ticket, "repo": repo, "outcome": "error", "exit": "interrupted", "reason": said}
            sys.stdout.write(json.dumps(stopped, indent=2) + "\n")
        raise typer.Exit(exc.exit_code) from None
    except (ResolveError, CommandFailed) as exc:
        if isinstance(exc, ResolveError):
            err.print(f"[red]error:[/red] {escape(str(exc))}")
        if as_json:  # what a script or the dispatcher reads: the run's result, here an error before any run
            reason = exc.message if isinstance(exc, CommandFailed) else str(exc)
            refused = {"ticket": ticket, "repo": repo, "outcome": "error", "exit": "refused", "reason": reason}
            sys.stdout.write(json.dumps(refused, indent=2) + "\n")
        raise typer.Exit(1) from None
    if log is not None:
        log = _keep_with_run(log, result)
    _report(result, log)
    if as_json:
        sys.stdout.write(json.dumps(result.__dict__, indent=2, default=str) + "\n")
    raise typer.Exit(result.exit_code)


RUNNER_PREFIX = "GORESOLVE_GO_TEST_RUNNER_"
RUNNER_SLOTS = 16


@contextmanager
def runner_slot(env: dict[str, str]) -> Generator[None]:
    """A go-test-runner work directory for this run alone, set in `env`, held until the block ends.

    A runner takes its work directory exclusively, so two runs at once on one data directory (the local
    dispatcher runs two) need one each: the default `<state>/go-test-runner` when no other run or runner holds
    it, else `<state>/go-test-runner-slots/<k>` (mirrors and worktrees of their own, the default's build cache
    shared: go's cache takes concurrent writers). A run claims a slot with a lock of its own (`resolve.lock`) and
    takes none that a runner started elsewhere holds. An explicit GORESOLVE_GO_TEST_RUNNER_WORK_DIR is kept, and so
    are servers over HTTP; with every slot taken the default is used, and its runner says who holds it.
    """
    from servers.common.locks import LockHeld, take_lock
    from servers.common.settings import DATA_DIR_ENV, default_data_dir

    if env.get(f"{RUNNER_PREFIX}WORK_DIR") or env.get("GORESOLVE_AGENT_MCP_TRANSPORT", "stdio") == "http":
        yield
        return
    state_dir = env.get(f"{RUNNER_PREFIX}STATE_DIR") or env.get(DATA_DIR_ENV)  # where the runner's settings look
    state = Path(state_dir).expanduser().resolve() if state_dir else default_data_dir()
    base = state / "go-test-runner"
    for k in range(RUNNER_SLOTS):
        work = base if k == 0 else state / "go-test-runner-slots" / str(k)
        try:
            claim = take_lock(work / "resolve.lock")
        except LockHeld:
            continue
        except OSError:  # the server names an unusable directory better
            break
        try:
            take_lock(work / "runner.lock").close()  # free: no runner of another command holds it
        except (LockHeld, OSError) as exc:
            claim.close()
            if isinstance(exc, LockHeld):
                continue
            break
        env[f"{RUNNER_PREFIX}WORK_DIR"] = str(work)
        if k and not env.get(f"{RUNNER_PREFIX}GOCACHE"):
            env[f"{RUNNER_PREFIX}GOCACHE"] = str(base / "gocache")
        try:
            yield
        finally:
            claim.close()
        return
    yield


def _run(runner: Any, run: PreparedRun, key: str, display: Display) -> RunResult:
    """`run.start(key)`, stopped by SIGINT or SIGTERM (`Stopped`); an error the run's task groups wrapped is raised
    as itself (one line from the CLI)."""
    try:
        return runner(until_signal, run.start, key, display)
    except BaseExceptionGroup as group:
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:  # pyright: ignore[reportUnknownArgumentType]
            leaf = leaf.exceptions[0]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if leaf is group or not isinstance(leaf, Exception):
            raise
        raise leaf from None


def _check_tier(settings: AgentSettings, model: str | None) -> None:
    """GORESOLVE_AGENT_TIER names a tier of the policies' budgets.yaml, and the live `model` has a price there
    unless unpriced models are allowed (both checked before anything is indexed).

    Raises:
        ResolveError: a policy that does not load, no such tier (the message lists those that exist), or a model
            without a price.
    """
    if settings.tier is None and model is None:
        return
    from agent.llm.errors import UnpricedModel
    from agent.llm.pricing import PriceBook
    from agent.policy import PolicyError, load_agent_policy

    try:
        budgets = load_agent_policy(settings.policy_dir.resolve()).budgets
    except PolicyError as exc:
        raise ResolveError(exc.message) from None
    if model is not None:
        try:
            PriceBook(budgets).price(model)
        except UnpricedModel as exc:
            raise ResolveError(
                f"{exc.message}: add its price (budgets.yaml `prices`), or for a model you host, `allow_unpriced: true`"
            ) from None
    tiers = budgets.tiers
    if settings.tier is None:
        return
    if settings.tier not in tiers:
        raise ResolveError(
            f"GORESOLVE_AGENT_TIER={settings.tier[:60]}: budgets.yaml has no such tier (it has "
            f"{', '.join(sorted(tiers)) or 'none'}); unset it for the default or the routed tier"
        )


def _server_log(settings: AgentSettings) -> Path:
    """Where this run's servers write their log lines until the run has a directory to keep them in."""
    folder = settings.state_dir / "agent" / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"resolve-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def _servers_log_to(run: PreparedRun, log: Path) -> None:
    """The run's stdio servers append their stderr to `log` (servers over HTTP log where they run)."""
    specs = tuple(
        spec.model_copy(update={"stderr_file": log}) if isinstance(spec, StdioServer) else spec
        for spec in run.servers.servers
    )
    run.servers = dataclasses.replace(run.servers, servers=specs)


def _keep_with_run(log: Path, result: RunResult) -> Path | None:
    """The servers' log moved into the run's directory as `servers.log` (where it is, when it cannot be)."""
    if not log.exists():
        return None
    if result.run_dir is None:
        return log
    kept = Path(result.run_dir) / "servers.log"
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(log, kept)
    except OSError:
        return log
    return kept


def _report(result: RunResult, log: Path | None) -> None:
    """The outcome: a panel for a pull request or a hand-off; an error ends in one line saying what to do."""
    if result.outcome != "error":
        render_outcome_panel(panels, result, None)
    if log is not None:
        err.print(f"server logs: {log}", markup=False)
    err.print(f"run {result.run_id} · trace {result.trace_id} · ${result.cost_usd:.4f} · {result.tokens} tokens")
    err.print(f"more: goresolve trace {result.run_id}")
    if result.outcome == "error":  # the reason may quote a server, a model or a ticket: shown as written
        said = without_controls(f"{result.reason}{_next_step(result, log)}")
        err.print(f"[red]{escape(result.exit)}:[/red] {escape(said)}")


def _next_step(result: RunResult, log: Path | None) -> str:
    """What to do about an error, after its reason (empty when the reason already says it)."""
    check = result.extra.get("check")
    if replay_broke(result):
        return f" — check {check or 'the cassette'}, or run without --cassette on a live model"
    if check:
        return f" — the model never answered: check {check}"
    if "server" in result.extra and log is not None:
        return f" — see {log}"
    return ""
