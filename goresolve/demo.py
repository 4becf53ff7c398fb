"""`goresolve demo`: the whole job on embedded defaults, on a bundled Go service with two real bugs.

    world = prepare_world(default_data_dir(), console)     # bare git remote, policies
    results = anyio.run(run_demo, world, console)           # index; SVC-101 → pull request, SVC-102 → hand-off

`prepare_world` rebuilds `<data dir>/demo/` from scratch: a bare git repository made from
examples/sample-service (examples/make_sample_repo.py: one commit whose id depends only on the
content) and a copy of the shipped policies whose `sample-service` entry points at that repository.
`run_demo` indexes it for code-search (with a progress bar) while it starts the four servers over
stdio on their local backends (jira-read on the bundled sample tickets, github-pr on a local remote)
and go-test-runner builds the module once, then runs both tickets through `agent.loop.run_ticket`,
showing each step as it happens. The demo's own log lines go to `<data dir>/demo/demo.log`: the
screen is its rendering (warnings and errors still show).

The model is a recording (examples/recordings/*.jsonl, replayed by `ReplayModel`, which refuses a
request that differs from the recorded one) unless GORESOLVE_AGENT_PROVIDER and GORESOLVE_AGENT_MODEL name a
live model (with GORESOLVE_AGENT_BASE_URL / GORESOLVE_AGENT_API_KEY), the settings `goresolve resolve` reads:
then the same flow runs live.
Runs, traces and the cost ledger go where `goresolve runs` / `goresolve trace` read them (the data dir).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.lowlevel
import yaml
from pydantic import ValidationError
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.status import Status
from rich.table import Table
from rich.text import Text

from agent.cli import AgentSettings, build_router, settings_error
from agent.exits import RunResult, replay_broke
from agent.handoff import without_controls
from agent.ledger import Ledger, private_dir
from agent.llm import ChatModel, LLMError, ModelConfig, ReplayModel, build_model
from agent.loop import RunSettings, run_ticket
from agent.policy import AgentPolicy, PolicyError, load_agent_policy
from agent.router import Router
from agent.servers import ServersConfig, StdioServer, Toolbox, open_servers, server_env
from goresolve.stopping import stop_on_signal
from servers.common.errors import ConfigError, GoresolveError
from servers.common.locks import LockHeld, take_lock
from servers.common.policy import load_policies
from yamlfiles import YamlFileError, load_yaml_file

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SERVICE = EXAMPLES / "sample-service"
RECORDINGS = EXAMPLES / "recordings"
POLICIES = ROOT / "policies"
REPO = "sample-service"
TICKETS = ("SVC-101", "SVC-102")
POLICY_FILES = ("access.yaml", "tools.yaml", "protected.yaml", "budgets.yaml", "escalation.yaml", "routing.yaml")
# one comment line in main.go: the smallest patch that takes go-test-runner through its whole patch path
WARM_UP_PATCH = """\
diff --git a/cmd/sample-service/main.go b/cmd/sample-service/main.go
--- a/cmd/sample-service/main.go
+++ b/cmd/sample-service/main.go
@@ -1,2 +1,3 @@
 // Command sample-service serves the items API behind bearer-token authentication.
+//
 package main
