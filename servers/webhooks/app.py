"""The gateway's HTTP app: `build_app(settings, queues)`.

    POST /webhooks/github   X-Hub-Signature-256 over the raw body -> parse -> event -> durable enqueue
    POST /webhooks/jira     X-Hub-Signature over the raw body -> parse -> event -> durable enqueue
    GET  /healthz           the process answers
    GET  /readyz            every queue answers (503 otherwise)
    GET  /metrics           Prometheus text

A source is served when its secret is set; at least one must be (GitHub only, Jira only, or both).
Answers: 202 only after the event is durable (or was already: a duplicate), and for events that
are ignored; 401 bad or missing signature (nothing parsed, nothing enqueued); 400 malformed JSON
or missing fields; 413 above the size limit; 503 with Retry-After when the queue cannot take it (or
is full: Redis near its maxmemory); 403 for a source this gateway has no secret for (the body is not
read; the answer names the source, since the sender's delivery log is where an operator sees it).

The body is read once, into one buffer, while its HMAC is computed. Bodies not yet verified take
their bytes from one budget shared by all requests (`unverified_budget_bytes`): a request that
finds it spent is answered 503 with Retry-After, so unsigned uploads cannot exhaust memory. One
client address holds at most `max_unverified_per_client` unverified requests at once (more: 429),
and a body must arrive whole within `body_timeout_s` (else 408, its bytes given back), so slow or
stalled senders cannot keep the budget. A client that hangs up mid-body is counted (`disconnect`).
Deduplication: the queue remembers each delivery id (GitHub's GUID, lower-cased) and the sha256 of
each raw body for its retention window, so a signed body replayed under a new delivery id is a
duplicate (202), while a sender's own redelivery (same id, same bytes) is judged by its id.
The trace id is born here, rides in the event and comes back in the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from servers.common.logging import get_logger
from servers.common.tracing import tracer
from servers.webhooks import verify
from servers.webhooks.payloads import Ignored, github_event, jira_event
from servers.webhooks.settings import WebhookSettings
from workqueue import Event, QueueFull, QueueMisconfigured, QueueUnavailable, Topic, WorkQueue

log = get_logger(__name__)
T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HOOK_ID = re.compile(r"[0-9]{1,20}")


# Each source the gateway can serve -> the setting that holds its secret.
SECRET_SETTINGS = {"github": "GORESOLVE_WEBHOOKS_GITHUB_SECRET", "jira": "GORESOLVE_WEBHOOKS_JIRA_SECRET"}


class TooLarge(Exception):
    pass


class OverBudget(Exception):
    pass


class ClientBusy(Exception):
    pass


class UnverifiedBudget:
    """The bytes of bodies not yet verified that the gateway holds at once, across requests.

    A request takes budget for each chunk as it arrives and gives it all back once its signature is
    checked, so unsigned bodies can never hold more than `capacity` bytes of memory together. The
    app runs on one event loop and there is no await between the check and the update: no lock.
    """

    def __init__(self, capacity: int, per_client: int = 1 << 30) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self.per_client = per_client
        self.clients: dict[str, int] = {}  # client address -> its requests reading an unverified body

    def enter(self, client: str) -> bool:
        """One more unverified request from `client`; False when it already has `per_client` of them."""
        held = self.clients.get(client, 0)
        if held >= self.per_client:
            return False
        self.clients[client] = held + 1
        return True

    def leave(self, client: str) -> None:
        held = self.clients.pop(client, 1) - 1
        if held > 0:
            self.clients[client] = held

    def take(self, size: int) -> bool:
        if self.in_use + size > self.capacity:
            return False
        self.in_use += size
        self.peak = max(self.peak, self.in_use)
        return True

    def give(self, size: int) -> None:
        self.in_use -= size


class Metrics:
    """The gateway's metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter("goresolve_webhooks_accepted", "Events enqueued.", ["source", "kind"], registry=r)
        self.rejected = Counter("goresolve_webhooks_rejected", "Deliveries refused.", ["source", "reason"], registry=r)
        self.duplicates = Counter("goresolve_webhooks_duplicates", "Deliveries seen before.", ["source"], registry=r)
        self.ignored = Counter("goresolve_webhooks_ignored", "Verified; ignored.", ["source", "reason"], registry=r)
        self.depth = Gauge("goresolve_queue_depth", "Events waiting or running.", ["queue"], registry=r)
        self.dead = Gauge("goresolve_queue_dead_letters", "Events on the dead-letter list.", ["queue"], registry=r)


