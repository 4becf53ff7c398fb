"""`goresolve route TICKET|FILE`: which tier takes a ticket, by which rule or classifier, and why.

    goresolve route SVC-12              read through jira-read (started over stdio, like `resolve`)
    goresolve route svc#12              a GitHub issue of repository svc, read through github-pr
    goresolve route tickets/SVC-12.yaml jira-read's local backend on that file's directory
    goresolve route ticket.json|ticket.md   read directly (see agent.router.ticket)
    goresolve route 12.json             a GitHub issue as `gh api repos/OWNER/REPO/issues/12` prints it
    goresolve route https://acme.atlassian.net/browse/SVC-12   an issue URL (`goresolve route` reads it
                                        as `goresolve resolve` does, then as its key)
    --json                              the decision as the run record stores it

Settings (prefix GORESOLVE_ROUTER_): POLICY_DIR (routing.yaml and budgets.yaml), MODELS_DIR (the
installed embedding model; default <data dir>/models), and for `classifier.mode: model` the
gateway: PROVIDER, BASE_URL, API_KEY or CASSETTE (a recorded session). Exit 0 when routed, 1 on an
error (the message says which file, field or server).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import platformdirs
import typer
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.table import Table

from agent.policy import DEFAULT_POLICY_DIR, PolicyError, load_agent_policy
from agent.router.errors import ClassifierUnavailable, RoutingPolicyError, TicketError
from agent.router.policy import RoutingPolicy, load_routing_policy
from agent.router.route import RouteDecision, Router
from agent.router.ticket import MAX_FILE_BYTES, TicketFacts, load_ticket_file
from agent.ticket_files import (
    GITHUB_KEY,
    KEY,
    UNREADABLE,
    TicketFileError,
    github_issue_number,
    load_json_or_yaml,
    policies_reading,
    repo_named,
    single_ticket_dir,
    ticket_file_key,
    why,
)

app = typer.Typer(add_completion=False, help="Route a ticket to a tier: rules first, then the classifier.")
err = Console(stderr=True)


def _models_dir() -> Path:
    override = os.environ.get("GORESOLVE_DATA_DIR")
    base = Path(override).expanduser().resolve() if override else platformdirs.user_data_path("goresolve")
    return base / "models"


class RouterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_ROUTER_", extra="forbid", frozen=True)

    policy_dir: Path = DEFAULT_POLICY_DIR
    models_dir: Path = Field(default_factory=_models_dir)
    provider: Literal["openai", "anthropic", "replay"] | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    cassette: Path | None = None


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


async def read_ticket(key: str, env: dict[str, str], policy_dir: Path) -> TicketFacts:
    """Fetch one ticket over stdio, from the server and with the policy `resolve` uses: a Jira key through
    jira-read, a GitHub issue (`svc#12`, `acme/svc#12`) through github-pr.

    Raises:
        TicketError: not a ticket this can read, or the server did not start, refused, or answered with no ticket.
    """
    from agent.exits import RunExit
    from agent.servers import ServersConfig, StdioServer, open_servers, server_env

    issue = GITHUB_KEY.match(key)
    if issue is None:
        name, prefix, tool, args = "jira-read", "GORESOLVE_JIRA_READ_", "get_issue", {"key": key}
    elif issue["repo"] is None:
        raise TicketError(f"{key}: name the repository the issue belongs to, as in sample-service{key}")
    else:  # github-pr knows a repository by its name in repos.yaml, which a GitHub name (owner/name) maps to
        name, prefix, tool = "github-pr", "GORESOLVE_GITHUB_PR_", "get_github_issue"
        args = {"repo": repo_named(policy_dir, issue["repo"]) or issue["repo"], "number": int(issue["number"])}
    server = StdioServer(
        name=name,
        command=str(Path(sys.executable).parent / f"{name}-mcp"),
        # its log lines stay off the screen unless asked for: a failure reaches the user as one `error:` line; only its
        # own settings (no other server's token, no model key)
        env={
            f"{prefix}LOG_LEVEL": "ERROR",
            **server_env(name, env),
            f"{prefix}POLICY_DIR": str(policy_dir.resolve()),
        },
    )
    # errors are carried out of the block: raised inside it, the clients' task group would wrap them
    problem, outcome = "", None
    try:
        async with open_servers(ServersConfig(servers=(server,), call_timeout_s=60)) as box:
            if tool not in box.tools:
                problem = f"{name} offers no {tool} to this identity"
            else:
                try:
                    outcome = await box.call(tool, args)
                except PermissionError as exc:
                    problem = f"{name} refused {key}: {exc}"
    except RunExit as exc:
        raise TicketError(exc.reason) from None
    if outcome is None or not outcome.ok or outcome.structured is None:
        raise TicketError(problem or f"{key}: {(outcome.text if outcome else '')[:200] or 'no such ticket'}")
    return TicketFacts.from_issue(outcome.structured)


def load_ticket(ticket: str, policy_dir: Path) -> TicketFacts:
    """A key (through jira-read), a ticket file in Jira's shape (.yaml, or .json with `fields`: jira-read's
    local backend, as `goresolve resolve` reads it), or a flat .json/.md file (`load_ticket_file`).

    Raises:
        TicketError: as `load_ticket_file` and `read_ticket`.
    """
    path = Path(ticket).expanduser()
    env = dict(os.environ)
    number = github_issue_number(path)  # the test `goresolve resolve` applies to the same file
    if number is not None:
        return github_issue_file(path, number, policy_dir)
    if path.suffix in (".md", ".markdown") or (path.suffix == ".json" and not _jira_shaped(path)):
        return load_ticket_file(path)
    if path.suffix in (".yaml", ".yml", ".json"):
        try:
            key = ticket_file_key(path, ticket)
        except TicketFileError as exc:
            raise TicketError(exc.message) from None
        with ExitStack() as stack:
            try:
                folder = stack.enter_context(single_ticket_dir(path))
                # as `goresolve resolve` reads it: the file's project is readable for this one read
                readable = stack.enter_context(policies_reading(policy_dir, key.rpartition("-")[0]))
            except OSError as exc:
                raise TicketError(f"cannot read {path.name}: {exc.strerror or type(exc).__name__}") from None
            except TicketFileError as exc:
                raise TicketError(exc.message) from None
            env |= {"GORESOLVE_JIRA_READ_BACKEND": "local", "GORESOLVE_JIRA_READ_TICKETS_DIR": str(folder)}
            return anyio.run(read_ticket, key, env, readable)
    if not (KEY.match(ticket) or GITHUB_KEY.match(ticket)):  # before a server is started for it, as resolve says
        raise TicketError(
            f"{ticket[:200]!r} is not a Jira key (SVC-12), a GitHub issue (acme/svc#12), an issue URL or a ticket "
            "file (.yaml/.json/.md)"
        )
    return anyio.run(read_ticket, ticket, env, policy_dir)


def github_issue_file(path: Path, number: int, policy_dir: Path) -> TicketFacts:
    """A GitHub issue saved as `gh api repos/OWNER/REPO/issues/N` prints it (labels are objects with a
    `name`), as `goresolve resolve` accepts it: routed on its title, body and label names. Its key names the
    repository as repos.yaml does when the file's `repository_url` is one registered there by its GitHub name.

    Raises:
        TicketError: the file cannot be read.
    """
    try:
        raw: object = load_json_or_yaml(path)
    except UNREADABLE as exc:
        raise TicketError(f"cannot read {path.name}: {why(exc)}") from None
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}  # pyright: ignore[reportUnknownVariableType]
    names: list[str] = []
    for label in data.get("labels") or []:
        name: Any = label.get("name") if isinstance(label, dict) else label  # pyright: ignore[reportUnknownMemberType]
        if name:
            names.append(str(name))
    github = str(data.get("repository_url") or "").rstrip("/").rpartition("/repos/")[2]
    repo = (repo_named(policy_dir, github) or github) if github.count("/") == 1 else ""
    issue = {
        "key": f"{repo}#{number}",
        "summary": str(data.get("title") or ""),
        "description": str(data.get("body") or ""),
        "labels": names,
    }
    return TicketFacts.from_issue(issue)


def _jira_shaped(path: Path) -> bool:
    """True for a JSON file holding a Jira issue (an object with `fields`); anything else is left to
    `load_ticket_file`, whose errors name what is wrong."""
    try:
        data = json.loads(path.read_bytes()[: MAX_FILE_BYTES + 1])
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "fields" in data


def make_router(policy: RoutingPolicy, settings: RouterSettings) -> Router:
    """The router with the classifier routing.yaml configures; an unavailable one is reported, not fatal."""
    from agent.llm import LLMError, ModelConfig, PriceBook, build_model
    from agent.router.build import build_classifier

    chat = prices = None
    if policy.classifier.mode == "model" and policy.classifier.model and (settings.provider or settings.cassette):
        provider = "replay" if settings.cassette else settings.provider
        assert provider is not None
        config = ModelConfig(
            provider=provider,
            model=policy.classifier.model,
            base_url=settings.base_url,
            api_key=settings.api_key,
            cassette=settings.cassette,
        )
        try:
            chat = build_model(config)
            prices = PriceBook(load_agent_policy(settings.policy_dir).budgets)
        except (ValueError, OSError, LLMError, PolicyError) as exc:
            err.print(f"[yellow]warning:[/yellow] routing model not available ({type(exc).__name__})")
    try:
        classifier = build_classifier(policy, models_dir=settings.models_dir, chat_model=chat, prices=prices)
    except ClassifierUnavailable as exc:
        err.print(f"[yellow]warning:[/yellow] {exc.message}; unmatched tickets go to '{policy.strongest}'")
        return Router(policy, None, classifier_problem=exc.message)
    return Router(policy, classifier)


def render(decision: RouteDecision, ticket: TicketFacts) -> None:
    out = Console()
    who = decision.model or "a human"
    out.print(f"[bold]{decision.ticket or '(ticket)'}[/bold] {ticket.title}", highlight=False)
    out.print(f"→ tier [bold]{decision.tier}[/bold] ({who}) by {decision.decided_by}", highlight=False)
    table = Table(show_header=False, box=None)
    table.add_row("reason", decision.reason)
    table.add_row("confidence", f"{decision.confidence:.2f}")
    if decision.rule:
        table.add_row("rule", decision.rule)
    if decision.classifier:
        table.add_row("classifier", f"{decision.classifier} (kind {decision.kind})")
        table.add_row("tiers", ", ".join(f"{t} {p:.2f}" for t, p in decision.probabilities.items()))
        table.add_row("nearest", ", ".join(f"{i} ({s:.2f})" for i, s in decision.neighbours[:3]))
    table.add_row("latency", f"{decision.latency_ms:.1f} ms")
    table.add_row("trace", decision.trace_id)
    out.print(table)


@app.command("route")
def route_command(
    ticket: Annotated[
        str,
        typer.Argument(
            help="A Jira key (via jira-read), a GitHub issue svc#12 (via github-pr), or a file: Jira's shape "
            "(.yaml/.json), GitHub's (what `gh api repos/OWNER/REPO/issues/N` prints), flat .json, .md."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    policy_dir: Annotated[Path | None, typer.Option(help="Directory of routing.yaml and budgets.yaml.")] = None,
) -> None:
    """Show which tier takes a ticket (a model, or a human), by which rule or classifier, and why."""
    try:
        settings = RouterSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _fail(f"setting GORESOLVE_ROUTER_{'.'.join(map(str, first['loc'])).upper()}: {first['msg']}") from None
    directory = policy_dir or settings.policy_dir
    settings = settings.model_copy(update={"policy_dir": directory})
    try:
        policy = load_routing_policy(directory, load_agent_policy(directory).budgets)
    except RoutingPolicyError as exc:
        failure = _fail(exc.message)
        for problem in exc.problems[1:]:
            err.print(f"  {exc.file}: {problem}", highlight=False, soft_wrap=True)
        raise failure from None
    except PolicyError as exc:
        raise _fail(exc.message) from None
    try:
        facts = load_ticket(ticket, directory)
    except TicketError as exc:
        raise _fail(exc.message) from None
    from agent.telemetry import run_spans

    run_spans()  # a recording tracer, so the decision carries its trace and span ids
    decision = anyio.run(make_router(policy, settings).decide, facts)
    if as_json:
        print(json.dumps(decision.to_record(), indent=2))
    else:
        render(decision, facts)