"""
SERVERS = (
    ("jira-read", "GORESOLVE_JIRA_READ_"),
    ("code-search", "GORESOLVE_CODE_SEARCH_"),
    ("go-test-runner", "GORESOLVE_GO_TEST_RUNNER_"),
    ("github-pr", "GORESOLVE_GITHUB_PR_"),
)


class DemoError(GoresolveError):
    """The demo cannot run; the message says why and what to try."""


class DemoInterrupted(DemoError):
    """Ctrl-C (SIGINT) or SIGTERM stopped the demo; its servers were shut down first."""

    def __init__(self) -> None:
        super().__init__("interrupted: the demo stopped and its servers were shut down; `goresolve demo` starts over")


# The demo read its live model from these names before it shared the agent's settings; naming one now is a
# mistake to point out, not to ignore (the demo would replay its recording instead of the model asked for).
RENAMED = {
    "GORESOLVE_MODEL": "GORESOLVE_AGENT_MODEL",
    "GORESOLVE_MODEL_PROVIDER": "GORESOLVE_AGENT_PROVIDER",
    "GORESOLVE_MODEL_BASE_URL": "GORESOLVE_AGENT_BASE_URL",
    "GORESOLVE_MODEL_API_KEY": "GORESOLVE_AGENT_API_KEY",
}


def pr_db(state_dir: Path) -> Path:
    """The local github-pr backend's SQLite file under a servers' state directory."""
    return state_dir / "github-pr" / "prs.sqlite"


def _demo_root(data_dir: Path) -> Path:
    return data_dir / "demo"


def _state_dir(root: Path) -> Path:
    return root / "state"


def demo_pr_db(data_dir: Path) -> Path:
    """Where `goresolve demo` records its pull requests: `<data dir>/demo/state/github-pr/prs.sqlite`."""
    return pr_db(_state_dir(_demo_root(data_dir)))


@contextmanager
def one_demo_at_a_time(data_dir: Path) -> Generator[None]:
    """Hold `<data_dir>/demo.lock` while a demo runs.

    Each demo rebuilds `<data_dir>/demo/` from scratch, and its go-test-runner owns the work
    directory under `<data_dir>/demo-cache/`. A second demo on the same data directory would delete
    the first one's state while it runs, so it stops here with the holder's pid.

    Raises:
        DemoError: another demo holds the lock.
    """
    try:
        lock = take_lock(data_dir / "demo.lock")
    except LockHeld as held:
        raise DemoError(
            f"another `goresolve demo` (pid {held.holder}) is running on {data_dir}: wait for it to finish, "
            "or give this one its own GORESOLVE_DATA_DIR"
        ) from None
    try:
        yield
    finally:
        lock.close()


@dataclass(frozen=True)
class World:
    """Everything the demo's servers work on, under `<data dir>/demo/`."""

    data_dir: Path
    root: Path
    remote: Path  # the bare repository made from examples/sample-service ("origin")
    policy_dir: Path
    state_dir: Path  # the servers' state: code index, pull requests and their remotes, audit logs
    commit: str
    # go-test-runner's work dir (build cache, the tamper analyzer's binary) outlives the demo's state: built once
    runner_dir: Path
    embedder: str | None = None  # code-search's embedder for the sample's index (None: its default)

    @property
    def pr_remote(self) -> Path:
        """The local remote github-pr pushes branches to (its local backend's clone of `remote`)."""
        return self.state_dir / "github-pr" / "remotes" / f"{REPO}.git"

    @property
    def pr_db(self) -> Path:
        return pr_db(self.state_dir)

    @property
    def log_file(self) -> Path:
        """The demo process's own log lines (routing decisions, index notes): kept off the screen."""
        return self.root / "demo.log"


@contextmanager
def logs_to_file(path: Path) -> Generator[None]:
    """While the demo renders its own screen, log records go to `path`; the terminal shows WARNING and above.

    The records keep their level, format and filters (the file gets what the terminal would have shown);
    every run's routing decision and steps are in its run record as well (`goresolve trace`).
    """
    root = logging.getLogger()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    screens = list(root.handlers)
    for screen in screens[:1]:
        handler.setFormatter(screen.formatter)
        for check in screen.filters:
            handler.addFilter(check)
    levels = [screen.level for screen in screens]
    for screen in screens:
        screen.setLevel(max(screen.level, logging.WARNING))
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        for screen, level in zip(screens, levels, strict=True):
            screen.setLevel(level)


def _make_repo_module() -> Any:
    spec = importlib.util.spec_from_file_location("make_sample_repo", EXAMPLES / "make_sample_repo.py")
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the package
        raise DemoError(f"{EXAMPLES / 'make_sample_repo.py'} is missing: run the demo from a full checkout")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_environment(tickets: tuple[str, ...] = TICKETS) -> None:
    """What the demo reads from the environment and the checkout, checked before `prepare_world` deletes the
    previous demo (whose pull requests and remotes the commands it printed still name).

    Raises:
        DemoError: a model setting is wrong, a recording is missing, or the shipped policies do not load.
    """
    for ticket in tickets:
        demo_model(ticket)
    try:
        load_agent_policy(POLICIES)
    except PolicyError as exc:
        raise DemoError(f"the shipped policies do not load: {exc.message}") from None


