"""The agent's commands, registered on the `goresolve` CLI, and the run set-up `goresolve resolve` uses:

    goresolve runs [--limit N] [--json]          recent runs: outcome, tier, cost, tokens, duration
    goresolve trace RUN_ID                       a run as a timeline tree (durations, tokens, cost)

`build_run` turns the settings into a model, the policy and the four stdio servers; `goresolve resolve`
(goresolve/resolve.py, which may also index a repository) prepares the ticket and repository and calls it.

Settings come from the environment (prefix GORESOLVE_AGENT_): the model (`PROVIDER`, `MODEL`, `BASE_URL`,
`API_KEY`, or `CASSETTE` to replay a recorded session), `STATE_DIR` (default: $GORESOLVE_DATA_DIR or the
per-user data directory, like the servers), `POLICY_DIR`, `IDENTITY`, `TIER`,
the alert webhook (`ALERT_URL`, `ALERT_FORMAT`, `ALERT_ROUTING_KEY`: the spend alert and hand-off notifications)
and when a hand-off is notified there (`HANDOFF_NOTIFY`: never, unreached, always). The servers are started
over stdio with the current environment, so their own settings (GORESOLVE_JIRA_READ_*, ...) apply; each gets only
its own (`agent.servers.server_env`): no other server's token, and not the agent's model key.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import platformdirs
import typer
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from agent.handoff import without_controls
from agent.policy import DEFAULT_POLICY_DIR

if TYPE_CHECKING:
    from agent.alerts import AlertTarget
    from agent.exits import RunResult
    from agent.llm import ChatModel, ModelConfig
    from agent.policy import AgentPolicy
    from agent.router.route import Router
    from agent.servers import ServersConfig

app = typer.Typer(add_completion=False, help="The agent: resolve tickets, list runs, show traces.")
err = Console(stderr=True)
SERVERS = (
    ("jira-read", "GORESOLVE_JIRA_READ_"),
    ("code-search", "GORESOLVE_CODE_SEARCH_"),
    ("go-test-runner", "GORESOLVE_GO_TEST_RUNNER_"),
    ("github-pr", "GORESOLVE_GITHUB_PR_"),
)


def _data_dir() -> Path:
    override = os.environ.get("GORESOLVE_DATA_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return platformdirs.user_data_path("goresolve", appauthor=False)


class AgentSettings(BaseSettings):
    # An empty variable is an unset one (its default), as an empty GORESOLVE_DATA_DIR is: an empty STATE_DIR was
    # the current directory.
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_AGENT_", extra="forbid", frozen=True, env_ignore_empty=True)

    state_dir: Path = Field(default_factory=_data_dir)
    policy_dir: Path = DEFAULT_POLICY_DIR
    identity: str = "local-dev"
    tier: str | None = None
    provider: Literal["openai", "anthropic", "replay"] | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    cassette: Path | None = None
    alert_url: str | None = None
    alert_format: Literal["pagerduty", "slack"] = "slack"
    alert_routing_key: SecretStr | None = None
    handoff_notify: Literal["never", "unreached", "always"] = Field(
        default="unreached",
        description="When a hand-off is also sent to the alert webhook: never; unreached (only when no draft pull "
        "request or issue comment reached anyone); always (every escalation).",
    )
    pins_file: Path | None = Field(default=None, description="JSON {server: sha256:...} of pinned surfaces.")
    redact_credentials: bool = Field(
        default=True, description="Remove credentials from what is sent to the model; off only for a model you host."
    )
    route_models: bool = Field(
        default=False,
        description="Run each routed tier on the model routing.yaml names for it (same provider, endpoint and key: "
        "a gateway serving all of them); off: MODEL for every tier, the tier still setting budgets and hand-offs.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        # checked here, before anything is indexed or a previous demo removed: httpx would refuse it only at the
        # first model call, after every retry
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an http:// or https:// URL, such as http://localhost:11434/v1, not {value[:100]!r}")
        return value.strip()

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # as the servers' state_dir: relative to the current directory, every command would see another state
        return value.expanduser().resolve()

    def live_model(self) -> ModelConfig | None:
        """The live model PROVIDER and MODEL name (with BASE_URL and API_KEY), or None when neither is set.

        `goresolve resolve`, `goresolve eval` and `goresolve demo` all read the model from here.

        Raises:
            ValueError: only one of the two is set (the message names the missing variable).
        """
        from agent.llm import ModelConfig

        if self.provider is None and self.model is None:
            return None
        if self.provider is None:
            raise ValueError("GORESOLVE_AGENT_MODEL is set but GORESOLVE_AGENT_PROVIDER is not (openai or anthropic)")
        if self.model is None:
            raise ValueError(f"GORESOLVE_AGENT_PROVIDER is {self.provider} but GORESOLVE_AGENT_MODEL is not set")
        return ModelConfig(
            provider=self.provider,
            model=self.model,
            base_url=self.base_url,
            api_key=self.api_key,
            redact_credentials=self.redact_credentials,
        )

    def required_live_model(self, otherwise: str) -> ModelConfig:
        """`live_model`, for a command that cannot run without one; `otherwise` says what else would do.

        Raises:
            ValueError: no live model, or half of one (the message names what to set).
        """
        live = self.live_model()
        if live is None:
            raise ValueError(f"no model: set GORESOLVE_AGENT_PROVIDER and GORESOLVE_AGENT_MODEL, {otherwise}")
        return live


def settings_error(exc: ValidationError) -> str:
    """One line naming the GORESOLVE_AGENT_ variable a validation error is about."""
    first = exc.errors()[0]
    return f"setting GORESOLVE_AGENT_{'.'.join(map(str, first['loc'])).upper()}: {first['msg']}"


def load_agent_settings() -> AgentSettings:
    """The agent's settings from the environment; a bad value exits 1 naming the variable."""
    try:
        return AgentSettings()
    except ValidationError as exc:
        err.print(f"[red]error:[/red] {escape(settings_error(exc))}")
        raise typer.Exit(1) from None


