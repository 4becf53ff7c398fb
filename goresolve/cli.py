"""`goresolve`: the umbrella command line.

goresolve demo                      the main job on embedded defaults (no accounts, nothing to start)
goresolve policy check|schema       validate policies/ or regenerate policies/schema/
goresolve token mint                a bearer token for one server's HTTP transport
goresolve audit verify FILE         check an audit log's hash chain
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import anyio
import typer
from pydantic import SecretStr
from rich.console import Console

from servers.code_search.cli import index_command, search_command
from servers.code_search.reindex_worker import worker_command
from servers.common.errors import ConfigError
from servers.common.settings import DEFAULT_POLICY_DIR, DEFAULT_STATE_DIR
from servers.go_test_runner.cli_check_patch import command as check_patch_cli
from servers.webhooks.cli import serve_app, webhooks_app
from workqueue.cli import queue_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="goresolve: resolve Go issues, safely.")
policy_app = typer.Typer(no_args_is_help=True, help="Policy files.")
token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the HTTP transport.")
audit_app = typer.Typer(no_args_is_help=True, help="Audit logs.")
app.add_typer(policy_app, name="policy")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.command("index")(index_command)
app.command("search")(search_command)
app.command("check-patch")(check_patch_cli)
app.add_typer(serve_app, name="serve")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(queue_app, name="queue")
app.command("worker")(worker_command)

console = Console(stderr=True)
Server = Literal["jira-read", "code-search", "go-test-runner", "github-pr"]


@app.command()
def demo(
    key: Annotated[str, typer.Option(help="Ticket to fetch from the bundled samples.")] = "SVC-1",
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw tool result.")] = False,
) -> None:
    """Start jira-read over stdio on the bundled sample tickets and answer one request."""
    from goresolve.demo import run_demo

    try:
        result = anyio.run(run_demo, key)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    from goresolve.demo import render_issue

    render_issue(Console(), result)


@app.command()
def prs(
    db: Annotated[Path, typer.Option(help="The local backend's SQLite file.")] = DEFAULT_STATE_DIR
    / "github-pr"
    / "prs.sqlite",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pull requests recorded by the local github-pr backend."""
    from servers.github_pr.cli import prs_command

    raise typer.Exit(prs_command(db, as_json))


@policy_app.command("check")
def policy_check(directory: Annotated[Path, typer.Argument()] = DEFAULT_POLICY_DIR) -> None:
    """Validate every policy file; exit 2 with the file and field on the first error."""
    from servers.common.policy import load_policies

    try:
        policies = load_policies(directory)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"ok: {len(policies.access.identities)} identities, {len(policies.tools.roles)} roles")


@policy_app.command("schema")
def policy_schema(directory: Annotated[Path, typer.Argument()] = DEFAULT_POLICY_DIR / "schema") -> None:
    """Regenerate the committed JSON Schemas of the policy files."""
    from servers.common.policy import write_json_schemas

    for path in write_json_schemas(directory):
        console.print(f"wrote {path}")


@token_app.command("mint")
def token_mint(
    subject: Annotated[str, typer.Option(help="Caller identity, as named in policies/access.yaml.")],
    server: Annotated[Server, typer.Option(help="The one server that will accept the token.")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=60, max=30 * 86400)] = 3600,
    key_file: Annotated[Path | None, typer.Option(help="File holding the signing key.")] = None,
) -> None:
    """Print a token; the key comes from --key-file or GORESOLVE_TOKEN_KEY."""
    from servers.common.auth import mint_token

    raw = key_file.read_text().strip() if key_file else os.environ.get("GORESOLVE_TOKEN_KEY", "")
    if len(raw) < 32:
        console.print("[red]error:[/red] a signing key of at least 32 characters is required")
        raise typer.Exit(2)
    print(mint_token(SecretStr(raw), subject=subject, server=server, ttl_s=ttl))


@audit_app.command("verify")
def audit_verify(path: Path) -> None:
    """Exit 0 when the hash chain is intact, 1 with the first bad line otherwise."""
    from servers.common.audit import verify_chain

    if not path.exists():
        console.print(f"[red]error:[/red] {path}: no such file")
        raise typer.Exit(2)
    ok, line = verify_chain(path)
    if ok:
        console.print(f"ok: {path}")
        return
    console.print(f"[red]broken chain[/red] at line {line} of {path}")
    raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
