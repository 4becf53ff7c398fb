"""github-pr against a hostile GitHub: the real server (make_backend + build_server, PyGithub) over MCP, on the
GitHub fake with one misbehaviour injected. A body is read up to GORESOLVE_GITHUB_PR_MAX_RESPONSE_BYTES (also once
decompressed); a listing is walked for at most MAX_PAGES pages and never twice through the same page; a GET
answered 202 is repeated a few times only; a tool call ends at deadline_s, and its abandoned worker stops reading.
Assertions count requests and bytes, not wall time."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import anyio
import github.Consts
import pytest
from mcp import Client
from pydantic import SecretStr

from servers.common.errors import ConfigError
from servers.common.policy import AccessPolicy, Identity, Policies, Repo, ReposPolicy, Role, ToolsPolicy
from servers.common.settings import load_settings
from servers.github_pr.backends import make_backend
from servers.github_pr.bounded_http import GitHubAdapter
from servers.github_pr.github import MAX_PAGES, connect, current_connection_adapter
from servers.github_pr.server import build_server
from servers.github_pr.settings import GitHubPrSettings
from tests.fakes.github_fake import PREFIX, FakeGitHub

from .conftest import FIX_PATCH
from .test_github import FILES

MIB = 1 << 20
TOKEN = "ghp_" + "Z" * 36
Evil = Callable[[BaseHTTPRequestHandler, str], bool]  # True: answered, the fake must not


@dataclass
class Seen:
    hits: int = 0
    sent: int = 0
    hung_up: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().serve()
    fake.add_repo("acme/svc", FILES, required_reviews=1)
    yield fake
    fake.close()


def inject(fake: FakeGitHub, evil: Evil) -> None:
    original = fake._dispatch  # pyright: ignore[reportPrivateUsage]

    def dispatch(h: BaseHTTPRequestHandler) -> None:
        if not evil(h, h.path.split("?")[0].removeprefix(PREFIX)):
            original(h)

    fake._dispatch = dispatch  # pyright: ignore[reportPrivateUsage]


def send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    for name, value in (headers or {"Content-Type": "application/json"}).items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def stream_issue(h: BaseHTTPRequestHandler, seen: Seen, total: int, chunk: int, pause_s: float = 0.0) -> None:
    """200 with an issue whose title is `total` bytes long, written `chunk` at a time."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Connection", "close")
    h.end_headers()
    try:
        h.wfile.write(b'{"number": 1, "title": "')
        data = b"A" * chunk
        while seen.sent < total:
            h.wfile.write(data)
            h.wfile.flush()
            seen.sent += chunk
            if pause_s:
                threading.Event().wait(pause_s)
        h.wfile.write(b'", "state": "open", "labels": [], "comments": 0}')
    except OSError:
        seen.hung_up.set()


async def call(fake: FakeGitHub, tmp_path: Path, tool: str, args: dict[str, Any], **overrides: Any) -> str:
    """One tool call on a freshly built server; the error text, or "" on success."""
    policies = Policies(
        access=AccessPolicy(identities={"agent": Identity(roles=("agent",), repos=("svc",))}),
        tools=ToolsPolicy(roles={"agent": Role(scopes=("pr:read", "pr:write", "issue:read"))}),
        repos=ReposPolicy(repos={"svc": Repo(github="acme/svc")}),
    )
    options: dict[str, Any] = {
        "state_dir": tmp_path,
        "stdio_identity": "agent",
        "backend": "github",
        "token": SecretStr(TOKEN),
        "base_url": fake.base_url,
        "seconds_between_writes": 0,
        "timeout_s": 10,
        "max_retries": 0,
        "max_response_bytes": MIB,
    }
    settings = GitHubPrSettings(**{**options, **overrides})
    backend, refused = make_backend(settings, policies)
    assert refused == {}
    server = build_server(settings, policies, backend, refused_repos=refused)
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    text = str(result.content[0].text) if result.content else ""  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    assert TOKEN not in text
    assert "Traceback" not in text
    return text if result.is_error else ""


ISSUE = "/repos/acme/svc/issues/1"
OPEN = {
    "repo": "svc",
    "base": "main",
    "ticket": "SVC-7",
    "title": "Fix Add",
    "body": "Add subtracted.",
    "patch": FIX_PATCH,
}


