"""The alert webhook facing a slow or hostile receiver: one delivery takes at most the target's timeout in all
(a receiver dripping its answer is cut off), the answer's body is never read, and the spend alert is delivered
from its own thread, so the run that recorded the spend does not wait on it. Assertions count bytes, not time."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from agent.alerts import AlertTarget, alert_in_background, send
from agent.ledger import Ledger
from agent.policy import DailyBudget

DAY = 1_767_268_800.0
DAILY = DailyBudget(max_cost_usd=50, alert_threshold_usd=1, jump_factor=3, alert_window_s=3600)
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
MIB = 1 << 20


@dataclass
class Receiver:
    url: str = ""
    sent: int = 0
    requests: int = 0
    hung_up: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def receiving(answer: Callable[[socketserver.StreamRequestHandler, Receiver], None]) -> Generator[Receiver]:
    """A raw TCP receiver on 127.0.0.1: reads the request head (and body), then writes what `answer` does."""
    rec = Receiver()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.rfile.read(length)
            rec.requests += 1
            try:
                answer(self, rec)
            except OSError:
                rec.hung_up.set()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()


def drip_head(h: socketserver.StreamRequestHandler, rec: Receiver) -> None:
    """The status line and headers one byte every 0.25 s (about 18 s in all: the old code waited for it)."""
    for byte in HEAD:
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        rec.sent += 1
        threading.Event().wait(0.25)
    rec.hung_up.wait(5)  # the connection stays open until the client goes


def endless_body(h: socketserver.StreamRequestHandler, rec: Receiver) -> None:
    h.wfile.write(HEAD)
    block = b"x" * (64 * 1024)
    while rec.sent < 64 * MIB:
        h.wfile.write(block)
        rec.sent += len(block)
    h.wfile.flush()


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_timeout() -> None:
    # Before: httpx's timeout is per read, so one byte every 0.25 s kept the delivery going (measured: a byte
    # every 3 s blocked the run for ever).
    with receiving(drip_head) as rec:
        with pytest.raises(httpx.TimeoutException):
            send(AlertTarget(rec.url, "slack", timeout_s=1), {"text": "x"})
        assert rec.hung_up.wait(10)
    assert rec.sent < len(HEAD) // 2


def test_the_answers_body_is_not_read() -> None:
    # Before: the whole body was read (64 MiB here; an endless one without end).
    with receiving(endless_body) as rec:
        send(AlertTarget(rec.url, "slack", timeout_s=10), {"text": "x"})
        assert rec.hung_up.wait(30)
    assert rec.sent < 16 * MIB


def test_the_spend_alert_is_delivered_without_the_caller_waiting(tmp_path: Path) -> None:
    def held(h: socketserver.StreamRequestHandler, rec: Receiver) -> None:
        rec.release.wait(30)
        h.wfile.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    failures: list[httpx.HTTPError] = []
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.record_call("r1", "m", "strong", (1, 1, 0), 5.0, at=DAY)
    with receiving(held) as rec:
        thread = alert_in_background(
            ledger, DAILY, AlertTarget(rec.url, "slack", timeout_s=30), on_failure=failures.append, now=DAY
        )
        assert thread is not None
        assert thread.is_alive()  # returned while the receiver still holds its answer
        rec.release.set()
        thread.join(30)
    assert not thread.is_alive()
    assert rec.requests == 1
    assert failures == []
    assert alert_in_background(ledger, DAILY, AlertTarget(rec.url, "slack"), now=DAY + 60) is None  # claimed once


def test_a_failed_background_delivery_is_reported(tmp_path: Path) -> None:
    def refused(h: socketserver.StreamRequestHandler, rec: Receiver) -> None:
        h.wfile.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    failures: list[httpx.HTTPError] = []
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.record_call("r1", "m", "strong", (1, 1, 0), 5.0, at=DAY)
    with receiving(refused) as rec:
        thread = alert_in_background(ledger, DAILY, AlertTarget(rec.url, "slack"), on_failure=failures.append, now=DAY)
        assert thread is not None
        thread.join(30)
    assert [type(f) for f in failures] == [httpx.HTTPStatusError]