def prepare_world(
    data_dir: Path, console: Console, *, embedder: str | None = None, runner_dir: Path | None = None
) -> World:
    """Rebuild `<data_dir>/demo/`: the sample service as a bare git repository and policies naming it.

    Its code-search index is made by `run_demo` (while the servers start) or `index_world`.

    Raises:
        DemoError: git or the policies failed (the message says which).
    """
    if not SERVICE.is_dir():
        raise DemoError(f"{SERVICE} is missing: the demo needs a full checkout of the repository")
    root = _demo_root(data_dir)
    remote = root / f"{REPO}.git"
    policy_dir = root / "policies"
    private_dir(data_dir)
    staged = Path(tempfile.mkdtemp(prefix=".demo-policies-", dir=data_dir))
    try:
        _stage_policies(staged, remote)  # checked before the previous demo is removed
        shutil.rmtree(root, ignore_errors=True)  # every demo starts from the same state
        maker = _make_repo_module()
        try:
            commit = str(maker.make_repo(remote, SERVICE))
        except (maker.SampleRepoError, OSError) as exc:
            raise DemoError(f"could not make the sample repository: {str(exc)[:300]}") from None
        shutil.move(staged, policy_dir)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    console.print(
        f"[bold]sample service[/bold] {SERVICE.relative_to(ROOT)} → git repository {remote} (main {commit[:12]})"
    )
    runner = runner_dir or data_dir / "demo-cache" / "go-test-runner"
    return World(data_dir, root, remote, policy_dir, _state_dir(root), commit, runner, embedder)


def _stage_policies(policy_dir: Path, remote: Path) -> None:
    """The shipped policies as the demo runs them, in `policy_dir`: repos.yaml holds the sample service alone (at
    `remote`), and each identity's repositories are cut to it (one the user added with `goresolve repo add` is
    not in this copy). Both the agent's and the servers' checks are run.

    Raises:
        DemoError: the policies do not load (the message names the file and field).
    """
    for name in POLICY_FILES:
        shutil.copy(POLICIES / name, policy_dir / name)
    (policy_dir / "repos.yaml").write_text(
        "# Written by `goresolve demo`: the bundled sample service as a git repository.\n"
        f"repos:\n  {REPO}:\n    path: {remote}\n    default_branch: main\n",
        encoding="utf-8",
    )
    try:
        access: Any = load_yaml_file(policy_dir / "access.yaml")
        for entry in ((access or {}).get("identities") or {}).values():
            if isinstance(entry, dict) and isinstance(entry.get("repos"), list):
                entry["repos"] = [r for r in cast("list[Any]", entry["repos"]) if r == REPO]
        (policy_dir / "access.yaml").write_text(yaml.safe_dump(access, sort_keys=False), encoding="utf-8")
        load_agent_policy(policy_dir)
        load_policies(policy_dir)
    except (PolicyError, ConfigError, YamlFileError) as exc:
        raise DemoError(f"the policies do not load: {exc.message}") from None


def ensure_embedding_model(world: World, console: Console) -> None:
    """Install and build the embedding model first when it is missing, as `goresolve model install` does.

    The router, the demo's indexer and code-search's process would each install it on first use: at the
    same time, and the router would route without its classifier meanwhile. Installed here, once, they
    all find it.

    Raises:
        typer.Exit: it could not be installed (the message said why).
    """
    from servers.code_search import minilm
    from servers.code_search.cli import model_install

    models = world.data_dir / "models"  # where `goresolve model install` puts it, and the router reads it
    if minilm.built_model(models) is not None:
        return
    console.print("[bold]embedding model[/bold] not installed yet: installing it first (`goresolve model install`)")
    model_install(models)