async def test_a_long_issue_is_cut_at_the_cap(fake: FakeGitHub, tmp_path: Path) -> None:
    # Before: PyGithub read all 64 MiB and the tool answered (an endless body: 107 -> 735 MB).
    seen = Seen()

    def evil(h: BaseHTTPRequestHandler, path: str) -> bool:
        if path != ISSUE:
            return False
        stream_issue(h, seen, 64 * MIB, 64 * 1024)
        return True

    inject(fake, evil)
    text = await call(fake, tmp_path, "get_github_issue", {"repo": "svc", "number": 1})
    assert f"larger than {MIB} bytes" in text
    assert seen.hung_up.wait(30)
    assert seen.sent < 16 * MIB


async def test_a_gzip_bomb_is_cut_at_the_cap_once_decoded(fake: FakeGitHub, tmp_path: Path) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'{"number": 1, "title": "')]
    parts += [packer.compress(b"A" * MIB) for _ in range(64)]
    parts += [packer.compress(b'", "state": "open", "labels": [], "comments": 0}'), packer.flush()]
    bomb = b"".join(parts)

    def evil(h: BaseHTTPRequestHandler, path: str) -> bool:
        if path != ISSUE:
            return False
        send(h, 200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        return True

    inject(fake, evil)
    text = await call(fake, tmp_path, "get_github_issue", {"repo": "svc", "number": 1})
    assert f"larger than {MIB} bytes" in text


def fake_port(h: BaseHTTPRequestHandler) -> int:
    address: Any = h.server.server_address
    return int(address[1])


def self_linking_refs(seen: Seen, pages: int, *, same: bool) -> Evil:
    """Matching refs answering a full page with `Link: rel=next` (to itself when `same`, else to page N+1),
    `pages` times; then a last page without a link (so the old, unbounded code ends too)."""

    def evil(h: BaseHTTPRequestHandler, path: str) -> bool:
        if "/git/matching-refs/" not in path:
            return False
        seen.hits += 1
        port = fake_port(h)
        base = f"http://127.0.0.1:{port}{PREFIX}/repos/acme/svc/git"
        ref = f"refs/heads/goresolve/SVC-7-x{seen.hits}"
        one = {
            "ref": ref,
            "node_id": "x",
            "url": f"{base}/{ref}",
            "object": {"sha": "0" * 40, "type": "commit", "url": f"{base}/commits/{'0' * 40}"},
        }
        headers = {"Content-Type": "application/json"}
        if seen.hits < pages:
            target = h.path if same else f"{h.path.split('?')[0]}?per_page=100&page={seen.hits + 1}"
            headers["Link"] = f'<http://127.0.0.1:{port}{target}>; rel="next"'
        send(h, 200, json.dumps([one] * 100).encode(), headers)
        return True

    return evil


async def test_a_listing_that_names_the_same_page_again_is_refused(fake: FakeGitHub, tmp_path: Path) -> None:
    # Before: the self-link was followed for ever (measured: 8,010 requests, 1.49 GB in 60 s).
    seen = Seen()
    inject(fake, self_linking_refs(seen, 50, same=True))
    text = await call(fake, tmp_path, "open_pull_request", OPEN)
    assert "unusable response" in text
    assert seen.hits <= 3


async def test_a_listing_longer_than_the_page_cap_is_refused(fake: FakeGitHub, tmp_path: Path) -> None:
    seen = Seen()
    inject(fake, self_linking_refs(seen, 50, same=False))
    text = await call(fake, tmp_path, "open_pull_request", OPEN)
    assert f"more than {MAX_PAGES} pages" in text
    assert seen.hits == MAX_PAGES


async def test_a_get_answered_202_again_and_again_is_given_up(
    fake: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: PyGithub repeated the GET every 2 s without end.
    monkeypatch.setattr(github.Consts, "PROCESSING_202_WAIT_TIME", 0)
    seen = Seen()

    def evil(h: BaseHTTPRequestHandler, path: str) -> bool:
        if path != ISSUE or seen.hits >= 50:
            return False
        seen.hits += 1
        send(h, 202, b"{}")
        return True

    inject(fake, evil)
    text = await call(fake, tmp_path, "get_github_issue", {"repo": "svc", "number": 1})
    assert "unusable response" in text
    assert seen.hits <= 6


async def test_a_tool_call_ends_at_its_deadline_and_its_worker_stops_reading(fake: FakeGitHub, tmp_path: Path) -> None:
    # A body under the cap that arrives slower than deadline_s. Before: the deadline was only checked between
    # attempts, and the tool waited for the whole body.
    seen = Seen()

    def evil(h: BaseHTTPRequestHandler, path: str) -> bool:
        if path != ISSUE:
            return False
        stream_issue(h, seen, 8 * MIB, 16 * 1024, pause_s=0.05)
        return True

    inject(fake, evil)
    text = await call(
        fake, tmp_path, "get_github_issue", {"repo": "svc", "number": 1}, deadline_s=1, max_response_bytes=64 * MIB
    )
    assert "within 1s" in text or "did not answer in time" in text
    assert await anyio.to_thread.run_sync(seen.hung_up.wait, 30)
    assert seen.sent < 8 * MIB


def test_every_connection_of_the_client_is_bounded(fake: FakeGitHub) -> None:
    # Pins bounded_http.install on this PyGithub: the connection it opens carries the bounded adapter.
    client = connect("test-token", base_url=fake.base_url, timeout_s=5, seconds_between_writes=0)
    assert client.get_repo("acme/svc").full_name == "acme/svc"
    assert isinstance(current_connection_adapter(client), GitHubAdapter)


def redirecting(seen: Seen, target: Callable[[int], str]) -> Evil:
    """The issue GET (and whatever it is sent on to) answered 301 to `target(port)`."""

    def evil(h: BaseHTTPRequestHandler, path: str) -> bool:
        if not path.startswith(ISSUE):
            return False
        seen.hits += 1
        send(h, 301, b"", {"Location": target(fake_port(h)) + ("" if path.endswith("/x") else "/x")})
        return True

    return evil


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("127.0.0.2", id="another-host"),
        pytest.param("127.0.0.1", id="cycle"),
    ],
)
async def test_a_redirect_pygithub_cannot_follow_is_an_unusable_response(
    fake: FakeGitHub, tmp_path: Path, host: str
) -> None:
    # Before: RuntimeError (another host) or RecursionError after 960 requests (a cycle): "internal error".
    seen = Seen()
    inject(fake, redirecting(seen, lambda port: f"http://{host}:{port}{PREFIX}{ISSUE}"))
    text = await call(fake, tmp_path, "get_github_issue", {"repo": "svc", "number": 1})
    assert "GitHub sent an unusable response" in text
    assert seen.hits <= 11


