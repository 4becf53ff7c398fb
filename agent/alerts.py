"""The alert webhook: the spend anomaly alert, and the hand-off notification.

Spend: the day's spend crossed a threshold, or jumped against its trailing average; sent at most once per
window (the ledger remembers when it last fired, across processes).
Hand-off: a run handed over to a human, and (by default only then) nobody was reached by a draft pull request
or an issue comment; one per run.

Both go to one configurable webhook as a PagerDuty Events API v2 `trigger` or a Slack incoming-webhook
message, through `send`, which gives a delivery `timeout_s` in all (a webhook that drips its answer is cut
off) and never reads the answer's body (its status is all a delivery needs). The spend alert is sent from a
thread of its own (`alert_in_background`): the run that recorded the spend never waits on the webhook.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import anyio
import anyio.to_thread
import httpx
from pydantic import SecretStr

from agent.handoff import one_line
from agent.ledger import Ledger, day_of
from agent.policy import DailyBudget

log = logging.getLogger(__name__)
HandoffNotify = Literal["never", "unreached", "always"]
PAGERDUTY_SUMMARY_CHARS = 1024  # the Events API v2 refuses a longer summary


@dataclass(frozen=True)
class AlertTarget:
    url: str
    format: Literal["pagerduty", "slack"]
    routing_key: SecretStr | None = None  # PagerDuty integration key
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Anomaly:
    kind: Literal["threshold", "jump"]
    day: str
    spend_usd: float
    baseline_usd: float
    summary: str


def detect(ledger: Ledger, daily: DailyBudget, now: float | None = None) -> Anomaly | None:
    day = day_of(time.time() if now is None else now)
    spend = ledger.day_spend(day)
    if spend >= daily.alert_threshold_usd:
        summary = f"goresolve spend ${spend:.2f} today passed the alert threshold ${daily.alert_threshold_usd:.2f}"
        return Anomaly("threshold", day, spend, daily.alert_threshold_usd, summary)
    average = ledger.trailing_average(day)
    if average > 0 and spend > daily.jump_factor * average:
        summary = f"goresolve spend ${spend:.2f} today is {spend / average:.1f}x the 7-day average ${average:.2f}"
        return Anomaly("jump", day, spend, average, summary)
    return None


def payload(target: AlertTarget, anomaly: Anomaly) -> dict[str, Any]:
    details = {
        "day": anomaly.day,
        "spend_usd": round(anomaly.spend_usd, 4),
        "baseline_usd": round(anomaly.baseline_usd, 4),
    }
    if target.format == "pagerduty":
        return {
            "routing_key": target.routing_key.get_secret_value() if target.routing_key else "",
            "event_action": "trigger",
            "dedup_key": f"goresolve-spend-{anomaly.kind}-{anomaly.day}",
            "payload": {
                "summary": anomaly.summary,
                "source": "goresolve-agent",
                "severity": "warning",
                "component": "cost-ledger",
                "class": f"spend_{anomaly.kind}",
                "custom_details": details,
            },
        }
    return {
        "text": f":warning: {anomaly.summary}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":warning: *{anomaly.summary}*"}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"day {anomaly.day} · baseline ${anomaly.baseline_usd:.2f}"}],
            },
        ],
    }


def check_and_alert(
    ledger: Ledger,
    daily: DailyBudget,
    target: AlertTarget,
    *,
    now: float | None = None,
    client: httpx.Client | None = None,
) -> Anomaly | None:
    """Send one alert when spend is anomalous and none fired in this window; returns what was sent.

    A webhook that fails is reported by the returned value being None only when nothing was due;
    delivery errors raise httpx.HTTPError to the caller (who logs it: the run itself goes on).
    """
    anomaly = detect(ledger, daily, now)
    if anomaly is None or not ledger.claim_alert(anomaly.kind, daily.alert_window_s, now):
        return None
    send(target, payload(target, anomaly), client=client)
    return anomaly


def alert_in_background(
    ledger: Ledger,
    daily: DailyBudget,
    target: AlertTarget,
    *,
    on_failure: Callable[[httpx.HTTPError], None] | None = None,
    now: float | None = None,
) -> threading.Thread | None:
    """`check_and_alert` for a caller that must not wait (the run's event loop): the check and the claim happen
    here (the ledger stays on the caller's thread), the delivery in a thread of its own, whose failure goes to
    `on_failure`. Returns that thread (None: nothing was due). The thread is not a daemon: a process ending
    right after the run still delivers the alert it claimed, within the target's timeout."""
    anomaly = detect(ledger, daily, now)
    if anomaly is None or not ledger.claim_alert(anomaly.kind, daily.alert_window_s, now):
        return None
    body = payload(target, anomaly)

    def deliver() -> None:
        try:
            send(target, body)
        except httpx.HTTPError as exc:
            if on_failure is not None:
                on_failure(exc)

    thread = threading.Thread(target=deliver, name="goresolve-spend-alert")
    thread.start()
    return thread


class AnswerTooSlow(httpx.TimeoutException):
    """The webhook did not answer within the delivery's `timeout_s` in all (it dripped, or stalled between reads)."""


def send(target: AlertTarget, body: dict[str, Any], *, client: httpx.Client | None = None) -> None:
    """POST `body` to the webhook: `target.timeout_s` bounds the whole delivery, not each read, and the answer's
    body is never read (its status line and headers are, within h11's own size limit).

    The deadline is kept by a watchdog that shuts the connection's socket down when it passes (it finds the
    socket through httpcore's `trace` extension), so a webhook that sends one byte now and then cannot hold
    the caller past it.

    Raises:
        httpx.HTTPError: not delivered (unreachable, `AnswerTooSlow`, or an answer that is not 2xx).
    """
    sockets: list[socket.socket] = []
    over = threading.Event()

    def trace(event: str, info: dict[str, Any]) -> None:
        if event.endswith("connect_tcp.complete"):
            stream = info.get("return_value")
            found = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(found, socket.socket):
                sockets.append(found)
                if over.is_set():
                    cut()

    def cut() -> None:
        over.set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(target.timeout_s, cut)
    watchdog.daemon = True
    http = client or httpx.Client()
    watchdog.start()
    try:
        request = http.build_request(
            "POST", target.url, json=body, timeout=target.timeout_s, extensions={"trace": trace}
        )
        response = http.send(request, stream=True)
        try:
            response.raise_for_status()
        finally:
            response.close()  # unread: a 2xx is all a delivery needs
    except httpx.HTTPStatusError:
        raise
    except httpx.HTTPError as exc:
        if over.is_set():
            raise AnswerTooSlow(f"no answer within {target.timeout_s:g}s") from exc
        raise
    finally:
        watchdog.cancel()
        if client is None:
            http.close()


# --- the hand-off notification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HandoffAlerts:
    """Where a hand-off notification goes (None: no channel configured) and when one is sent."""

    target: AlertTarget | None
    when: HandoffNotify = "unreached"


@dataclass(frozen=True)
class HandoffNotice:
    """One run's hand-off, as the notification tells it. `title` and `reason` are untrusted (a ticket's author's
    and the model's words); `where` says what the hand-off reached ("nobody: ..." when it reached no one)."""

    ticket: str
    title: str
    reason: str
    owner: str
    run_id: str
    trace_id: str
    run_dir: str
    where: str
    reached: bool


def slack_escaped(text: str) -> str:
    """`text` shown as written in a Slack message: `&`, `<` and `>` escaped as Slack documents, so no `<!channel>`,
    `<@user>` or `<url|link>` in it acts."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _details(notice: HandoffNotice) -> dict[str, str]:
    """The notice's fields, each one line without credentials (every one is sent, whoever wrote it)."""
    return {
        "ticket": one_line(notice.ticket, 100),
        "title": one_line(notice.title, 200),
        "reason": one_line(notice.reason, 300),
        "owner": one_line(notice.owner, 100),
        "run_id": one_line(notice.run_id, 100),
        "trace_id": one_line(notice.trace_id, 100),
        "hand_off": one_line(notice.where, 200),
        "see": one_line(f"goresolve trace {notice.run_id}", 200),
        "run_dir": one_line(notice.run_dir, 300),
    }


def handoff_payload(target: AlertTarget, notice: HandoffNotice) -> dict[str, Any]:
    """The notification's body: a PagerDuty `trigger` (dedup key per run, severity warning) or a Slack message."""
    d = _details(notice)
    if target.format == "pagerduty":
        summary = f"goresolve hand-off: {d['ticket']} for {d['owner']}: {d['reason']}"
        return {
            "routing_key": target.routing_key.get_secret_value() if target.routing_key else "",
            "event_action": "trigger",
            "dedup_key": f"goresolve-handoff-{d['run_id']}",
            "payload": {
                "summary": one_line(summary, PAGERDUTY_SUMMARY_CHARS),
                "source": "goresolve-agent",
                "severity": "warning",
                "component": "hand-off",
                "class": "handoff",
                "custom_details": d,
            },
        }
    e = {k: slack_escaped(v) for k, v in d.items()}
    lines = [
        f":raising_hand: *goresolve hand-off: {e['ticket']}* ({e['title']})",
        f"*Why it stopped:* {e['reason']}",
        f"*Owner:* {e['owner']} · *Run:* `{e['run_id']}` · *Trace:* `{e['trace_id']}`",
        f"*Hand-off:* {e['hand_off']}; `{e['see']}` shows the run, its record is in `{e['run_dir']}`",
    ]
    return {
        "text": f"goresolve hand-off: {e['ticket']} for {e['owner']}: {e['reason']}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
    }


NO_CHANNEL = (
    "the hand-off reached nobody and no notification channel is configured: set GORESOLVE_AGENT_ALERT_URL "
    "(and GORESOLVE_AGENT_ALERT_FORMAT) to be told"
)


def handoff_due(alerts: HandoffAlerts, notice: HandoffNotice) -> bool:
    """Whether `notice` is to be sent under `alerts.when` (a channel or not)."""
    return alerts.when == "always" or (alerts.when == "unreached" and not notice.reached)


def notify_handoff(alerts: HandoffAlerts, notice: HandoffNotice, *, client: httpx.Client | None = None) -> str | None:
    """Send the hand-off notification when due; the note saying what happened (None: nothing was due, nothing to
    say). Never raises for a failed delivery: the note says so, and one warning line is logged (no traceback)."""
    if not handoff_due(alerts, notice):
        if alerts.when == "never" and not notice.reached:
            return "the hand-off reached nobody; hand-off notifications are off (GORESOLVE_AGENT_HANDOFF_NOTIFY=never)"
        return None
    if alerts.target is None:
        return NO_CHANNEL if not notice.reached else None
    try:
        send(alerts.target, handoff_payload(alerts.target, notice), client=client)
    except httpx.HTTPError as exc:
        status = f" {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else ""
        note = f"hand-off notification not delivered ({type(exc).__name__}{status})"
        log.warning("run %s: %s", notice.run_id, note)
        return note
    return f"hand-off notification sent to the {alerts.target.format} webhook"


async def deliver_handoff(alerts: HandoffAlerts, notice: HandoffNotice, within_s: float) -> str | None:
    """`notify_handoff` off the event loop, given up after `within_s` seconds (the hand-over's grace period): the
    note, as `notify_handoff`'s, or one saying no answer came in time. Never raises for a failed delivery."""
    note = f"hand-off notification not delivered: no answer within {within_s:g}s"
    with anyio.move_on_after(within_s):
        # abandoned on the deadline: the thread ends by itself within the target's timeout
        return await anyio.to_thread.run_sync(partial(notify_handoff, alerts, notice), abandon_on_cancel=True)
    log.warning("run %s: %s", notice.run_id, note)
    return note
