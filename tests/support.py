"""Helpers shared by the servers' contract tests."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult


async def call(server: Any, tool: str, args: dict[str, Any]) -> CallToolResult:
    """One tool call on a fresh in-memory session.

    Raises:
        MCPError: the server answered with a protocol error (re-raised outside the client's task group,
            so `pytest.raises(MCPError)` sees it rather than an exception group).
    """
    error: MCPError | None = None
    async with Client(server) as client:
        try:
            return await client.call_tool(tool, args)
        except MCPError as exc:
            error = exc
    raise error


def assert_matches_snapshot(path: Path, surface: dict[str, Any]) -> None:
    """The published tool surface equals the committed snapshot; a missing snapshot is written, and fails.

    A change to the model-facing surface then arrives as a reviewable diff of `path`.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(surface, indent=2, sort_keys=True) + "\n")
        pytest.fail(f"no tool-surface snapshot: wrote {path}; review it and commit it")
    assert json.loads(path.read_text()) == surface, f"tool surface changed: review and update {path}"


def http_initialize_status(port: int, host: str, token: str) -> int:
    """The HTTP status of one MCP `initialize` POST to 127.0.0.1:`port`/mcp with this Host header and token."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    headers = {"Host": host, "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    with httpx.Client(timeout=20) as client:
        return client.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers).status_code


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at `host` (IPv4, or IPv6 when it holds ':')."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(
    argv: Sequence[str], env: Mapping[str, str], log_path: Path, *, port: int, host: str = "127.0.0.1"
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `argv` (a server listening on `host`:`port`) with its stderr in `log_path`, until it accepts
    connections (the test fails with the log if it exits or takes over 90 s); stopped on exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
        )
        deadline = time.monotonic() + 90
        while True:
            with socket.socket(family) as sock:
                if sock.connect_ex((host, port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(log_path.read_text())
            time.sleep(0.1)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "tls.crt", directory / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@contextmanager
def tls_serving(handler: type[BaseHTTPRequestHandler], tls: tuple[Path, Path] | None = None) -> Generator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