def _progress(console: Console) -> Progress:
    """The index bar (files, files/s, chunks/s) and, below it, what the servers are doing meanwhile."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[files_rate]}"),
        TextColumn("{task.fields[chunks_rate]}"),
        TimeElapsedColumn(),
    ]
    return Progress(*columns, console=console, transient=False)


def _index(world: World, console: Console, progress: Progress, bar: Any) -> None:
    """Index the sample service for code-search (the demo process writes it; code-search reads it on first use).

    Raises:
        DemoError: the embedder or the indexer failed.
    """
    from servers.code_search.indexer import index_repo
    from servers.code_search.settings import CodeSearchSettings, open_embedder, open_index

    models = world.data_dir / "models"  # where `goresolve model install` puts it
    overrides: dict[str, Any] = {
        "state_dir": world.state_dir,
        "policy_dir": world.policy_dir,
        "model_cache_dir": models,
    }
    if world.embedder is not None:
        overrides["embedder"] = world.embedder
    settings = CodeSearchSettings(**overrides)
    try:
        model = open_embedder(settings)
        index = open_index(settings, model, create=True)
        progress.reset(progress.tasks[0].id)  # the bar's rates count from here, not from the model's loading
        report = index_repo(index, model, world.remote, REPO, None, progress=bar)
    except GoresolveError as exc:
        raise DemoError(f"indexing the sample service failed: {exc.message}") from None
    console.print(
        f"[green]indexed[/green] {report.files} files → {report.chunks} chunks with {settings.embedder} "
        f"in {report.seconds:.1f}s"
    )


def index_world(world: World, console: Console) -> None:
    """Index the sample service with a progress bar, on its own (`run_demo` does it while the servers start).

    Raises:
        DemoError: the embedder or the indexer failed.
    """
    from servers.code_search.cli import _Bar  # pyright: ignore[reportPrivateUsage] - the CLI's progress adapter

    with logs_to_file(world.log_file), _progress(console) as progress:
        _index(world, console, progress, _Bar(progress))


def servers_config(world: World) -> ServersConfig:
    """The four servers over stdio on local backends, each pointed at the demo's policies and state."""
    # none of the user's own server settings: the demo's servers are set up here alone
    base = {"GORESOLVE_DATA_DIR": str(world.data_dir)}
    extra = {
        "jira-read": {"BACKEND": "local"},  # the bundled sample tickets
        "code-search": {},
        "go-test-runner": {"WORK_DIR": str(world.runner_dir)},
        "github-pr": {"BACKEND": "local"},
    }
    bindir = Path(sys.executable).parent
    specs: list[StdioServer] = []
    for name, prefix in SERVERS:
        env = server_env(name, os.environ, own_settings=False) | base
        env |= {f"{prefix}POLICY_DIR": str(world.policy_dir), f"{prefix}STATE_DIR": str(world.state_dir)}
        env[f"{prefix}LOG_LEVEL"] = "WARNING"
        env |= {prefix + key: value for key, value in extra[name].items()}
        specs.append(StdioServer(name=name, command=str(bindir / f"{name}-mcp"), env=env))
    # a first build on a cold machine may take minutes; a run's own calls stay bounded by its wall clock
    return ServersConfig(servers=tuple(specs), call_timeout_s=900.0)


@dataclass(frozen=True)
class DemoModel:
    model: ChatModel
    label: str  # what the screen says the model is
    live: bool
    config: ModelConfig | None = None
    route_models: bool = False  # GORESOLVE_AGENT_ROUTE_MODELS, as `goresolve resolve` reads it

    def for_model(self, name: str) -> ChatModel:
        """The live model the router's tier names, on the same provider and endpoint."""
        assert self.config is not None
        return build_model(self.config.model_copy(update={"model": name}))

    @property
    def routed(self) -> Callable[[str], ChatModel] | None:
        """The run's model for a routed tier: the tier's own (`for_model`) only when a live model runs with
        GORESOLVE_AGENT_ROUTE_MODELS on; otherwise None, and the configured model (or the recording) runs every
        tier."""
        return self.for_model if self.live and self.route_models else None