async def test_an_issue_naming_another_host_is_an_unusable_response(fake: FakeGitHub, tmp_path: Path) -> None:
    # Before: PyGithub's URL check raised AssertionError: "internal error".
    fake.add_issue("acme/svc", "t", body="b")
    fake.add_issue_comment("acme/svc", 1, "c")

    def evil(h: BaseHTTPRequestHandler, path: str) -> bool:
        if path != ISSUE:
            return False
        issue = {
            "number": 1, "title": "t", "body": "b", "state": "open", "comments": 1, "labels": [],
            "user": {"login": "x"}, "html_url": "https://x/1", "url": "https://elsewhere.example/1",
            "comments_url": "https://elsewhere.example/repos/acme/svc/issues/1/comments",
        }  # fmt: skip
        send(h, 200, json.dumps(issue).encode())
        return True

    inject(fake, evil)
    text = await call(fake, tmp_path, "get_github_issue_comments", {"repo": "svc", "number": 1, "limit": 5})
    assert "GitHub sent an unusable response" in text


@pytest.mark.parametrize("url", ["http://github.acme.example/api/v3", "http://10.1.2.3/api/v3"])
def test_a_plaintext_github_base_url_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    # Before: the token went to an http:// GitHub Enterprise in plaintext, silently.
    monkeypatch.setenv("GORESOLVE_GITHUB_PR_BASE_URL", url)
    with pytest.raises(ConfigError) as err:
        load_settings(GitHubPrSettings)
    assert "GORESOLVE_GITHUB_PR_BASE_URL" in err.value.message
    assert "https" in err.value.message


def test_the_fakes_loopback_base_url_is_accepted(fake: FakeGitHub) -> None:
    assert GitHubPrSettings(base_url=fake.base_url).base_url == fake.base_url