class CommandFailed(typer.Exit):
    """A command's one-line failure, already printed on stderr; `message` is that line (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message


def _fail(message: str) -> CommandFailed:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)  # as written: a path is not markup
    return CommandFailed(message)


def _why_not(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__


@dataclass
class PreparedRun:
    """One ticket's run, configured: `await start(key, on_event)` connects the servers and runs it."""

    model: ChatModel
    policy: AgentPolicy
    servers: ServersConfig
    settings: AgentSettings
    repo: str
    alert: AlertTarget | None
    base_branch: str = "main"
    router: Router | None = None
    models: Callable[[str], ChatModel] | None = None

    async def start(self, key: str, on_event: Callable[[str, dict[str, Any]], None] | None = None) -> RunResult:
        from agent.alerts import HandoffAlerts, alert_in_background
        from agent.ledger import Ledger
        from agent.loop import RunSettings, run_ticket

        path = self.settings.state_dir / "agent" / "ledger.sqlite"
        try:
            ledger = Ledger(path)
        except (sqlite3.Error, OSError) as exc:  # a full disk, a corrupt file: no model call is made
            raise _fail(f"{path}: cannot open the run ledger ({_why_not(exc)})") from None
        alert = self.alert

        def on_spend(led: Ledger) -> None:
            # Called on the run's event loop: the check is local, the delivery runs in its own thread (bounded by
            # the target's timeout), so a slow webhook never holds the run.
            if alert is None:
                return
            import httpx

            def failed(exc: httpx.HTTPError) -> None:
                err.print(f"[yellow]warning:[/yellow] spend alert not delivered ({type(exc).__name__})")

            alert_in_background(led, self.policy.budgets.daily, alert, on_failure=failed)

        run_settings = RunSettings(
            repo=self.repo,
            base_branch=self.base_branch,
            identity=self.settings.identity,
            tier=self.settings.tier,
            state_dir=self.settings.state_dir,
            ledger=ledger,
            on_spend=on_spend,
            on_event=on_event,
            router=self.router,
            models=self.models,
            handoff_alerts=HandoffAlerts(alert, self.settings.handoff_notify),
        )
        try:
            return await run_ticket(key, self.model, self.servers, self.policy, run_settings)
        finally:
            ledger.close()