def demo_model(ticket: str) -> DemoModel:
    """The recording for `ticket`, or the live model GORESOLVE_AGENT_PROVIDER and GORESOLVE_AGENT_MODEL name.

    Raises:
        DemoError: the live model is misconfigured, or the recording is missing.
    """
    old = sorted(name for name in RENAMED if name in os.environ)
    if old:
        raise DemoError(f"{old[0]} is no longer read: set {RENAMED[old[0]]} (the name goresolve resolve reads)")
    try:
        settings = AgentSettings()
        live = settings.live_model()
    except ValidationError as exc:
        raise DemoError(f"live model {settings_error(exc)}") from None
    except ValueError as exc:
        raise DemoError(f"live model: {exc}") from None
    if live is not None:
        label = f"{live.model} (live, {live.provider})"
        try:
            return DemoModel(build_model(live), label, True, live, settings.route_models)
        except (ValueError, LLMError) as exc:
            raise DemoError(f"live model {live.model}: {exc}") from None
    cassette = RECORDINGS / f"{ticket}.jsonl"
    if not cassette.is_file():
        raise DemoError(f"no recording {cassette}: run examples/recordings/record.py, or set GORESOLVE_AGENT_MODEL")
    model = ReplayModel(cassette)
    return DemoModel(model, f"recording of {model.name} ({cassette.relative_to(ROOT)})", False)


# --- the live display --------------------------------------------------------------------------------


