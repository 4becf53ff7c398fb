"""A stateful fake of the GitHub REST API, on 127.0.0.1, for PyGithub (served under /api/v3 like GHES).

It implements exactly the operations in `tests.fakes.github.spec.OPERATIONS` — repositories, branch
protection and rules, the git data API (refs, commits, trees, blobs), pull requests, comments,
assignees, reviewers, labels, the repository activity (who created or pushed to which ref, by token:
`logins`), the authenticated user — with real git blob ids and fast-forward checks on ref updates.
`push_as(login, ...)` plays someone else pushing.
Anything else (a merge, a delete, a settings change) is answered 404 and recorded in `unexpected`.

Every response it serves, and every request the client sends (path and query parameters, JSON
body), is validated against GitHub's REST description (see `github/contract.py`); problems accumulate
in `violations`, which the test fixture asserts empty. Faults are injected per operation:

    fake.fail("pulls/create", 403, retry_after=2)     # secondary rate limit
    fake.fail("pulls/get", 503, times=2)
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.fakes.github import handlers_activity, handlers_hooks, handlers_pulls  # noqa: F401 - register them
from tests.fakes.github.contract import contract
from tests.fakes.github.handlers import HANDLERS
from tests.fakes.github.spec import OPERATIONS

PREFIX = "/api/v3"


def _regex(template: str) -> re.Pattern[str]:
    # `{ref}` spans slashes (heads/goresolve/SVC-1-fix); every other parameter is one segment.
    pattern = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>.+)" if m[1] == "ref" else f"(?P<{m[1]}>[^/]+)", template)
    return re.compile(f"^{pattern}$")


_ROUTES = [(method.upper(), _regex(template), op) for op, (method, template) in OPERATIONS.items()]


def _sha(kind: str, data: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()


class HttpError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.body = (
            status,
            {"message": message, "documentation_url": "https://docs.github.com/rest", **extra},
        )


@dataclass
class Repo:
    owner: str
    name: str
    default_branch: str = "main"
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # sha -> path -> (mode, blob)
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # issues that are not pull requests
    comments: list[dict[str, Any]] = field(default_factory=list)
    required_reviews: int | None = 1  # classic protection of the default branch; None = unprotected
    ruleset_reviews: int | None = None
    protection_readable: bool = True
    activity: list[dict[str, Any]] = field(default_factory=list)  # who moved which ref, newest last

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def next_number(self) -> int:
        """Issues and pull requests share one sequence of numbers, as on GitHub."""
        return max([*self.pulls, *self.issues], default=0) + 1


class FakeGitHub:
    """State + request handling. Start with `serve()`; `base_url` is what PyGithub needs."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.faults: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.calls: list[str] = []
        self.violations: list[str] = []
        self.unexpected: list[str] = []
        self.lock = threading.RLock()
        self.base_url = ""
        self._server: ThreadingHTTPServer | None = None
        self._next_id = 1000
        self.logins: dict[str, str] = {}  # token -> login; any other token acts as `default_login`
        self.default_login = "goresolve-bot"
        self.app_logins: set[str] = set()  # logins of GitHub App installations (no GET /user)
        self.actor = self.default_login  # the login of the request being handled (set under `lock`)

    # --- set-up API for tests ---------------------------------------------------------------------

    def add_repo(self, full_name: str, files: dict[str, str], **kw: Any) -> Repo:
        owner, name = full_name.split("/")
        repo = Repo(owner, name, **kw)
        tree = self._tree(repo, {p: ("100644", self._blob(repo, c.encode())) for p, c in files.items()})
        sha = self._commit(
            repo, {"message": "initial", "tree": tree, "parents": [], "author": _person("Dev", "d@x.invalid")}
        )
        repo.refs[f"refs/heads/{repo.default_branch}"] = sha
        self.repos[full_name] = repo
        return repo

    def add_issue(
        self,
        full_name: str,
        title: str,
        *,
        body: str | None = None,
        labels: tuple[str, ...] = (),
        user: str = "reporter",
        state: str = "open",
        locked: bool = False,
    ) -> int:
        """Open an issue (not a pull request) in `full_name`; returns its number."""
        repo = self.repos[full_name]
        number = repo.next_number()
        repo.issues[number] = {
            "title": title,
            "user": user,
            "state": state,
            "locked": locked,
            "body": body,
            "labels": list(labels),
        }
        return number

    def add_issue_comment(self, full_name: str, number: int, body: str, *, user: str = "reporter") -> int:
        """`user` comments on issue (or pull request) `number`; returns the comment's id."""
        with self.lock:
            return self.record_comment(self.repos[full_name], number, body, user)["id"]

    def record_comment(self, repo: Repo, number: int, body: str, user: str) -> dict[str, Any]:
        comment = {"id": self.next_id(), "number": number, "body": body, "user": user}
        comment["created_at"] = f"2026-01-05T09:{len(repo.comments) % 60:02d}:00Z"
        repo.comments.append(comment)
        return comment

    def push_as(self, login: str, full_name: str, branch: str, files: dict[str, str], *, author: Any = None) -> str:
        """Someone else (`login`) pushes a commit changing `files` on top of `branch` (or of main, creating it).

        `author` (name, email) defaults to the pusher; a forger passes the bot's.
        """
        repo = self.repos[full_name]
        ref = f"refs/heads/{branch}"
        parent = repo.refs.get(ref, repo.refs[f"refs/heads/{repo.default_branch}"])
        entries = dict(repo.trees[repo.commits[parent]["tree"]])
        entries.update({p: ("100644", self._blob(repo, c.encode())) for p, c in files.items()})
        name, email = author or (login, f"{login}@example.invalid")
        commit = {
            "message": f"change by {login}",
            "tree": self._tree(repo, entries),
            "parents": [parent],
            "author": _person(name, email),
            "n": self.next_id(),
        }
        sha = self._commit(repo, commit)
        with self.lock:
            self.record(repo, ref, repo.refs.get(ref), sha, login)
            repo.refs[ref] = sha
        return sha

    def record(self, repo: Repo, ref: str, before: str | None, after: str | None, login: str | None = None) -> None:
        """Append one entry to the repository's activity, as GitHub records every ref change."""
        if before is None:
            kind = "branch_creation"
        elif after is None:
            kind = "branch_deletion"
        else:
            kind = "push" if before in self._ancestors(repo, after) else "force_push"
        actor = login or self.actor
        repo.activity.append(
            {"before": before or "0" * 40, "after": after or "0" * 40, "ref": ref, "type": kind, "actor": actor}
        )

    def fail(self, op: str, status: int, *, times: int = 1, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.faults.setdefault(op, []).extend([(status, headers)] * times)

    def file_at(self, full_name: str, ref: str, path: str) -> str | None:
        repo = self.repos[full_name]
        commit = repo.commits[repo.refs.get(f"refs/heads/{ref}", ref)]
        entry = repo.trees[commit["tree"]].get(path)
        return repo.blobs[entry[1]].decode() if entry else None

    # --- object store -----------------------------------------------------------------------------

    def _blob(self, repo: Repo, data: bytes) -> str:
        sha = _sha("blob", data)
        repo.blobs[sha] = data
        return sha

    def _tree(self, repo: Repo, entries: dict[str, tuple[str, str]]) -> str:
        sha = _sha("tree", json.dumps(sorted(entries.items())).encode())
        repo.trees[sha] = dict(entries)
        return sha

    def _commit(self, repo: Repo, commit: dict[str, Any]) -> str:
        sha = _sha("commit", json.dumps(commit, sort_keys=True).encode())
        repo.commits[sha] = commit
        return sha

    def _ancestors(self, repo: Repo, sha: str) -> set[str]:
        seen, todo = set(), [sha]
        while todo:
            cur = todo.pop()
            if cur not in seen:
                seen.add(cur)
                todo.extend(repo.commits[cur]["parents"])
        return seen

    # --- HTTP -------------------------------------------------------------------------------------

    def serve(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}{PREFIX}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        path = url.path.removeprefix(PREFIX)
        query = dict(parse_qsl(url.query))
        length = int(h.headers.get("Content-Length") or 0)
        raw_body = h.rfile.read(length) if length else b""
        body = json.loads(raw_body) if raw_body else None
        route = next(((op, m) for method, rx, op in _ROUTES if method == h.command and (m := rx.match(path))), None)
        headers: dict[str, str] = {}
        problems: list[str] = []
        if route is None:
            self.unexpected.append(f"{h.command} {path}")
            status, payload = 404, HttpError(404, "Not Found").body
        else:
            op, match = route
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            template = OPERATIONS[op][1]
            problems += contract().request_violations(h.command, path, template, params, query, raw_body)
            token = (h.headers.get("Authorization") or "").rsplit(" ", 1)[-1]
            with self.lock:
                self.calls.append(op)
                fault = self.faults.get(op, []) and self.faults[op].pop(0)
            if fault:
                status, headers = fault
                message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                payload = HttpError(status, message if status in (403, 429) else "Service Unavailable").body
            else:
                try:
                    with self.lock:
                        self.actor = self.logins.get(token, self.default_login)
                        status, payload = self._route(op, params, query, body)
                except HttpError as err:
                    status, payload = err.status, err.body
        raw = b"" if payload is None else json.dumps(payload).encode()
        if route is not None:
            problems += contract().violations(h.command, path, OPERATIONS[route[0]][1], status, raw, headers)
        with self.lock:
            self.violations += problems
        h.send_response(status)
        for key, value in {**headers, "Content-Type": "application/json; charset=utf-8"}.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)

    def _route(self, op: str, params: dict[str, str], query: dict[str, str], body: Any) -> tuple[int, Any]:
        if "owner" not in params:  # an operation outside any repository (the authenticated user)
            return HANDLERS[op](self, None, params, query, body)  # type: ignore[arg-type]
        full = f"{params.pop('owner')}/{params.pop('repo')}"
        repo = self.repos.get(full)
        if repo is None:
            raise HttpError(404, "Not Found")
        return HANDLERS[op](self, repo, params, query, body)

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id


def _person(name: str, email: str) -> dict[str, str]:
    return {"name": name, "email": email, "date": "2026-01-01T00:00:00Z"}
