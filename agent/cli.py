"""The agent's commands, registered on the `goresolve` CLI:

    goresolve resolve --ticket KEY|FILE --repo NAME|PATH [--json]   one ticket end to end
                                                 (exit 0: a pull request, 3: handed to a human, 1: error)
    goresolve runs [--limit N] [--json]          recent runs: outcome, tier, cost, tokens, duration
    goresolve trace RUN_ID                       a run as a timeline tree (durations, tokens, cost)

Settings come from the environment (prefix GORESOLVE_AGENT_): the model (`PROVIDER`, `MODEL`, `BASE_URL`,
`API_KEY`, or `CASSETTE` to replay a recorded session), `STATE_DIR` (default: $GORESOLVE_DATA_DIR or the
per-user data directory, like the servers), `POLICY_DIR`, `IDENTITY`, `TIER`,
and the spend alert webhook (`ALERT_URL`, `ALERT_FORMAT`, `ALERT_ROUTING_KEY`). The servers are started
over stdio with the current environment, so their own settings (GORESOLVE_JIRA_READ_*, ...) apply.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import platformdirs
import typer
import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from agent.policy import DEFAULT_POLICY_DIR

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
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_AGENT_", extra="forbid", frozen=True)

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
    pins_file: Path | None = Field(default=None, description="JSON {server: sha256:...} of pinned surfaces.")


def _settings() -> AgentSettings:
    try:
        return AgentSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        err.print(
            f"[red]error:[/red] setting GORESOLVE_AGENT_{'.'.join(map(str, first['loc'])).upper()}: {first['msg']}"
        )
        raise typer.Exit(1) from None


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _repo_name(policy_dir: Path, repo: str) -> str:
    """A repository name from policies/repos.yaml; a path is mapped to the name configured for it."""
    candidate = Path(repo).expanduser()
    if not candidate.exists():
        return repo
    try:
        data: Any = yaml.safe_load((policy_dir / "repos.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(f"cannot read repos.yaml to map {repo}: {type(exc).__name__}") from None
    for name, entry in (data.get("repos") or {}).items():
        path = Path(str(entry.get("path", "")))
        path = path if path.is_absolute() else policy_dir / path
        if path.resolve() == candidate.resolve():
            return str(name)
    raise _fail(f"{repo} is not a repository in {policy_dir / 'repos.yaml'}; add it there and index it first")


@app.command()
def resolve(
    ticket: Annotated[str, typer.Option("--ticket", help="Jira key (SVC-12) or a ticket file (KEY.yaml).")],
    repo: Annotated[str, typer.Option("--repo", help="Repository name from repos.yaml, or its path.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run result as JSON.")] = False,
    cassette: Annotated[Path | None, typer.Option(help="Replay this recorded session instead of a live model.")] = None,
) -> None:
    """Run one ticket end to end: exit 0 with a pull request, 3 when handed to a human, 1 on error."""
    from agent.alerts import AlertTarget, check_and_alert
    from agent.ledger import Ledger
    from agent.llm import LLMError, ModelConfig, build_model
    from agent.loop import RunSettings, run_ticket
    from agent.policy import PolicyError, load_agent_policy
    from agent.servers import ServersConfig, StdioServer

    settings = _settings()
    try:
        policy = load_agent_policy(settings.policy_dir)
    except PolicyError as exc:
        raise _fail(exc.message) from None
    env = dict(os.environ)
    key = ticket
    ticket_file = Path(ticket)
    if ticket_file.suffix in (".yaml", ".yml", ".json"):
        if not ticket_file.is_file():
            raise _fail(f"no ticket file {ticket}")
        env["GORESOLVE_JIRA_READ_BACKEND"] = "local"
        env["GORESOLVE_JIRA_READ_TICKETS_DIR"] = str(ticket_file.resolve().parent)
        key = ticket_file.stem
    name = _repo_name(settings.policy_dir, repo)
    replay = cassette or settings.cassette
    if replay is not None:
        config = ModelConfig(provider="replay", model=settings.model or "scripted", cassette=replay)
    elif settings.provider and settings.model:
        config = ModelConfig(
            provider=settings.provider, model=settings.model, base_url=settings.base_url, api_key=settings.api_key
        )
    else:
        raise _fail("no model: set GORESOLVE_AGENT_PROVIDER and GORESOLVE_AGENT_MODEL, or pass --cassette")
    try:
        model = build_model(config)
    except (ValueError, OSError, json.JSONDecodeError, LLMError) as exc:
        raise _fail(f"model: {exc}") from None
    pins: dict[str, str] = {}
    if settings.pins_file is not None:
        pins = json.loads(settings.pins_file.read_text(encoding="utf-8"))
    bindir = Path(sys.executable).parent
    servers = ServersConfig(
        servers=tuple(
            StdioServer(
                name=server,
                command=str(bindir / f"{server}-mcp"),
                env={**env, f"{prefix}POLICY_DIR": str(settings.policy_dir.resolve())},
                pin=pins.get(server),
            )
            for server, prefix in SERVERS
        )
    )
    ledger = Ledger(settings.state_dir / "agent" / "ledger.sqlite")
    target = settings.alert_url
    alert = AlertTarget(target, settings.alert_format, settings.alert_routing_key) if target is not None else None

    def on_spend(led: Ledger) -> None:
        if alert is None:
            return
        import httpx

        try:
            check_and_alert(led, policy.budgets.daily, alert)
        except httpx.HTTPError as exc:
            err.print(f"[yellow]warning:[/yellow] spend alert not delivered ({type(exc).__name__})")

    run_settings = RunSettings(
        repo=name,
        identity=settings.identity,
        tier=settings.tier,
        state_dir=settings.state_dir,
        ledger=ledger,
        on_spend=on_spend,
    )
    result = anyio.run(run_ticket, key, model, servers, policy, run_settings)
    ledger.close()
    if as_json:
        print(json.dumps(result.__dict__, indent=2, default=str))
    else:
        colour = {"pr": "green", "escalated": "yellow"}.get(result.outcome, "red")
        err.print(f"[{colour}]{result.outcome}[/{colour}] {result.ticket}: {result.reason}")
        if result.pr:
            err.print(f"pull request #{result.pr.get('number')} {result.pr.get('url', '')}")
        err.print(f"run {result.run_id} · trace {result.trace_id} · ${result.cost_usd:.4f} · {result.tokens} tokens")
        if result.handoff:
            err.print(result.handoff)
    raise typer.Exit(result.exit_code)


@app.command()
def runs(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent runs from the ledger: outcome, tier, cost, tokens, duration."""
    from agent.ledger import Ledger

    settings = _settings()
    path = settings.state_dir / "agent" / "ledger.sqlite"
    if not path.exists():
        raise _fail(f"no runs yet (no ledger at {path})")
    ledger = Ledger(path)
    rows = ledger.runs(limit)
    ledger.close()
    if as_json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    table = Table("run", "ticket", "outcome", "exit", "tier", "cost", "tokens", "duration")
    for r in rows:
        colour = {"pr": "green", "escalated": "yellow"}.get(r.outcome, "red")
        table.add_row(
            r.run_id,
            r.ticket,
            f"[{colour}]{r.outcome}[/{colour}]",
            r.exit,
            r.tier,
            f"${r.cost_usd:.4f}",
            str(r.tokens),
            f"{r.duration_s:.1f}s",
        )
    Console().print(table)


