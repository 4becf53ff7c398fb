"""`goresolve`: the umbrella command line.

goresolve demo                      the main job on embedded defaults (no accounts, nothing to start)
goresolve index PATH --repo NAME    index a Go repository for code-search (search: `goresolve search`)
goresolve model install             the embedding model (pinned) and the tamper analyzer (compiled Go), once
goresolve repo add PATH             register a repository in policies/ and grant it to identities
goresolve policy check|schema       validate policies/ or regenerate policies/schema/
goresolve token mint                a bearer token for one server's HTTP transport
goresolve audit verify FILE         check an audit log's hash chain

Every failure ends with one line saying what went wrong and what to do next; `--debug` (before the
command, or GORESOLVE_DEBUG=1) also prints the stack. Sub-commands are typer apps registered in
the block below, one line each.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from servers.common.errors import ConfigError
from servers.common.settings import DEFAULT_POLICY_DIR, default_data_dir

if TYPE_CHECKING:
    from servers.common.policy import Policies

console = Console(stderr=True, soft_wrap=True)
Server = Literal["jira-read", "code-search", "go-test-runner", "github-pr"]


INTERNAL_ERROR = 70
"""The exit code of a failure goresolve did not expect (sysexits' EX_SOFTWARE): never one a command documents
(check-patch's 1 is "refused", audit verify's 1 "the chain is broken", doctor's 1 "it would refuse")."""


class _App(typer.Typer):
    """The root app: any exception that escapes a command becomes one line, not a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the outermost handler: one line for the user, the stack on --debug
            debug = debug_requested()
            if debug:
                traceback.print_exception(exc, file=sys.stderr)
            hint = "report it with the stack above" if debug else "run again with --debug for the stack and report it"
            print(f"error: unexpected {type(exc).__name__}: {str(exc)[:300]} — {hint}", file=sys.stderr)
            sys.exit(INTERNAL_ERROR)


def debug_requested() -> bool:
    """`--debug` or GORESOLVE_DEBUG: stacks are printed, and a run's server logs stay on the terminal."""
    return "--debug" in sys.argv[1:] or os.environ.get("GORESOLVE_DEBUG", "").lower() in ("1", "true", "yes")


# ---- registration: one line per command or sub-app ------------------------------------------
# name -> (module, attribute[, command inside that typer app]). Imported only when the command runs
# (or `--help` lists it): a search answered by the warm process must not pay for the agent, the
# dispatcher or the webhooks (seconds of imports on a small machine).
LAZY_COMMANDS: dict[str, tuple[str, ...]] = {
    "model": ("goresolve.install", "model_app"),  # code-search's model install, then the tamper analyzer
    "index": ("servers.code_search.cli", "index_command"),
    "search": ("servers.code_search.cli", "search_command"),
    "check-patch": ("servers.go_test_runner.cli_check_patch", "command"),
    "doctor": ("servers.go_test_runner.doctor", "command"),  # go-test-runner's sandbox protections on this host
    "serve": ("servers.webhooks.cli", "serve_app"),
    "webhooks": ("servers.webhooks.cli", "webhooks_app"),
    "queue": ("workqueue.cli", "queue_app"),
    "worker": ("servers.code_search.reindex_worker", "worker_command"),
    "resolve": ("goresolve.resolve", "resolve_command"),  # one ticket end to end
    "runs": ("agent.cli", "app", "runs"),
    "trace": ("agent.cli", "app", "trace"),
    "dispatch": ("agent.dispatch.cli", "app"),  # goresolve dispatch [run]
    "eval": ("agent.eval.cli", "eval_command"),
    "route": ("goresolve.cli", "route_command"),  # the routing decision for a ticket, no run (agent.router.cli)
}
# Commands that load code-search's embedding model (their `--embedder`, else GORESOLVE_CODE_SEARCH_EMBEDDER): each
# refuses before it starts when that model is not installed (goresolve.models), rather than downloading it.
EMBEDDING_COMMANDS = frozenset({"index", "search"})


def _click_command(name: str, spec: tuple[str, ...]) -> Any:
    """The click command behind a LAZY_COMMANDS entry: a typer app, one of its commands, or a function."""
    target = getattr(importlib.import_module(spec[0]), spec[1])
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)  # a group even when the app has one command (`model install`)
        command = group.commands[spec[2]] if len(spec) > 2 else group
    else:
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    if name in EMBEDDING_COMMANDS and command.callback is not None:
        command.callback = _model_checked(command.callback)
    return command


def _model_checked(callback: Callable[..., Any]) -> Callable[..., Any]:
    """`callback`, run only when the embedding model its command selects is installed (else a usage error)."""

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        from goresolve.models import missing_model_for

        problem = missing_model_for(kwargs.get("embedder"))
        if problem is not None:
            raise fail(problem)
        return callback(*args, **kwargs)

    return checked


class _LazyGroup(TyperGroup):
    """The root group: LAZY_COMMANDS are imported on first use, by name."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(super().list_commands(ctx))
        return [*names, *(name for name in LAZY_COMMANDS if name not in names)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            command = _click_command(cmd_name, LAZY_COMMANDS[cmd_name])
            self.add_command(command, cmd_name)
        return command


app = _App(
    cls=_LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="goresolve: resolve Go issues, safely.",
)
policy_app = typer.Typer(no_args_is_help=True, help="Policy files.")
token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the HTTP transport.")
audit_app = typer.Typer(no_args_is_help=True, help="Audit logs.")
repo_app = typer.Typer(no_args_is_help=True, help="Repositories goresolve may work on.")

app.add_typer(policy_app, name="policy")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(repo_app, name="repo")
# ----------------------------------------------------------------------------------------------


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="On failure, also print the stack.")] = False,
) -> None:
    """goresolve: resolve Go issues, safely."""
    from servers.common.logging import configure_logging

    # `--debug` itself is read by the outermost handler (`_App.__call__`), which runs after this.
    # Library log lines (model install, index progress notes) go to stderr as readable lines:
    # stdout carries only a command's result (`--json`).
    configure_logging(service="goresolve", level="DEBUG" if debug else "INFO", console=True)
    data_dir = default_data_dir()
    problem = data_dir_problem(data_dir)
    if problem is not None:
        raise fail(problem, 1)
    make_private(data_dir)


def make_private(data_dir: Path) -> None:
    """Make a missing data directory readable by its owner only: runs, transcripts, hand-offs, traces, the ledger
    and audit logs live below it, whatever mode each writer gives its own files. One that exists is left as it is
    (it may be shared on purpose); one that cannot be made is left to the first writer to report."""
    if data_dir.exists():
        return
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return


def data_dir_problem(data_dir: Path) -> str | None:
    """Why the data directory cannot be used (a file where it or one of its parents should be), or None.

    A missing directory is fine: `make_private` makes it.
    """
    for path in (data_dir, *data_dir.parents):
        if path.is_dir():
            return None
        if path.exists():
            where = "it" if path == data_dir else f"{path}"
            return (
                f"the data directory {data_dir} cannot be made: {where} is a file, not a directory; set "
                "GORESOLVE_DATA_DIR to a directory (or unset it for the per-user default)"
            )
    return None


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` on stderr (as written: a path, a ticket's or a model's words are not markup); return
    the Exit to raise."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs' summary as JSON on stdout.")] = False,
) -> None:
    """The main job on embedded defaults: a bundled Go service, two tickets, one pull request, one hand-off.

    The model is a recording (examples/recordings/) unless GORESOLVE_AGENT_PROVIDER=openai|anthropic and
    GORESOLVE_AGENT_MODEL name a live one (with GORESOLVE_AGENT_BASE_URL and GORESOLVE_AGENT_API_KEY), as for resolve.
    """
    import time

    import anyio

    from goresolve.demo import (
        DemoError,
        DemoInterrupted,
        check_environment,
        ensure_embedding_model,
        one_demo_at_a_time,
        prepare_world,
        print_summary,
        run_demo,
        summary_json,
    )

    started = time.monotonic()
    out = Console(stderr=as_json)  # with --json, stdout carries only the summary
    try:
        with one_demo_at_a_time(default_data_dir()):
            check_environment()  # before the previous demo's state is deleted
            world = prepare_world(default_data_dir(), out)
            ensure_embedding_model(world, out)
            results = anyio.run(run_demo, world, out)
    except DemoInterrupted as exc:
        raise fail(exc.message, 130) from None
    except KeyboardInterrupt:  # before the servers started (run_demo handles it from there)
        raise fail(DemoInterrupted().message, 130) from None
    except DemoError as exc:
        raise fail(exc.message, 1) from None
    print_summary(out, results, world, started)
    if as_json:
        print(json.dumps(summary_json(results, world), indent=2, default=str))
    if any(r.outcome == "error" for r in results):
        raise typer.Exit(1)


@app.command()
def prs(
    db: Annotated[
        Path | None, typer.Option(help="The local backend's SQLite file (default <data dir>/github-pr/prs.sqlite).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pull requests recorded by the local github-pr backend."""
    import sqlite3

    from servers.github_pr.cli import prs_command

    data_dir = default_data_dir()
    given = db is not None
    db = db if db is not None else data_dir / "github-pr" / "prs.sqlite"
    if db.is_dir():
        raise fail(f"{db} is a directory: pass the local backend's SQLite file (prs.sqlite) with --db", 1)
    if not db.exists():  # nothing recorded yet: an empty list, as for an empty database
        if given:
            raise fail(f"{db} does not exist: pass the local backend's SQLite file (prs.sqlite) with --db", 1)
        if as_json:
            print("[]")
            return
        console.print(f"no pull requests yet ({db} does not exist)", highlight=False, markup=False)
        from goresolve.demo import demo_pr_db  # the agent stack's imports: only to name the demo's database

        if demo_pr_db(data_dir).exists():
            console.print(
                f"`goresolve demo` recorded its own; list them with: goresolve prs --db {demo_pr_db(data_dir)}",
                highlight=False,
            )
        return
    try:
        code = prs_command(db, as_json)
    except sqlite3.Error as exc:
        raise fail(f"{db} is not the local backend's pull-request database ({exc}): check --db", 1) from None
    raise typer.Exit(code)


def route_command(
    ticket: Annotated[
        str,
        typer.Argument(
            help="What `goresolve resolve --ticket` takes: a Jira key or issue URL, a GitHub issue (svc#12, its URL, "
            "or the file `gh api` prints), or a ticket file (Jira's .yaml/.json, flat .json, .md)."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    policy_dir: Annotated[Path | None, typer.Option(help="Directory of routing.yaml and budgets.yaml.")] = None,
) -> None:
    """Show which tier takes a ticket (a model, or a human), by which rule or classifier, and why."""
    from agent.router.cli import route_command as route_ticket
    from goresolve.resolve import ResolveError, ticket_of

    if ticket.startswith(("http://", "https://")):  # an issue URL, read as `resolve` reads it: its key
        try:
            ticket = ticket_of(ticket, {})[0]
        except ResolveError as exc:
            raise fail(str(exc), 1) from None
    route_ticket(ticket, as_json, policy_dir)


@policy_app.command("check")
def policy_check(directory: Annotated[Path, typer.Argument()] = DEFAULT_POLICY_DIR) -> None:
    """Validate every policy file and that every repo path exists; exit 2 with the file and field on the first error.

    The agent's files are checked when present: budgets.yaml and escalation.yaml (together), and
    routing.yaml (whose models must be priced in budgets.yaml).
    """
    from agent.policy import PolicyError, load_agent_policy
    from agent.router import RoutingPolicyError, load_routing_policy
    from servers.common.policy import check_repo_paths, load_policies

    extra = ""
    try:
        policies = load_policies(directory)
        check_repo_paths(policies, directory.resolve())
        if (directory / "budgets.yaml").exists() or (directory / "escalation.yaml").exists():
            budgets = load_agent_policy(directory).budgets
            extra += ", budgets and escalation"
            if (directory / "routing.yaml").exists():
                routing = load_routing_policy(directory, budgets)
                extra += f", {len(routing.rules)} routing rules"
        elif (directory / "routing.yaml").exists():
            raise fail("routing.yaml: needs budgets.yaml beside it (every routed model must have a price)")
    except ConfigError as exc:
        raise fail(exc.message) from None
    except PolicyError as exc:
        raise fail(exc.message) from None
    except RoutingPolicyError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"ok: {len(policies.access.identities)} identities, {len(policies.tools.roles)} roles, "
        f"{len(policies.repos.repos)} repos{extra}"
    )
    for warning in unclonable_repos(policies, directory.resolve()):
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)


def unclonable_repos(policies: Policies, directory: Path) -> list[str]:
    """One line per repository of repos.yaml whose local path exists but is not a git repository: the servers
    cannot clone it, so every run on it is refused (and each server start warns about it)."""
    from servers.common.gitenv import is_repository
    from servers.common.policy import repo_path

    lines: list[str] = []
    for name, repo in policies.repos.repos.items():
        path = repo_path(directory, repo)
        if path is not None and path.is_dir() and not is_repository(path):
            lines.append(
                f"{directory / 'repos.yaml'}: field 'repos.{name}.path': {path} is not a git repository, so no "
                "server can clone it: point it at one (`goresolve repo add PATH` registers yours; "
                "`python examples/make_sample_repo.py DEST` makes the bundled sample one)"
            )
    return lines


@policy_app.command("schema")
def policy_schema(directory: Annotated[Path, typer.Argument()] = DEFAULT_POLICY_DIR / "schema") -> None:
    """Regenerate the committed JSON Schemas of the policy files (the servers', the agent's and routing's)."""
    from agent.policy import write_schemas
    from agent.router.policy import write_schema as write_routing_schema
    from servers.common.policy import write_json_schemas

    for path in [*write_json_schemas(directory), *write_schemas(directory), write_routing_schema(directory)]:
        console.print(f"wrote {path}", markup=False)


@repo_app.command("add")
def repo_add(
    path: Annotated[Path, typer.Argument(help="The repository's root (a git work tree).")],
    name: Annotated[
        str | None, typer.Option(help="Name in policies, plain or owner/name (default: the directory's name).")
    ] = None,
    grant: Annotated[
        list[str] | None, typer.Option("--grant", help="Identity (from access.yaml) that may read it; repeatable.")
    ] = None,
    policy_dir: Annotated[Path, typer.Option(help="Directory of policy YAML files.")] = DEFAULT_POLICY_DIR,
) -> None:
    """Register a local repository in repos.yaml, grant it in access.yaml, and validate both."""
    from goresolve.repos import add_repo

    try:
        added = add_repo(policy_dir, path, name, grant or [])
    except ConfigError as exc:
        raise fail(exc.message) from None
    verb = "added" if added.changed else "already registered:"
    grants = f"; readable by {', '.join(added.granted)}" if added.granted else ""
    console.print(f"{verb} {added.name} -> {added.path} (default branch {added.default_branch}){grants}", markup=False)
    if added.changed:
        console.print(f"next: goresolve index {added.path} --repo {added.name}", markup=False)


@token_app.command("mint")
def token_mint(
    subject: Annotated[str, typer.Option(help="Caller identity, as named in policies/access.yaml.")],
    server: Annotated[Server, typer.Option(help="The one server that will accept the token.")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=60, max=30 * 86400)] = 3600,
    key_file: Annotated[Path | None, typer.Option(help="File holding the signing key.")] = None,
) -> None:
    """Print a token; the key comes from --key-file or the server's own GORESOLVE_<SERVER>_TOKEN_KEY."""
    from servers.common.auth import mint_token
    from servers.common.auth_settings import TOKEN_KEY_MIN_CHARS, read_token_key, token_key_env

    if not subject.strip() or subject != subject.strip() or not subject.isprintable():
        raise fail(f"--subject {subject!r} is not an identity: give a name from policies/access.yaml")
    variable = token_key_env(server)  # the very variable the server verifies with
    try:
        key = SecretStr(key_file.read_text().strip()) if key_file else read_token_key(server)
    except OSError as exc:
        raise fail(f"{key_file}: cannot read the key file: {exc.strerror}") from None
    except UnicodeDecodeError:  # a signing key is text
        where = f"{key_file}: the key file" if key_file else f"{variable} in GORESOLVE_SECRETS_DIR"
        raise fail(f"{where} is not UTF-8 text (a signing key is a line of text)") from None
    if key is None or len(key.get_secret_value()) < TOKEN_KEY_MIN_CHARS:
        raise fail(
            f"a signing key of at least {TOKEN_KEY_MIN_CHARS} characters is required: set {variable} or pass --key-file"
        )
    print(mint_token(key, subject=subject, server=server, ttl_s=ttl))


@audit_app.command("verify")
def audit_verify(path: Path) -> None:
    """Exit 0 when the hash chain is intact, 1 with the first bad line otherwise."""
    from servers.common.audit import verify_chain

    if not path.is_file():
        raise fail(f"{path}: no such file")
    try:
        ok, line = verify_chain(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: cannot read: {exc}") from None
    if ok:
        console.print(f"ok: {path}", markup=False)
        return
    console.print(f"[red]broken chain[/red] at line {line} of {escape(str(path))}")
    raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