class Display:
    """Turns the loop's events into terminal lines as they happen; a spinner says what is running."""

    def __init__(self, console: Console, status: Status | None) -> None:
        self.console = console
        self.status = status

    def __call__(self, kind: str, event: dict[str, Any]) -> None:
        handler: Callable[[dict[str, Any]], None] | None = getattr(self, f"on_{kind}", None)
        if handler is not None:
            handler(event)

    def busy(self, text: str) -> None:
        if self.status is not None:
            self.status.update(text)

    def line(self, tag: str, text: str | Text, style: str = "") -> None:
        """One tagged line; what the model, a ticket or a test wrote in it acts on no terminal (`without_controls`)."""
        label = Text(f"{tag:>9} ", style=f"bold {style}".strip())
        shown = Text(without_controls(text.plain), style=text.style) if isinstance(text, Text) else None
        self.console.print(Text.assemble(label, shown or Text(without_controls(str(text)))))

    def more(self, text: str, style: str) -> None:
        """A line continuing the one above (a diff line, a failing test), as `line` cleans it."""
        self.console.print(Text(without_controls(text), style=style))

    def on_route(self, event: dict[str, Any]) -> None:
        limits = event.get("limits") or {}
        if event.get("model") is None:
            self.line("route", f"tier {event['tier']}: a human takes it ({event['reason']})", "magenta")
            return
        budget = (
            f"budget ${limits.get('max_cost_usd', 0):.2f}, {limits.get('failed_attempts')} failed attempts, "
            f"{limits.get('wall_clock_s', 0):.0f}s"
        )
        by = event.get("decided_by", "")
        confidence = f", confidence {event['confidence']:.2f}" if by == "classifier" else ""
        policy_model = event.get("policy_model")
        model = str(event["model"]) + (
            f" (policy: {policy_model})" if policy_model not in (None, event["model"]) else ""
        )
        self.line(
            "route", f"tier {event['tier']} · model {model} · {budget} — {by}{confidence}: {event['reason']}", "magenta"
        )
        self.busy("triage: searching the code")

    def on_context(self, event: dict[str, Any]) -> None:
        units = [str(u).removeprefix("// ").split(" ", 1)[0] for u in event.get("units") or []]
        shown = ", ".join(units[:4]) + (f" +{len(units) - 4} more" if len(units) > 4 else "")
        if event.get("error"):
            self.line("triage", f"no context: {event['error']}", "yellow")
        else:
            self.line("triage", f"context ≈{event['tokens']} tokens from {event['tool']}: {shown or 'nothing'}", "blue")
        self.busy("waiting for the model")

    def on_assistant(self, event: dict[str, Any]) -> None:
        content = str(event.get("content") or "").strip()
        if content:
            self.line("model", Text(content[:400], style="italic"), "white")

    def on_tool_call(self, event: dict[str, Any]) -> None:
        name, args = str(event["name"]), dict(event.get("arguments") or {})
        if name == "edit":
            self.line("edit", f"{args.get('path')}", "yellow")
            for old in str(args.get("search", "")).splitlines():
                self.more(f"          - {old}", "red")
            for new in str(args.get("replace", "")).splitlines():
                self.more(f"          + {new}", "green")
            return
        if name == "run_tests":
            return  # tests_started says more
        shown = ", ".join(f"{k}={_short(v)}" for k, v in args.items())
        self.line("tool", f"{name}({shown})", "cyan")
        self.busy(f"{name} …")

    def on_tests_started(self, event: dict[str, Any]) -> None:
        flags = " ".join(event.get("flags") or [])
        run = f" -run '{event['run']}'" if event.get("run") else ""
        what = "with the patch" if event.get("patched") else "at the base commit"
        cmd = f"go test {flags + ' ' if flags else ''}{' '.join(event['packages'])}{run}"
        self.line("test", f"go-test-runner: {cmd} ({what}, sandboxed)", "cyan")
        self.busy(f"go-test-runner: {cmd}")

    def on_tests_done(self, event: dict[str, Any]) -> None:
        if event.get("ok"):
            self.line("", f"✔ {event.get('summary') or 'tests pass'}", "green")
        else:
            self.line("", f"✘ {event.get('summary') or 'tests fail'}", "red")
            for failure in (event.get("failures") or [])[:4]:
                self.more(f"            {failure['test']}: {failure['first_line'][:160]}", "red")
        self.busy("waiting for the model")

    def on_attempt(self, event: dict[str, Any]) -> None:
        functions = ", ".join(event.get("functions") or []) or "-"
        style = "green" if event.get("result") == "pass" else "yellow"
        self.line("attempt", f"#{event['number']}: {event['result']} (touched {functions})", style)

    def on_format_error(self, event: dict[str, Any]) -> None:
        self.line("format", f"malformed call corrected: {str(event.get('message'))[:160]}", "yellow")

    def on_opening_pr(self, event: dict[str, Any]) -> None:
        self.line("submit", f"checks pass: opening a pull request “{event['title']}”", "green")
        self.busy("github-pr: pushing the branch")

    def on_escalating(self, event: dict[str, Any]) -> None:
        self.line("breaker", f"{event['exit']}: {event['reason']}", "red")
        self.busy("hand-off: root-cause hypothesis, draft pull request, owner")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return repr(text[:60] + "…") if len(text) > 60 else repr(text) if isinstance(value, str) else text


def render_outcome_panel(console: Console, result: RunResult, world: World | None) -> None:
    """The end of a run: the pull request, the rendered hand-off, or the error."""
    if result.outcome == "pr" and result.pr:
        pr = result.pr
        body = (
            f"pull request #{pr.get('number')}: branch {pr.get('branch')} → {pr.get('base', 'main')} "
            f"at {str(pr.get('head_sha', ''))[:12]}\n"
            + (f"on the local remote {world.pr_remote}\n" if world is not None else "")
            + str(pr.get("url", ""))
        )
        console.print(Panel(body, title=f"{result.ticket}: pull request opened", border_style="green"))
        return
    if result.outcome == "escalated":
        parts: list[Any] = [Markdown(result.handoff or "_(no hand-off)_")]
        notes = [*(result.extra.get("handoff_notes") or [])]
        if result.pr:
            notes.insert(0, f"draft pull request #{result.pr.get('number')} for {result.owner}, labelled for humans")
        if notes:
            parts.append(Text(without_controls("\n" + "\n".join(f"· {n}" for n in notes)), style="dim"))
        console.print(Panel(Group(*parts), title=f"{result.ticket}: handed to a human", border_style="yellow"))
        return
    shown = Text(without_controls(f"{result.exit}: {result.reason}"))  # not markup: the reason may quote anyone
    console.print(Panel(shown, title=Text(f"{result.ticket}: error"), border_style="red"))


