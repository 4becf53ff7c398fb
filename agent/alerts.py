"""The spend anomaly alert: the day's spend crossed a threshold, or jumped against its trailing average.

Sent to a configurable webhook as a PagerDuty Events API v2 `trigger` or a Slack incoming-webhook
message, at most once per window (the ledger remembers when it last fired, across processes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from agent.ledger import Ledger, day_of
from agent.policy import DailyBudget


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
    http = client or httpx.Client()
    try:
        http.post(target.url, json=payload(target, anomaly), timeout=target.timeout_s).raise_for_status()
    finally:
        if client is None:
            http.close()
    return anomaly