def _answer(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _signed_body(request: Request, limit: int, budget: UnverifiedBudget, mac: hmac.HMAC) -> bytearray:
    """The body, read into one buffer while `mac` is fed each chunk; its bytes are taken from `budget`.

    The caller gives back `len(body)` once the signature is checked (also when this raises, what was
    taken is given back here).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    body = bytearray()
    try:
        async for chunk in request.stream():
            if len(body) + len(chunk) > limit:
                raise TooLarge
            if not budget.take(len(chunk)):
                raise OverBudget
            mac.update(chunk)
            body += chunk
    except BaseException:
        budget.give(len(body))
        raise
    return body


async def _http_error(_: Request, exc: Exception) -> Response:
    """404, 405 and the framework's other HTTP errors as the same JSON errors as the rest."""
    assert isinstance(exc, HTTPException)
    return _answer(exc.status_code, {"error": exc.detail}, exc.headers)


def _delivery(request: Request, source: str) -> str:
    """The sender's delivery id as given (unverified; cut short), for log lines."""
    header = "X-GitHub-Delivery" if source == "github" else "X-Atlassian-Webhook-Identifier"
    return request.headers.get(header, "")[:100]


def _trace_id() -> str:
    """A new trace: OpenTelemetry's id when tracing is configured, else 128 random bits in the same form."""
    span = tracer("goresolve.webhooks").start_span("webhook.receive")
    ctx = span.get_span_context()
    span.end()
    return format(ctx.trace_id, "032x") if ctx.is_valid else secrets.token_hex(16)


def configured_secrets(settings: WebhookSettings) -> dict[str, SecretStr]:
    """Source -> its secret, for each source whose secret is set and not empty."""
    given = {"github": settings.github_secret, "jira": settings.jira_secret}
    return {source: secret for source, secret in given.items() if secret is not None and secret.get_secret_value()}


def build_app(settings: WebhookSettings, queues: Mapping[Topic, WorkQueue]) -> Starlette:
    """The gateway over `queues` (one per topic), serving each source whose secret is set.

    Raises:
        ValueError: neither webhook secret is set, or a topic without a queue.
    """
    secrets_by_source = configured_secrets(settings)
    if not secrets_by_source:
        raise ValueError(f"no webhook secret: set {' or '.join(SECRET_SETTINGS.values())} (or both)")
    if set(queues) != {"code-index", "tickets"}:
        raise ValueError("the gateway needs the code-index and tickets queues")
    log.info(
        "webhook.sources",
        enabled=sorted(secrets_by_source),
        disabled=sorted(set(SECRET_SETTINGS) - set(secrets_by_source)),
    )
    metrics = Metrics()
    budget = UnverifiedBudget(settings.unverified_budget_bytes, settings.max_unverified_per_client)
    limit = min(settings.max_body_bytes, settings.unverified_budget_bytes)

    deadline = settings.queue_timeout_s

    async def bounded(call: Awaitable[T]) -> T:
        """`call` to a queue within the deadline; no answer in time is the queue being unavailable.

        Raises:
            QueueUnavailable: the queue refused, or did not answer within the deadline.
        """
        try:
            with anyio.fail_after(deadline):
                return await call
        except TimeoutError:
            raise QueueUnavailable(f"no answer within {deadline:g}s") from None

    async def enqueue(source: str, event: Event, digest: str) -> JSONResponse:
        try:
            fresh = await bounded(queues[event.topic].enqueue(event, digest=digest))
        except QueueUnavailable as exc:
            # After a timeout the write may still land: a redelivery of it is then a duplicate (202).
            full = isinstance(exc, QueueFull)  # near its memory limit: what is left is for the workers to drain it
            reason = "queue-misconfigured" if isinstance(exc, QueueMisconfigured) else "queue-unavailable"
            metrics.rejected.labels(source, "queue-full" if full else reason).inc()
            log.warning(
                "webhook.queue_full" if full else "webhook.queue_unavailable",
                error=str(exc),
                source=source,
                delivery=event.delivery,
                id=event.id,
                trace_id=event.trace_id,
            )
            retry = {"Retry-After": str(settings.retry_after_s)}
            why = "the queue is full" if full else "the queue cannot take the event now"
            body = {"error": f"{why}; retry later", "delivery": event.delivery}
            return _answer(503, body, retry)
        if not fresh:
            metrics.duplicates.labels(source).inc()
            return _answer(202, {"status": "duplicate", "id": event.id})
        metrics.accepted.labels(source, event.data.kind).inc()
        log.info("webhook.enqueued", id=event.id, kind=event.data.kind, repo=event.repo, trace_id=event.trace_id)
        return _answer(202, {"status": "queued", "id": event.id, "trace_id": event.trace_id})

    def reject(
        request: Request,
        source: str,
        status: int,
        reason: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> JSONResponse:
        """Count, log (source, delivery id, reason; never a body or a signature) and answer a refusal."""
        metrics.rejected.labels(source, reason).inc()
        level = log.warning if status in (401, 403, 408, 429, 503) else log.info
        level("webhook.rejected", source=source, status=status, reason=reason, delivery=_delivery(request, source))
        return _answer(status, {"error": message}, headers)

    async def read_verified(
        request: Request, source: str, secret: SecretStr, header: str
    ) -> tuple[dict[str, Any] | None, str, JSONResponse | None]:
        mac = verify.hasher(secret)
        retry = {"Retry-After": str(settings.retry_after_s)}
        client = request.client.host if request.client else "?"
        if not budget.enter(client):
            message = "too many deliveries in flight from this address; retry later"
            return None, "", reject(request, source, 429, "client-busy", message, retry)
        try:
            with anyio.fail_after(settings.body_timeout_s):
                raw = await _signed_body(request, limit, budget, mac)
        except TooLarge:
            return None, "", reject(request, source, 413, "too-large", f"body larger than {limit} bytes")
        except OverBudget:
            return None, "", reject(request, source, 503, "busy", "too many deliveries in flight; retry later", retry)
        except TimeoutError:
            message = f"the body did not arrive within {settings.body_timeout_s:g}s"
            return None, "", reject(request, source, 408, "body-timeout", message)
        except ClientDisconnect:
            return (
                None,
                "",
                reject(request, source, 400, "disconnect", "the client hung up before the body was complete"),
            )
        finally:
            budget.leave(client)
        try:
            signed = verify.matches(mac, request.headers.get(header))
        finally:
            budget.give(len(raw))
        if not signed:
            return None, "", reject(request, source, 401, "signature", f"missing or bad {header}")
        try:
            body = json.loads(raw)
        except RecursionError:
            return None, "", reject(request, source, 400, "malformed", "body is nested too deeply")
        except (ValueError, UnicodeDecodeError):
            message = "body is not JSON"
            if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                message += "; set the webhook's content type to application/json"
            return None, "", reject(request, source, 400, "malformed", message)
        if not isinstance(body, dict):
            return None, "", reject(request, source, 400, "malformed", "body is not a JSON object")
        return body, hashlib.sha256(raw).hexdigest(), None

    async def github(request: Request, secret: SecretStr) -> Response:
        body, digest, refused = await read_verified(request, "github", secret, "X-Hub-Signature-256")
        if refused is not None:
            return refused
        assert body is not None
        kind = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        hook_id = request.headers.get("X-GitHub-Hook-ID", "0")
        # The dedup id is github:<hook>:<delivery>: strict shapes keep different pairs from colliding.
        if not kind or not delivery:
            return reject(request, "github", 400, "headers", "X-GitHub-Event and X-GitHub-Delivery are required")
        if not _GUID.fullmatch(delivery):
            return reject(request, "github", 400, "headers", "X-GitHub-Delivery must be a GUID")
        delivery = delivery.lower()  # one GUID, however a sender spells its hex digits
        if not _HOOK_ID.fullmatch(hook_id):
            return reject(request, "github", 400, "headers", "X-GitHub-Hook-ID must be an integer")
        if kind == "ping":
            metrics.ignored.labels("github", "ping").inc()
            return _answer(200, {"status": "pong"})
        try:
            event = github_event(
                kind,
                body,
                delivery=delivery,
                hook_id=hook_id,
                trace_id=_trace_id(),
                branches=settings.branches,
                commands=settings.commands,
                command_roles=settings.command_roles,
            )
        except Ignored as why:
            metrics.ignored.labels("github", why.reason).inc()
            return _answer(202, {"status": "ignored", "reason": why.reason})
        except ValidationError as exc:
            return reject(request, "github", 400, "shape", _first_error(exc))
        return await enqueue("github", event, digest)

    async def jira(request: Request, secret: SecretStr) -> Response:
        body, digest, refused = await read_verified(request, "jira", secret, "X-Hub-Signature")
        if refused is not None:
            return refused
        assert body is not None
        delivery = request.headers.get("X-Atlassian-Webhook-Identifier", "")
        if not delivery:
            return reject(request, "jira", 400, "headers", "X-Atlassian-Webhook-Identifier is required")
        if len(delivery) > 200:
            return reject(request, "jira", 400, "headers", "X-Atlassian-Webhook-Identifier is over 200 characters")
        try:
            event = jira_event(body, delivery=delivery, trace_id=_trace_id())
        except Ignored as why:
            metrics.ignored.labels("jira", why.reason).inc()
            return _answer(202, {"status": "ignored", "reason": why.reason})
        except ValidationError as exc:
            return reject(request, "jira", 400, "shape", _first_error(exc))
        return await enqueue("jira", event, digest)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        for topic, queue in queues.items():
            try:
                await bounded(queue.ping())
            except QueueUnavailable as exc:
                log.warning("webhook.not_ready", queue=topic, error=str(exc))
                what = "misconfigured" if isinstance(exc, QueueMisconfigured) else "unreachable"
                return _answer(503, {"error": f"queue {topic} {what}: {exc}"})
        return PlainTextResponse("ready")

    async def metrics_endpoint(_: Request) -> Response:
        for topic, queue in queues.items():
            try:
                metrics.depth.labels(topic).set(await bounded(queue.depth()))
                metrics.dead.labels(topic).set(await bounded(queue.dead_count()))
            except QueueUnavailable:
                metrics.depth.labels(topic).set(float("nan"))
            except Exception as exc:  # noqa: BLE001 - one queue's fault must not cost the others' metrics
                log.error("webhook.metrics_failed", queue=topic, error=f"{type(exc).__name__}: {exc}"[:300])
                metrics.depth.labels(topic).set(float("nan"))
                metrics.dead.labels(topic).set(float("nan"))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def endpoint(source: str, handler: Callable[[Request, SecretStr], Awaitable[Response]]) -> Endpoint:
        """The route's handler: `handler` with the source's secret, or a refusal naming what is missing.

        A source without a secret keeps its route, so that a delivery to it is told why it is refused,
        rather than the 404 of a wrong URL: the body is not read, nothing is enqueued.
        """
        if source in secrets_by_source:
            secret = secrets_by_source[source]

            async def verified(request: Request) -> Response:
                return await handler(request, secret)

            return verified
        served = " and ".join(sorted(secrets_by_source))
        message = f"{source} webhooks are not configured on this gateway (it serves {served} only): it has no "
        message += SECRET_SETTINGS[source]

        async def not_configured(request: Request) -> Response:
            return reject(request, source, 403, "not-configured", message)

        return not_configured

    routes = [
        Route("/webhooks/github", endpoint("github", github), methods=["POST"]),
        Route("/webhooks/jira", endpoint("jira", jira), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    # `/webhooks/github/` must not answer 307: a sender (and `webhooks redeliver`) counts 3xx as delivered,
    # so a hook whose URL ends in a slash would lose every event. It gets the JSON 404 instead.
    app.router.redirect_slashes = False
    app.state.metrics = metrics
    app.state.unverified_budget = budget
    return app


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"payload field {where[:120]}: {str(first['msg']).removeprefix('Value error, ')[:120]}"
