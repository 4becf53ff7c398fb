"""The cost ledger and the spend anomaly alert, delivered to a local webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.alerts import AlertTarget, check_and_alert
from agent.ledger import Ledger
from agent.policy import DailyBudget

DAY = 1_767_268_800.0  # 2026-01-01T12:00:00Z
DAILY = DailyBudget(max_cost_usd=50, alert_threshold_usd=10, jump_factor=3, alert_window_s=3600)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(202)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_spend_is_kept_per_run_model_tier_and_day(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.record_call("r1", "gpt-4o", "strong", (1000, 100, 0), 0.5, at=DAY)
    ledger.record_call("r1", "gpt-4o-mini", "small", (1000, 100, 0), 0.1, at=DAY)
    ledger.record_call("r2", "gpt-4o-mini", "small", (1000, 100, 0), 0.2, at=DAY - 86400)
    assert ledger.day_spend("2026-01-01") == pytest.approx(0.6)
    assert ledger.by("model", "2026-01-01") == pytest.approx({"gpt-4o": 0.5, "gpt-4o-mini": 0.1})
    assert ledger.by("tier") == pytest.approx({"strong": 0.5, "small": 0.3})
    assert ledger.by("run_id") == pytest.approx({"r1": 0.6, "r2": 0.2})
    assert ledger.trailing_average("2026-01-01") == pytest.approx(0.2 / 7)


def test_a_threshold_crossing_pages_once_per_window_in_pagerduty_format(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    ledger = Ledger(tmp_path / "l.sqlite")
    target = AlertTarget(url, "pagerduty", SecretStr("R0UTING"))
    ledger.record_call("r1", "gpt-4o", "strong", (1, 1, 0), 4.0, at=DAY)
    assert check_and_alert(ledger, DAILY, target, now=DAY) is None  # $4 < $10, no history: nothing to say
    ledger.record_call("r2", "gpt-4o", "strong", (1, 1, 0), 7.0, at=DAY + 60)
    sent = check_and_alert(ledger, DAILY, target, now=DAY + 60)
    assert sent is not None and sent.kind == "threshold"
    assert check_and_alert(ledger, DAILY, target, now=DAY + 120) is None  # same window: once
    assert check_and_alert(ledger, DAILY, target, now=DAY + 3700) is not None  # next window
    assert len(received) == 2
    event = received[0]
    assert event["routing_key"] == "R0UTING" and event["event_action"] == "trigger"
    assert event["payload"]["severity"] == "warning" and event["payload"]["source"] == "goresolve-agent"
    assert event["payload"]["custom_details"] == {"day": "2026-01-01", "spend_usd": 11.0, "baseline_usd": 10.0}
    assert event["dedup_key"] == "goresolve-spend-threshold-2026-01-01"


def test_a_jump_against_the_trailing_average_goes_to_slack(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    ledger = Ledger(tmp_path / "l.sqlite")
    for d in range(1, 8):
        ledger.record_call(f"old{d}", "gpt-4o-mini", "small", (1, 1, 0), 1.0, at=DAY - d * 86400)
    ledger.record_call("today", "gpt-4o", "strong", (1, 1, 0), 3.5, at=DAY)
    sent = check_and_alert(ledger, DAILY, AlertTarget(url, "slack"), now=DAY)
    assert sent is not None and sent.kind == "jump"
    assert received[0]["text"] == ":warning: goresolve spend $3.50 today is 3.5x the 7-day average $1.00"
    assert received[0]["blocks"][0]["type"] == "section"
