"""`goresolve serve webhooks` and `goresolve webhooks redeliver`.

    goresolve serve webhooks [--host 0.0.0.0] [--port 8110]      the gateway (settings: GORESOLVE_WEBHOOKS_*,
                                                                  queue: GORESOLVE_QUEUE_*); it serves each
                                                                  source whose secret is set (one at least)
    goresolve webhooks redeliver --repo OWNER/NAME --hook-id N --since 3d

Exit codes: 0 ok, 1 GitHub refused or some redeliveries failed, 2 bad usage or settings.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from servers.common.errors import ConfigError, GoresolveError, InvalidInput
from servers.common.settings import load_settings
from servers.webhooks.settings import WebhookSettings

if TYPE_CHECKING:
    from workqueue import QueueSettings

serve_app = typer.Typer(no_args_is_help=True, help="Start an HTTP service.")
webhooks_app = typer.Typer(no_args_is_help=True, help="Webhook deliveries.")
err = Console(stderr=True, soft_wrap=True)  # one line per error, whatever the width


@serve_app.callback()
def _serve() -> None:
    """Start an HTTP service (a group, so that `serve webhooks` stays a sub-command)."""


@webhooks_app.callback()
def _webhooks() -> None:
    """Webhook deliveries."""


def _settings(**overrides: object) -> WebhookSettings:
    try:
        return load_settings(WebhookSettings, **overrides)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@serve_app.command("webhooks")
def serve_webhooks(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8110).")] = None,
) -> None:
    """The webhook gateway: verify, enqueue durably, answer 202."""
    import anyio
    import uvicorn
    from pydantic import ValidationError

    from servers.common.errors import ConfigError
    from servers.common.logging import configure_logging
    from servers.common.serve import listening_socket, uvicorn_config
    from servers.webhooks.app import build_app
    from workqueue import TOPICS, QueueMisconfigured, QueueSettings, Topic, WorkQueue, open_queue
    from workqueue.settings import settings_error

    settings = _settings(host=host, port=port)
    configure_logging(service="webhooks", level=settings.log_level, secrets=settings.secret_values())
    try:
        queue_settings = QueueSettings()
    except ValidationError as exc:
        err.print(f"[red]error:[/red] {escape(settings_error(exc))}", highlight=False)
        raise typer.Exit(2) from None
    try:
        queues: dict[Topic, WorkQueue] = {
            topic: open_queue(queue_settings, topic, deadline_s=settings.queue_timeout_s) for topic in TOPICS
        }
        app = build_app(settings, queues)
        if queue_settings.backend == "redis":
            anyio.run(_refuse_a_queue_that_loses_events, queue_settings, settings.queue_timeout_s)
        sock = listening_socket(settings.host, settings.port)
    except (ValueError, QueueMisconfigured, ConfigError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc).splitlines()[0])}", highlight=False)
        raise typer.Exit(2) from None
    anyio.run(functools.partial(uvicorn.Server(uvicorn_config(app, settings)).serve, [sock]))


async def _refuse_a_queue_that_loses_events(queue_settings: QueueSettings, deadline_s: float) -> None:
    """Raises QueueMisconfigured when the queues' Redis could drop accepted events (it evicts keys). A Redis that
    does not answer yet is no reason not to start: /readyz says so until it does. (The check's own connection,
    closed here: the server runs on another event loop.)"""
    import anyio

    from workqueue import QueueMisconfigured, QueueUnavailable, open_queue

    queue = open_queue(queue_settings, "tickets", deadline_s=deadline_s)
    try:
        with anyio.fail_after(deadline_s):
            await queue.ping()
    except QueueMisconfigured:
        raise
    except (QueueUnavailable, TimeoutError):
        pass
    finally:
        await queue.aclose()


@webhooks_app.command("redeliver")
def redeliver(
    repo: Annotated[str, typer.Option(help="owner/name of the repository whose hook failed.")],
    hook_id: Annotated[int, typer.Option("--hook-id", help="The webhook's id.", min=1)],
    since: Annotated[str, typer.Option(help="How far back: 3d, 12h, 30m (at most 30d).")] = "3d",
) -> None:
    """Ask GitHub to redeliver the hook's failed deliveries (token: GORESOLVE_WEBHOOKS_GITHUB_TOKEN)."""
    from servers.webhooks.redeliver import parse_since, redeliver_failed

    settings = _settings()
    if settings.github_token is None:
        err.print("[red]error:[/red] setting GORESOLVE_WEBHOOKS_GITHUB_TOKEN is required")
        raise typer.Exit(2)
    if repo.count("/") != 1:
        err.print("[red]error:[/red] --repo must be owner/name")
        raise typer.Exit(2)
    try:
        span = parse_since(since)
        report = redeliver_failed(settings.github_api_url, settings.github_token, repo, hook_id, span)
    except GoresolveError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2 if isinstance(exc, InvalidInput) else 1) from None
    err.print(
        f"redelivered {len(report.redelivered)}, skipped {len(report.skipped)} (succeeded later), "
        f"failed {len(report.failed)}"
    )
    if report.failed:
        raise typer.Exit(1)