def summary_table(results: list[RunResult]) -> Table:
    table = Table("ticket", "outcome", "exit", "tool calls", "tokens", "cost", "wall time")
    for r in results:
        colour = {"pr": "green", "escalated": "yellow"}.get(r.outcome, "red")
        table.add_row(
            r.ticket,
            f"[{colour}]{r.outcome}[/{colour}]",
            r.exit,
            str(r.tool_calls),
            str(r.tokens),
            f"${r.cost_usd:.4f}",
            f"{r.duration_s:.1f}s",
        )
    return table


def next_steps(results: list[RunResult], world: World) -> list[str]:
    lines = [f"goresolve prs --db {world.pr_db}", "goresolve runs"]
    lines += [f"goresolve trace {r.run_id}" for r in results]
    for r in results:
        branch = (r.pr or {}).get("branch")
        if branch:
            lines.append(f"git -C {world.pr_remote} diff main {branch}")
    return lines


def summary_json(results: list[RunResult], world: World) -> dict[str, Any]:
    keys = ("ticket", "outcome", "exit", "reason", "tool_calls", "tokens", "cost_usd", "duration_s", "trace_id")
    runs = [{k: getattr(r, k) for k in (*keys, "run_id", "model", "attempts")} | {"pr": r.pr} for r in results]
    return {"runs": runs, "remote": str(world.pr_remote), "next": next_steps(results, world)}


async def run_demo(world: World, console: Console, *, tickets: tuple[str, ...] = TICKETS) -> list[RunResult]:
    """Both tickets through the agent loop over the four stdio servers, displayed as they run.

    Ctrl-C (SIGINT) or SIGTERM cancels the demo inside the event loop, so the servers are shut down in order
    (not left to the garbage collector after the loop closed); further signals meanwhile are ignored.

    Raises:
        DemoInterrupted: a signal stopped it.
        DemoError: a model or a server could not be set up (a run's own failure is its RunResult).
    """
    work = anyio.CancelScope()
    stopped: list[int] = []
    results: list[RunResult] = []
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        await group.start(stop_on_signal, work, stopped)
        with work:
            try:
                results = await _run_demo(world, console, tickets)
            except Exception as exc:  # noqa: BLE001 - raised below, outside the task group (which would wrap it)
                failure = exc
        group.cancel_scope.cancel()  # the signal watcher
    if stopped:
        raise DemoInterrupted
    if failure is not None:
        raise failure
    return results


async def _run_demo(world: World, console: Console, tickets: tuple[str, ...]) -> list[RunResult]:
    from agent.exits import RunExit

    try:
        policy = load_agent_policy(world.policy_dir)
    except PolicyError as exc:
        raise DemoError(exc.message) from None
    models = [demo_model(t) for t in tickets]
    router = build_router(world.policy_dir, policy)  # the shipped routing.yaml: rules, then its classifier
    ledger = Ledger(world.data_dir / "agent" / "ledger.sqlite")
    results: list[RunResult] = []
    failure: DemoError | None = None  # raised after the servers' task groups closed (they would wrap it)
    from servers.code_search.cli import _Bar  # pyright: ignore[reportPrivateUsage] - the CLI's progress adapter

    progress = _progress(console)
    bar = _Bar(progress)  # the index bar is the progress display's first task
    # The index (Python, in a thread of this process) is made while the servers start and go-test-runner
    # builds the module (their own processes): neither needs the other, and code-search opens the index
    # on its first query, which comes after both.
    try:
        with logs_to_file(world.log_file), ThreadPoolExecutor(1, thread_name_prefix="demo-index") as pool:
            progress.start()
            try:
                indexing = pool.submit(_index, world, console, progress, bar)
                step = progress.add_task("servers", total=None, files_rate="", chunks_rate="")
                progress.update(step, description="starting jira-read, code-search, go-test-runner, github-pr")
                async with open_servers(servers_config(world)) as box:
                    counts = {n: sum(1 for server, _ in box.tools.values() if server == n) for n, _ in SERVERS}
                    names = ", ".join(f"{n} ({c} tools)" for n, c in counts.items())
                    console.print(f"[bold]servers[/bold] {names}, over stdio on local backends")
                    progress.update(step, description="go-test-runner: first build of the module")
                    try:
                        await warm_up(box, world, console)
                        progress.update(step, visible=False)
                        await anyio.to_thread.run_sync(indexing.result)
                        progress.stop()
                        with console.status("") as status:
                            for ticket, chosen in zip(tickets, models, strict=True):
                                run = _run_one(ticket, chosen, box, policy, ledger, world, console, status, router)
                                results.append(await run)
                    except DemoError as exc:
                        failure = exc
            finally:
                progress.stop()
    except RunExit as exc:
        raise DemoError(f"the servers could not start: {exc.reason}") from None
    finally:
        ledger.close()
    if failure is not None:
        raise failure
    return results