def build_run(
    settings: AgentSettings,
    policy_dir: Path,
    repo: str,
    env: dict[str, str],
    cassette: Path | None,
    base_branch: str = "main",
) -> PreparedRun:
    """The model, policy and stdio servers for one run (`policy_dir` is what the servers and the agent read). Each
    stdio server is given `env` as `server_env` filters it for that server.

    Raises:
        typer.Exit: a bad policy, no model configured, or a model that cannot be built (one line on stderr).
    """
    from agent.alerts import AlertTarget
    from agent.llm import LLMError, ModelConfig, build_model
    from agent.policy import PolicyError, load_agent_policy
    from agent.servers import ServersConfig, ServersConfigError, StdioServer, http_servers_from_env, server_env

    try:
        policy = load_agent_policy(policy_dir)
    except PolicyError as exc:
        raise _fail(exc.message) from None
    replay = cassette or settings.cassette
    if replay is not None:
        config = ModelConfig(provider="replay", model=settings.model or "scripted", cassette=replay)
    else:
        try:
            config = settings.required_live_model("or pass --cassette (GORESOLVE_AGENT_CASSETTE)")
        except ValueError as exc:
            raise _fail(str(exc)) from None
    try:
        model = build_model(config)
    except (ValueError, OSError, json.JSONDecodeError, LLMError) as exc:
        raise _fail(f"model: {exc}") from None
    pins: dict[str, str] = {}
    if settings.pins_file is not None:
        try:
            pins = json.loads(settings.pins_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise _fail(f"pins file {settings.pins_file}: {type(exc).__name__}") from None
    try:  # GORESOLVE_AGENT_MCP_TRANSPORT=http: the pod's sidecars (or Services), each with its own token
        over_http = http_servers_from_env(pins)
    except ServersConfigError as exc:
        raise _fail(str(exc)) from None
    bindir = Path(sys.executable).parent
    servers = ServersConfig(
        servers=over_http
        or tuple(
            StdioServer(
                name=server,
                command=str(bindir / f"{server}-mcp"),
                env={**server_env(server, env), f"{prefix}POLICY_DIR": str(policy_dir.resolve())},
                pin=pins.get(server),
            )
            for server, prefix in SERVERS
        )
    )
    target = settings.alert_url
    alert = AlertTarget(target, settings.alert_format, settings.alert_routing_key) if target is not None else None
    run = PreparedRun(model, policy, servers, settings, repo, alert, base_branch)
    if (policy_dir / "routing.yaml").exists():
        run.router = build_router(policy_dir, policy)
        if replay is None and settings.route_models:  # the routed tier's model, same provider and endpoint
            run.models = lambda name: build_model(config.model_copy(update={"model": name}))
    return run


def build_router(policy_dir: Path, policy: AgentPolicy) -> Router:
    """The router of `policy_dir/routing.yaml` (its classifier as configured; unavailable: rules and fallback)."""
    from agent.router import RoutingPolicyError, load_routing_policy
    from agent.router.cli import RouterSettings, make_router

    try:
        routing = load_routing_policy(policy_dir, policy.budgets)
        return make_router(routing, RouterSettings(policy_dir=policy_dir))
    except RoutingPolicyError as exc:
        raise _fail(str(exc)) from None


@app.command()
def runs(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent runs from the ledger: outcome, tier, cost, tokens, duration."""
    from agent.ledger import Ledger
    from agent.runstore import runs_view

    settings = load_agent_settings()
    path = settings.state_dir / "agent" / "ledger.sqlite"
    rows = []
    if path.exists():
        try:
            ledger = Ledger(path)
            try:
                rows = ledger.runs(limit)
            finally:
                ledger.close()
        except (sqlite3.Error, OSError) as exc:  # not a database, truncated, a directory, a disk that is full
            raise _fail(
                f"{path}: not a readable run ledger ({_why_not(exc)}); move it aside to start a new one"
            ) from None
    if as_json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    if not rows:
        Console(stderr=True).print(f"no runs yet ({path}): goresolve resolve or goresolve demo makes one", markup=False)
        return
    console = Console()
    console.print(runs_view(rows, console.width))


def _run_dir(settings: AgentSettings, run_id: str) -> Path:
    from agent.runstore import RunLookupError, find_run_dir

    try:
        return find_run_dir(settings.state_dir / "agent" / "runs", run_id)
    except RunLookupError as exc:
        raise _fail(exc.message) from None


def trace_tree(spans: list[dict[str, Any]]) -> Tree:
    """The spans of one run as a rich tree, children in start order, with duration, tokens, cost and the
    credentials the gateway removed from a model call."""
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s["span_id"] for s in spans}
    for s in sorted(spans, key=lambda s: s["start_ns"]):
        parent = s["parent_id"] if s["parent_id"] in ids else None
        by_parent.setdefault(parent, []).append(s)

    def label(s: dict[str, Any]) -> str:
        attrs = s.get("attributes") or {}
        ms = (s["end_ns"] - s["start_ns"]) / 1e6
        parts = [f"[bold]{escape(without_controls(str(s['name'])))}[/bold]", f"{ms:.0f} ms"]
        if "gen_ai.usage.input_tokens" in attrs:
            parts.append(f"{attrs['gen_ai.usage.input_tokens']}→{attrs.get('gen_ai.usage.output_tokens', 0)} tokens")
        if "goresolve.cost_usd" in attrs:
            parts.append(f"${attrs['goresolve.cost_usd']:.5f}")
        if removed := attrs.get("goresolve.credentials_removed"):
            parts.append(f"{removed} credential(s) removed")
        if "goresolve.outcome" in attrs:
            parts.append(escape(without_controls(f"{attrs['goresolve.outcome']} ({attrs.get('goresolve.exit')})")))
        if s.get("status") == "ERROR":
            parts.append("[red]error[/red]")
        return " · ".join(parts)

    roots = by_parent.get(None, [])
    tree = Tree(Text(f"trace {spans[0]['trace_id']}" if spans else "no spans"))

    def add(node: Tree, span: dict[str, Any]) -> None:
        child = node.add(label(span))
        for c in by_parent.get(span["span_id"], []):
            add(child, c)

    for root in roots:
        add(tree, root)
    return tree


@app.command()
def trace(
    run_id: Annotated[str, typer.Argument(help="A run id (or a unique prefix), as `goresolve runs` shows.")],
) -> None:
    """A run as a timeline tree: every model call, retrieval and tool call with duration, tokens and cost."""
    settings = load_agent_settings()
    run_dir = _run_dir(settings, run_id)
    path = run_dir / "spans.jsonl"
    try:
        spans = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        tree = trace_tree(spans)
    except OSError as exc:
        raise _fail(f"{path}: cannot read the run's spans: {exc.strerror or type(exc).__name__}") from None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:  # not spans as a run writes
        raise _fail(f"{path}: not a spans file ({type(exc).__name__}: {str(exc)[:80]})") from None
    Console().print(tree)
