"""Senders that stall or hang up mid-body, against `goresolve serve webhooks` as its own process.

64 unauthenticated connections that each declare 2 MiB, send 1 MiB and go idle cannot keep a signed
delivery out: one address holds at most its share of unverified requests (429 beyond it), and each
stalled body is cut off at the body deadline (408) with its bytes given back. A client that hangs up
mid-body is one info line and a `disconnect` count, never a traceback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from tests.webhooks import support as s
from tests.workqueue.support import wait_for

MIB = 1024 * 1024


def _stall(base: str) -> socket.socket:
    """A connection that declares a 2 MiB body to /webhooks/github, sends 1 MiB of it and goes idle."""
    host, port = base.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=30)
    head = (
        b"POST /webhooks/github HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"X-Hub-Signature-256: sha256=00\r\nContent-Length: 2097152\r\n\r\n"
    )
    conn.sendall(head + b"x" * MIB)
    return conn


@contextmanager
def _stalled(base: str, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        yield [stack.enter_context(_stall(base)) for _ in range(count)]


def _answer(conn: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body of the one answer on `conn`."""
    raw = b""
    while b"\r\n\r\n" not in raw or not raw.endswith(b"}"):
        got = conn.recv(65536)
        if not got:
            break
        raw += got
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _signed(base: str, source: str = "127.0.0.2") -> httpx.Response:
    """A signed push from another loopback address (another client than the stalled ones)."""
    raw = s.dumps(s.push(after="c" * 40))
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as client:
        return client.post(f"{base}/webhooks/github", content=raw, headers=s.github_headers("push", raw))


def _rejected(base: str, reason: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(f'goresolve_webhooks_rejected_total{{reason="{reason}",source="github"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_64_stalled_unsigned_bodies_do_not_keep_a_signed_delivery_out(tmp_path: Path) -> None:
    env = s.gateway_env(
        tmp_path, GORESOLVE_WEBHOOKS_GITHUB_SECRET=s.SECRET.get_secret_value(), GORESOLVE_WEBHOOKS_BODY_TIMEOUT_S="2"
    )
    with s.serving_gateway(tmp_path, env) as base, _stalled(base, 64) as conns:
        wait_for(lambda: _rejected(base, "client-busy") == 48, 10, "the connections past the address's share")
        answer = _signed(base)  # while all 64 are open: the 16 reading hold 16 MiB of the 64 MiB budget
        assert answer.status_code == 202 and answer.json()["status"] == "queued"
        answers = [_answer(c) for c in conns]
        assert sorted(status for status, _ in answers) == [408] * 16 + [429] * 48
        assert {"error": "the body did not arrive within 2s"} in [body for _, body in answers]
        again = _signed(base, source="127.0.0.1")  # the stalled address itself, once its bodies were cut off
        assert again.status_code == 202
        assert _rejected(base, "body-timeout") == 16
    log = (tmp_path / "gateway.log").read_text()
    assert "Traceback" not in log and '"level": "error"' not in log


def test_a_client_that_hangs_up_mid_body_is_one_line_and_a_count(tmp_path: Path) -> None:
    env = s.gateway_env(tmp_path, GORESOLVE_WEBHOOKS_GITHUB_SECRET=s.SECRET.get_secret_value())
    with s.serving_gateway(tmp_path, env) as base:
        with _stalled(base, 3):
            pass  # closed mid-body
        wait_for(lambda: _rejected(base, "disconnect") == 3, 10, "the hang-ups to be counted")
        assert _signed(base).status_code == 202
    lines = (tmp_path / "gateway.log").read_text().splitlines()
    assert "Traceback" not in "\n".join(lines)
    hung_up = [line for line in lines if "disconnect" in line]
    assert len(hung_up) == 3 and all(len(line) < 400 for line in hung_up), hung_up