async def _run_one(
    ticket: str,
    chosen: DemoModel,
    box: Toolbox,
    policy: AgentPolicy,
    ledger: Ledger,
    world: World,
    console: Console,
    status: Status,
    router: Router,
) -> RunResult:
    await anyio.lowlevel.checkpoint()  # stopped before it started: no run
    console.rule(f"[bold]{ticket}[/bold] · model: {chosen.label}")
    display = Display(console, status)
    settings = RunSettings(
        repo=REPO, state_dir=world.data_dir, ledger=ledger, on_event=display, router=router, models=chosen.routed
    )
    result = await run_ticket(ticket, chosen.model, box, policy, settings)
    # a run stopped by Ctrl-C ends as an ordinary failed run (its cancelled tool call refused): not shown as one
    await anyio.lowlevel.checkpoint()
    status.update("")
    if not chosen.live and replay_broke(result):
        raise DemoError(
            f"{ticket}: the recording no longer matches this run ({result.reason}). The tools, the prompt, the "
            "sample service or the Go toolchain's messages changed since it was made: re-record with "
            "`python examples/recordings/record.py`"
        )
    render_outcome_panel(console, result, world)
    return result


async def warm_up(box: Toolbox, world: World, console: Console) -> None:
    """Build and vet the module once through go-test-runner with a one-line patch before the runs start.

    The first patched call of a fresh runner builds its tamper analyzer and fills its build cache;
    doing that here keeps the one-time cost out of the first run's wall clock (and its breaker).

    Raises:
        DemoError: go-test-runner failed or timed out.
    """
    from agent.exits import RunExit

    started = time.monotonic()
    args = {"repo": REPO, "ref": world.commit, "packages": ["./..."], "patch": WARM_UP_PATCH}
    try:
        outcome = await box.call("check_build", args)
    except RunExit as exc:
        raise DemoError(f"go-test-runner could not build the sample service: {exc.reason}") from None
    if not outcome.ok or not (outcome.structured or {}).get("ok", False):
        raise DemoError(f"go-test-runner could not build the sample service: {outcome.text[:300]}")
    timings = (outcome.structured or {}).get("timings") or {}
    split = (
        f" (checkout and the patch's static analysis {timings['setup_s']:.0f}s, go build + vet {timings['run_s']:.0f}s)"
        if {"setup_s", "run_s"} <= timings.keys()
        else ""
    )
    console.print(
        f"[bold]go-test-runner[/bold] built and vetted the module in {time.monotonic() - started:.0f}s{split}"
    )


def print_summary(console: Console, results: list[RunResult], world: World, started: float) -> None:
    console.rule("[bold]summary")
    console.print(summary_table(results))
    for r in results:
        console.print(f"{r.ticket}: run {r.run_id} · trace {r.trace_id}", highlight=False)
    console.print(f"demo wall time {time.monotonic() - started:.0f}s; log lines in {world.log_file}; see more with:")
    for line in next_steps(results, world):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
