"""The agent's alert webhook in the chart: when a hand-off is notified (agent.alerts.handoffNotify) reaches the
agent container by the variable its settings read, and the webhook URL and PagerDuty routing key come from the
operator's Secret; a value the agent would refuse is refused at install."""

from __future__ import annotations

from typing import Any

import pytest

from agent.cli import AgentSettings
from tests.charts.render import job_template, render

pytestmark = pytest.mark.timeout(600)


def agent_env(*sets: str) -> list[dict[str, Any]]:
    spec = job_template(render(sets=sets))["spec"]["template"]["spec"]
    agent = next(c for c in spec["containers"] if c["name"] == "agent")
    return [e for e in agent["env"] if "ALERT" in e["name"] or "HANDOFF" in e["name"]]


def test_by_default_a_hand_off_that_reached_nobody_is_notified_and_no_webhook_is_set() -> None:
    assert agent_env() == [{"name": "GORESOLVE_AGENT_HANDOFF_NOTIFY", "value": "unreached"}]


def test_a_pagerduty_webhook_from_the_operators_secret_is_what_the_agents_settings_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = agent_env(
        "agent.alerts.existingSecret=alert-hooks",
        "agent.alerts.format=pagerduty",
        "agent.alerts.handoffNotify=always",
    )
    assert env == [
        {"name": "GORESOLVE_AGENT_HANDOFF_NOTIFY", "value": "always"},
        {"name": "GORESOLVE_AGENT_ALERT_FORMAT", "value": "pagerduty"},
        {"name": "GORESOLVE_AGENT_ALERT_URL", "valueFrom": {"secretKeyRef": {"name": "alert-hooks", "key": "url"}}},
        {
            "name": "GORESOLVE_AGENT_ALERT_ROUTING_KEY",
            "valueFrom": {"secretKeyRef": {"name": "alert-hooks", "key": "routing-key"}},
        },
    ]
    secret = {"url": "https://events.pagerduty.com/v2/enqueue", "routing-key": "R0UTING"}
    for e in env:  # as the kubelet would set them
        monkeypatch.setenv(e["name"], e.get("value") or secret[e["valueFrom"]["secretKeyRef"]["key"]])
    settings = AgentSettings()
    assert (settings.handoff_notify, settings.alert_format) == ("always", "pagerduty")
    assert settings.alert_url == secret["url"] and settings.alert_routing_key is not None


def test_slack_needs_no_routing_key() -> None:
    env = agent_env("agent.alerts.existingSecret=alert-hooks", "agent.alerts.handoffNotify=never")
    names = [e["name"] for e in env]
    assert names == ["GORESOLVE_AGENT_HANDOFF_NOTIFY", "GORESOLVE_AGENT_ALERT_FORMAT", "GORESOLVE_AGENT_ALERT_URL"]


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (("agent.alerts.handoffNotify=sometimes",), "/agent/alerts/handoffNotify"),
        (("agent.alerts.format=email",), "/agent/alerts/format"),
        (("agent.alerts.urlKey=",), "/agent/alerts/urlKey"),
    ],
)
def test_a_value_the_agent_would_refuse_is_refused_at_install(sets: tuple[str, ...], complaint: str) -> None:
    with pytest.raises(RuntimeError, match=complaint):
        render(sets=sets)
