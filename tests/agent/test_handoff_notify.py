"""The hand-off notification: a run handed over to nobody (a Jira ticket, no attempt worth a draft) is announced
through the alert webhook, received by a local HTTP receiver, in Slack's and PagerDuty's shapes; a receiver that
fails or hangs costs one note, never the run."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.alerts import NO_CHANNEL, AlertTarget, HandoffAlerts, HandoffNotify
from agent.exits import RunResult
from agent.llm import reply
from agent.loop import RunSettings
from agent.policy import AgentPolicy, load_agent_policy

from .workspace import TICKET, World, make_workspace, served
from .workspace import run_scripted as run

KEY = "AKIAQ3ZT7XK2LMNB4RWP"
HOSTILE_TITLE = "Add is wrong <!channel> <https://evil.example/x|click here> & <@U024BE7LH>"
ESCALATE_AT_ONCE: list[Any] = [
    ("escalate", {"reason": f"cannot fix: the config key {KEY} is rejected"}),
    reply("Add subtracts; look at calc.go."),
]
DRAFT_THEN_ESCALATE: list[Any] = [
    ("edit", {"path": "calc.go", "search": "return a - b", "replace": "return a * b"}),
    ("run_tests", {}),
    ("escalate", {"reason": "cannot fix"}),
    reply("The operator is wrong."),
]


def ticket(key: str, title: str = "Add returns the difference instead of the sum") -> str:
    text = TICKET.replace("CALC-1", key)
    return text.replace("summary: Add returns the difference instead of the sum", f"summary: {json.dumps(title)}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Path]]:
    tickets = {f"CALC-{n}": ticket(f"CALC-{n}") for n in range(1, 8)}
    tickets["CALC-9"] = ticket("CALC-9", HOSTILE_TITLE)
    ws = make_workspace(tmp_path_factory.mktemp("notify-world"), tickets=tickets)
    with served(ws) as w:
        yield w, ws.policy_dir


@pytest.fixture
def policy(world: tuple[World, Path]) -> AgentPolicy:
    return load_agent_policy(world[1])


@dataclass
class Receiver:
    """A webhook receiver on a local port: every body it received, answering `status`, or holding each request
    until `release` (at most 30 s) when `hang`."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    raw: list[bytes] = field(default_factory=list[bytes])
    status: int = 202
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            r = box[0]
            data = self.rfile.read(int(self.headers["content-length"]))
            r.raw.append(data)
            r.received.append(json.loads(data))
            if r.hang:
                r.release.wait(timeout=30)
            self.send_response(r.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    box[0].release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def notifying(
    tmp_path: Path, target: AlertTarget | None, when: HandoffNotify = "unreached", **more: Any
) -> RunSettings:
    settings = RunSettings(repo="calc", state_dir=tmp_path / "agent-state", test_timeout_s=120)
    return dataclasses.replace(settings, handoff_alerts=HandoffAlerts(target, when), **more)


def assert_intact(result: RunResult) -> None:
    """The run's own result, as without a notification: escalated, with its hand-off and owner."""
    assert (result.outcome, result.exit) == ("escalated", "escalated"), result.reason
    assert result.owner == "ana-sousa" and result.handoff is not None and result.run_id in result.handoff
    assert KEY not in result.reason and KEY not in json.dumps(result.extra)


def test_a_jira_ticket_handed_to_nobody_is_announced_on_slack_with_its_title_and_reason_defused(
    world: tuple[World, Path], policy: AgentPolicy, receiver: Receiver, tmp_path: Path
) -> None:
    settings = notifying(tmp_path, AlertTarget(receiver.url, "slack"))
    result, _ = run(world[0], "CALC-9", ESCALATE_AT_ONCE, policy, settings)
    assert_intact(result)
    assert result.pr is None
    assert result.extra["handoff_notes"] == [
        "no attempt worth keeping and no GitHub issue for this ticket: hand-off saved with the run",
        "hand-off notification sent to the slack webhook",
    ]
    assert len(receiver.received) == 1
    message = receiver.received[0]
    text = message["blocks"][0]["text"]["text"]
    assert message["blocks"][0]["text"]["type"] == "mrkdwn"
    assert message["text"].startswith("goresolve hand-off: CALC-9 for ana-sousa: the model escalated: cannot fix")
    assert "*goresolve hand-off: CALC-9*" in text and "*Owner:* ana-sousa" in text
    assert f"*Run:* `{result.run_id}` · *Trace:* `{result.trace_id}`" in text
    assert "*Hand-off:* nobody: saved with the run only" in text
    assert f"`goresolve trace {result.run_id}`" in text and f"`{result.run_dir}`" in text
    # the title as written, inert: no mention, no link, no user ping
    assert "&lt;!channel&gt; &lt;https://evil.example/x|click here&gt; &amp; &lt;@U024BE7LH&gt;" in text
    sent = receiver.raw[0].decode()
    assert "<!channel>" not in sent and "<https://" not in sent and "<@U024" not in sent
    assert KEY not in sent and "[credential removed: aws_access_key]" in text


def test_pagerduty_gets_a_trigger_per_run_with_the_summary_and_details(
    world: tuple[World, Path], policy: AgentPolicy, receiver: Receiver, tmp_path: Path
) -> None:
    settings = notifying(tmp_path, AlertTarget(receiver.url, "pagerduty", SecretStr("R0UTING")))
    result, _ = run(world[0], "CALC-1", ESCALATE_AT_ONCE, policy, settings)
    assert_intact(result)
    assert result.extra["handoff_notes"][-1] == "hand-off notification sent to the pagerduty webhook"
    [event] = receiver.received
    assert event["routing_key"] == "R0UTING" and event["event_action"] == "trigger"
    assert event["dedup_key"] == f"goresolve-handoff-{result.run_id}"
    body = event["payload"]
    assert (body["severity"], body["source"], body["component"]) == ("warning", "goresolve-agent", "hand-off")
    assert len(body["summary"]) <= 1024
    assert body["summary"] == (
        "goresolve hand-off: CALC-1 for ana-sousa: the model escalated: cannot fix: the config key "
        "[credential removed: aws_access_key] is rejected"
    )
    assert body["custom_details"] == {
        "ticket": "CALC-1",
        "title": "Add returns the difference instead of the sum",
        "reason": "the model escalated: cannot fix: the config key [credential removed: aws_access_key] is rejected",
        "owner": "ana-sousa",
        "run_id": result.run_id,
        "trace_id": result.trace_id,
        "hand_off": "nobody: saved with the run only (handoff.md in its record)",
        "see": f"goresolve trace {result.run_id}",
        "run_dir": result.run_dir,
    }
    assert KEY not in receiver.raw[0].decode()


@pytest.mark.parametrize(("when", "key", "sent"), [("always", "CALC-3", 1), ("unreached", "CALC-4", 0)])
def test_a_run_that_opened_a_draft_is_announced_only_when_always(
    world: tuple[World, Path],
    policy: AgentPolicy,
    receiver: Receiver,
    tmp_path: Path,
    when: HandoffNotify,
    key: str,
    sent: int,
) -> None:
    settings = notifying(tmp_path, AlertTarget(receiver.url, "slack"), when)
    result, _ = run(world[0], key, DRAFT_THEN_ESCALATE, policy, settings)
    assert result.outcome == "escalated" and result.pr is not None, result.reason
    assert len(receiver.received) == sent
    if sent:
        text = receiver.received[0]["blocks"][0]["text"]["text"]
        assert f"*Hand-off:* draft pull request #{result.pr['number']}" in text
        assert result.extra["handoff_notes"] == ["hand-off notification sent to the slack webhook"]
    else:
        assert result.extra["handoff_notes"] == []


def test_a_receiver_answering_500_costs_one_note_and_one_log_line(
    world: tuple[World, Path],
    policy: AgentPolicy,
    receiver: Receiver,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.status = 500
    settings = notifying(tmp_path, AlertTarget(receiver.url, "slack"))
    with caplog.at_level(logging.WARNING, logger="agent.alerts"):
        result, _ = run(world[0], "CALC-5", ESCALATE_AT_ONCE, policy, settings)
    assert_intact(result)
    assert len(receiver.received) == 1
    assert result.extra["handoff_notes"][-1] == "hand-off notification not delivered (HTTPStatusError 500)"
    [line] = [r for r in caplog.records if r.name == "agent.alerts"]
    assert line.exc_info is None and result.run_id in line.getMessage()


def test_a_receiver_that_hangs_is_given_up_after_the_grace_period(
    world: tuple[World, Path],
    policy: AgentPolicy,
    receiver: Receiver,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.hang = True
    settings = notifying(tmp_path, AlertTarget(receiver.url, "slack", timeout_s=20), escalation_grace_s=1.0)
    with caplog.at_level(logging.WARNING, logger="agent.alerts"):
        result, _ = run(world[0], "CALC-6", ESCALATE_AT_ONCE, policy, settings)
    assert_intact(result)
    assert len(receiver.received) == 1  # it arrived, and no answer came
    assert result.extra["handoff_notes"][-1] == "hand-off notification not delivered: no answer within 1s"
    assert [r.exc_info for r in caplog.records if r.name == "agent.alerts"] == [None]


def test_without_an_alert_url_the_note_says_nobody_was_reached_and_how_to_configure_a_channel(
    world: tuple[World, Path], policy: AgentPolicy, tmp_path: Path
) -> None:
    result, _ = run(world[0], "CALC-7", ESCALATE_AT_ONCE, policy, notifying(tmp_path, None))
    assert_intact(result)
    assert result.extra["handoff_notes"][-1] == NO_CHANNEL
    assert "GORESOLVE_AGENT_ALERT_URL" in NO_CHANNEL