def _run_dir(settings: AgentSettings, run_id: str) -> Path:
    runs_dir = settings.state_dir / "agent" / "runs"
    matches = sorted(runs_dir.glob(f"{run_id}*")) if runs_dir.is_dir() and "/" not in run_id else []
    if len(matches) != 1:
        raise _fail(f"no run {run_id!r}" if not matches else f"{run_id!r} matches {len(matches)} runs")
    return matches[0]


def trace_tree(spans: list[dict[str, Any]]) -> Tree:
    """The spans of one run as a rich tree, children in start order, with duration, tokens and cost."""
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s["span_id"] for s in spans}
    for s in sorted(spans, key=lambda s: s["start_ns"]):
        parent = s["parent_id"] if s["parent_id"] in ids else None
        by_parent.setdefault(parent, []).append(s)

    def label(s: dict[str, Any]) -> str:
        attrs = s.get("attributes") or {}
        ms = (s["end_ns"] - s["start_ns"]) / 1e6
        parts = [f"[bold]{s['name']}[/bold]", f"{ms:.0f} ms"]
        if "gen_ai.usage.input_tokens" in attrs:
            parts.append(f"{attrs['gen_ai.usage.input_tokens']}→{attrs.get('gen_ai.usage.output_tokens', 0)} tokens")
        if "goresolve.cost_usd" in attrs:
            parts.append(f"${attrs['goresolve.cost_usd']:.5f}")
        if "goresolve.outcome" in attrs:
            parts.append(f"{attrs['goresolve.outcome']} ({attrs.get('goresolve.exit')})")
        if s.get("status") == "ERROR":
            parts.append("[red]error[/red]")
        return " · ".join(parts)

    roots = by_parent.get(None, [])
    tree = Tree(f"trace {spans[0]['trace_id']}" if spans else "no spans")

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
    settings = _settings()
    run_dir = _run_dir(settings, run_id)
    try:
        spans = [json.loads(line) for line in (run_dir / "spans.jsonl").read_text(encoding="utf-8").splitlines()]
    except (OSError, json.JSONDecodeError) as exc:
        raise _fail(f"cannot read the run's spans: {type(exc).__name__}") from None
    Console().print(trace_tree(spans))
