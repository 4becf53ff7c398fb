"""A small misbehaving HTTP server on 127.0.0.1 for the upstream-bounds tests: it answers every request
with what `reply` writes, and counts the body bytes it managed to send and whether the client hung up."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Upstream:
    url: str = ""
    requests: int = 0
    sent: int = 0  # body bytes written to the socket (some may sit unread in kernel buffers)
    hung_up: threading.Event = field(default_factory=threading.Event)


Reply = Callable[[BaseHTTPRequestHandler, "Upstream"], None]


def endless(chunk: int = 64 * 1024, limit: int | None = None, pause_s: float = 0.0) -> Reply:
    """200 with a JSON-looking body that never ends (or ends after `limit` bytes), written in `chunk`s."""

    def reply(h: BaseHTTPRequestHandler, up: Upstream) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b'{"key": "SVC-1", "fields": {"summary": "')
        data = b"A" * chunk
        while limit is None or up.sent < limit:
            h.wfile.write(data)
            h.wfile.flush()
            up.sent += len(data)
            if pause_s:
                threading.Event().wait(pause_s)
        h.wfile.write(b'"}}')

    return reply


def gzip_bomb(mib: int) -> Reply:
    """200, `Content-Encoding: gzip`: a small body that decodes to `mib` MiB of valid JSON."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'{"key": "SVC-1", "fields": {"summary": "')]
    block = b"A" * (1 << 20)
    parts += [packer.compress(block) for _ in range(mib)]
    parts += [packer.compress(b'"}}'), packer.flush()]
    body = b"".join(parts)

    def reply(h: BaseHTTPRequestHandler, up: Upstream) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        up.sent += len(body)

    return reply


def declared(length: int) -> Reply:
    """200 announcing a `length`-byte body, then sending it slowly (the client should not wait for it)."""

    def reply(h: BaseHTTPRequestHandler, up: Upstream) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(length))
        h.end_headers()
        while up.sent < length:
            h.wfile.write(b" " * 1024)
            h.wfile.flush()
            up.sent += 1024
            threading.Event().wait(0.05)

    return reply


@contextmanager
def hostile(reply: Reply) -> Generator[Upstream]:
    """Serve `reply` on 127.0.0.1 until the block ends."""
    up = Upstream()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            up.requests += 1
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            try:
                reply(self, up)
            except OSError:  # the client closed the connection
                up.hung_up.set()

        do_POST = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    up.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield up
    finally:
        server.shutdown()
        server.server_close()


def echo_credential(status: int) -> Reply:
    """`status` with a Jira error body that quotes the request's Authorization header back."""

    def reply(h: BaseHTTPRequestHandler, up: Upstream) -> None:
        said = f"bad credential: {h.headers.get('Authorization')}"
        _send_json(h, up, status, {"errorMessages": [said], "errors": {}})

    return reply


def growing_comments() -> Reply:
    """An issue's comment pages of one comment each, whose `total` grows with every page asked for."""

    def reply(h: BaseHTTPRequestHandler, up: Upstream) -> None:
        n = up.requests
        comment = {"id": str(n), "author": {"displayName": "x"}, "created": "2026-01-05T09:12:00.000+0000"}
        page = {"startAt": n, "maxResults": 1, "total": n + 10, "comments": [{**comment, "body": f"c{n}"}]}
        _send_json(h, up, 200, page)

    return reply


def _send_json(h: BaseHTTPRequestHandler, up: Upstream, status: int, doc: object) -> None:
    body = json.dumps(doc).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)
    up.sent += len(body)
