"""A fake Jira on a real socket (127.0.0.1, random port, werkzeug in a thread) for the `jira` package.

It serves the bundled sample tickets the way Jira's REST API does: `serverInfo`, `myself`, `field`,
`issue/{key}` (with `fields=`), `issue/{key}/comment` (paged by startAt/maxResults/total), search —
`/search` (startAt/total, Data Center) and `/search/jql` (nextPageToken/isLast, Cloud) — and
`mypermissions`. v3 answers rich text as ADF, v2 as plain/wiki strings. Cloud checks basic auth
(e-mail + API token), Data Center a bearer PAT.

Fault injection (`fail`, `malformed`, `slow`) answers the next matching requests with an error
status (429 with Retry-After, 5xx, 401...), a body that is not JSON, or a held response. Every
request is recorded in `seen`; every response is checked by `jira_contract.violations` and any
violation is kept in `violations` (the fixture fails the test on them).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from servers.common.errors import InvalidInput
from servers.jira_read.cloud import CloudJiraBackend
from servers.jira_read.local import LocalJiraBackend, load_tickets
from tests.fakes import jira_contract
from tests.fakes import jira_fake_bodies as bodies

SAMPLES = jira_contract.REPO_ROOT / "servers" / "jira_read" / "samples"
PERMISSION_KEYS = ("BROWSE_PROJECTS", "CREATE_ISSUES", "EDIT_ISSUES", "ADD_COMMENTS", "DELETE_ISSUES")

_ROUTES = Map(
    [
        Rule("/rest/api/<any('2','3'):v>/serverInfo", endpoint="server_info", methods=["GET"]),
        Rule("/rest/api/<any('2','3'):v>/myself", endpoint="myself", methods=["GET"]),
        Rule("/rest/api/<any('2','3'):v>/field", endpoint="fields", methods=["GET"]),
        Rule("/rest/api/<any('2','3'):v>/issue/<key>", endpoint="issue", methods=["GET"]),
        Rule("/rest/api/<any('2','3'):v>/issue/<key>/comment", endpoint="comments", methods=["GET"]),
        Rule("/rest/api/<any('2','3'):v>/search", endpoint="search", methods=["GET", "POST"]),
        Rule("/rest/api/<any('2','3'):v>/search/jql", endpoint="search_jql", methods=["GET", "POST"]),
        Rule("/rest/api/<any('2','3'):v>/mypermissions", endpoint="permissions", methods=["GET"]),
    ]
)


@dataclass
class Fault:
    """How to answer the next `times` requests whose path contains `path_contains`."""

    status: int = 200
    times: int = 1
    path_contains: str = ""
    headers: dict[str, str] = field(default_factory=dict[str, str])
    body: dict[str, Any] | None = None
    malformed: bool = False
    delay_s: float = 0.0


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: str
    authorization: str | None


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def _error(status: int, *messages: str) -> Response:
    return _json({"errorMessages": list(messages), "errors": {}}, status)


class FakeJira:
    """The fake server. Use as a context manager or call `start()`/`stop()`."""

    def __init__(
        self,
        tickets_dir: Path = SAMPLES,
        *,
        deployment: Literal["cloud", "datacenter"] = "cloud",
        user: str = "bot@example.com",
        token: str = "fake-token",
        page_cap: int = 2,
        granted: frozenset[str] = frozenset({"BROWSE_PROJECTS"}),
    ) -> None:
        self.deployment = deployment
        self.user, self.token = user, token
        self.page_cap = page_cap  # the most items one page holds, whatever maxResults asks
        self.granted = granted
        self._tickets = {key: fields for key, (_, fields) in load_tickets(tickets_dir).items()}
        self._finder = LocalJiraBackend(tickets_dir)
        self._tokens: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.violations: list[str] = []
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-jira", daemon=True
        )

    def start(self) -> FakeJira:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # let held (slow) responses go at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeJira:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- fault injection ---------------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, path_contains: str = "", retry_after: str | None = None) -> None:
        """Answer the next `times` matching requests with `status` and a Jira error body."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = {"errorMessages": [f"Injected failure {status}"], "errors": {}}
        self.faults.append(Fault(status, times, path_contains, headers, body))

    def malformed(self, *, times: int = 1, path_contains: str = "") -> None:
        """Answer the next matching requests with 200 and a body that is not JSON."""
        self.faults.append(Fault(200, times, path_contains, malformed=True))

    def slow(self, delay_s: float, *, times: int = 1, path_contains: str = "") -> None:
        """Hold the next matching responses for `delay_s` (released early when the fake stops)."""
        self.faults.append(Fault(200, times, path_contains, delay_s=delay_s))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.path_contains in path:
                    fault.times -= 1
                    return fault
        return None

    # --- HTTP ---------------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.seen.append(
                Seen(request.method, request.path, request.query_string.decode(), request.headers.get("Authorization"))
            )
        response, deliberate = self._respond(request)
        if not deliberate:
            found = jira_contract.violations(request, response)
            with self._lock:
                self.violations += found
        return response(environ, start_response)

    def _respond(self, request: Request) -> tuple[Response, bool]:
        fault = self._take_fault(request.path)
        if fault is not None and fault.delay_s:
            self._released.wait(fault.delay_s)
        if fault is not None and fault.malformed:
            return Response('{"issues": [ {"key": "SVC-1", ', 200, content_type="application/json"), True
        if fault is not None and fault.status >= 400:
            return _json(fault.body, fault.status, fault.headers), False
        if not self._authorized(request.headers.get("Authorization")):
            return _error(401, "You are not authenticated. Authentication required to perform this operation."), False
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        except NotFound:
            return _error(404, "No such resource."), False
        except HTTPException as exc:
            return _error(exc.code or 400, f"Method {request.method} is not allowed here."), False
        return getattr(self, f"_{endpoint}")(request, **args), False

    def _authorized(self, header: str | None) -> bool:
        if self.deployment == "cloud":
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        else:
            expected = f"Bearer {self.token}"
        return header is not None and secrets.compare_digest(header, expected)

    def _params(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            return {k: v for k, v in (request.get_json(silent=True) or {}).items() if v is not None}
        params: dict[str, Any] = {k: request.args.get(k) for k in request.args}
        params["fields"] = [f for value in request.args.getlist("fields") for f in value.split(",")]
        return params

    def _server_info(self, request: Request, v: str) -> Response:
        return _json(bodies.server_info(self.url, self.deployment == "cloud"))

    def _myself(self, request: Request, v: str) -> Response:
        return _json({"self": f"{self.url}/rest/api/{v}/myself", **bodies.user("goresolve bot")})

    def _fields(self, request: Request, v: str) -> Response:
        return _json(bodies.fields())

    def _issue_json(self, key: str, v: str, wanted: list[str]) -> dict[str, Any]:
        issue_id = str(10000 + sorted(self._tickets).index(key))
        return bodies.issue(self.url, v, key, issue_id, self._tickets[key], wanted)

    def _issue(self, request: Request, v: str, key: str) -> Response:
        if key not in self._tickets:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        return _json(self._issue_json(key, v, self._params(request)["fields"]))

    def _comments(self, request: Request, v: str, key: str) -> Response:
        if key not in self._tickets:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        comments = self._tickets[key].get("comment", {}).get("comments", [])
        start = int(request.args.get("startAt", 0))
        size = min(int(request.args.get("maxResults", 50)), self.page_cap)
        page = [bodies.comment(self.url, v, key, c) for c in comments[start : start + size]]
        return _json({"startAt": start, "maxResults": size, "total": len(comments), "comments": page})

    def _find(self, jql: str) -> list[str] | Response:
        try:
            return self._finder.find(jql)
        except InvalidInput as exc:
            return _error(400, f"Error in the JQL Query: {exc.message}")

    def _search(self, request: Request, v: str) -> Response:
        if self.deployment == "cloud":
            return _error(410, "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API.")
        params = self._params(request)
        hits = self._find(str(params.get("jql", "")))
        if isinstance(hits, Response):
            return hits
        start = int(params.get("startAt", 0))
        size = min(int(params.get("maxResults", 50)), self.page_cap)
        issues = [self._issue_json(k, v, params.get("fields", [])) for k in hits[start : start + size]]
        return _json({"startAt": start, "maxResults": size, "total": len(hits), "issues": issues})

    def _search_jql(self, request: Request, v: str) -> Response:
        if self.deployment != "cloud":
            return _error(404, "No such resource.")
        params = self._params(request)
        jql, start = str(params.get("jql", "")), 0
        if token := params.get("nextPageToken"):
            if token not in self._tokens or self._tokens[token][0] != jql:
                return _error(400, "The provided next page token is invalid or expired.")
            start = self._tokens[token][1]
        hits = self._find(jql)
        if isinstance(hits, Response):
            return hits
        size = min(int(params.get("maxResults", 50)), self.page_cap)
        body: dict[str, Any] = {
            "issues": [self._issue_json(k, v, params.get("fields", [])) for k in hits[start : start + size]],
            "isLast": start + size >= len(hits),
        }
        if not body["isLast"]:
            body["nextPageToken"] = token = secrets.token_urlsafe(24)
            self._tokens[token] = (jql, start + size)
        return _json(body)

    def _permissions(self, request: Request, v: str) -> Response:
        wanted = [p for p in (request.args.get("permissions") or "").split(",") if p]
        if self.deployment == "cloud" and not wanted:
            return _error(400, "The permissions query parameter is required.")
        return _json(bodies.permissions(wanted or list(PERMISSION_KEYS), self.granted))


class RecordingSleep:
    """An injectable clock for retries: records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def cloud_backend_for(fake: FakeJira, **overrides: Any) -> CloudJiraBackend:
    """A `CloudJiraBackend` wired to `fake` (basic auth + v3 on Cloud, PAT + v2 on Data Center).

    Retries wait on a `RecordingSleep` unless `sleep=` is overridden; any constructor argument can be.
    """
    cloud = fake.deployment == "cloud"
    settings: dict[str, Any] = {
        "url": fake.url,
        "auth": "basic" if cloud else "pat",
        "user": fake.user if cloud else None,
        "token": SecretStr(fake.token),
        "api_version": 3 if cloud else 2,
        "timeout_s": 5.0,
        "max_retries": 3,
        "max_retry_wait_s": 10.0,
        "sleep": RecordingSleep(),
    }
    return CloudJiraBackend(**{**settings, **overrides})
