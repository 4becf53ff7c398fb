"""The Jira backend for Jira Cloud (REST v3, API token) and Data Center (REST v2, PAT), via `jira`.

The `jira` package is synchronous, so each HTTP call runs in a worker thread. Three bounds keep
every call finite: the requests timeout on each attempt (`timeout_s`), a retry budget (at most
`max_retries` retries, at most `max_retry_wait_s` spent waiting in total), and a deadline over the
whole public call (`deadline_s`) after which the worker is abandoned — and stops reading: the call's
`ReadBudget` is cancelled, and the adapter closes the connection at its next chunk. Every body is read
at most up to `max_body_bytes` (decoded), see `cloud_http.ReadOnlyAdapter`. The package's own
`ResilientSession` retries are switched off: they sleep inside the thread for up to a minute per
attempt, which no deadline could interrupt. Retries happen here instead, on 429 (honouring
Retry-After), 5xx and failed connections.

Nothing here can write: the session carries `cloud_http.ReadOnlyAdapter`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread
from jira import JIRA
from pydantic import SecretStr

from jqlscope import is_issue_key
from servers.common.bounded_http import read_budget
from servers.common.errors import ConfigError, InvalidInput, NotFound, UpstreamFailure
from servers.jira_read.cloud_http import (
    DEFAULT_MAX_BODY_BYTES,
    UPSTREAM_ERRORS,
    classify,
    install_read_only_guard,
)
from servers.jira_read.models import RawComment, RawIssue, RawSearchPage

T = TypeVar("T")
ISSUE_FIELDS = [
    "summary", "description", "status", "issuetype", "labels", "components", "priority",
    "assignee", "reporter", "created", "updated", "issuelinks",
    "comment",  # for its `total`: the model is told how many comments get_comments would read
]  # fmt: skip
SEARCH_FIELDS = ["summary", "status", "issuetype", "updated"]
PERMISSIONS = ["BROWSE_PROJECTS", "CREATE_ISSUES", "EDIT_ISSUES", "ADD_COMMENTS", "DELETE_ISSUES", "TRANSITION_ISSUES"]
MAX_LIMIT = 100
MAX_COMMENT_PAGES = 20  # pages after the first when reading an issue's latest comments: the last `limit` are wanted


class CloudJiraBackend:
    """`JiraBackend` over Jira's REST API. Building it makes no network call.

    `api_version` 3 means Jira Cloud (search via `/search/jql` and `nextPageToken`); 2 means Data Center
    (`/search` with `startAt`). `auth` "basic" sends `user` + API token (Cloud), "pat" a bearer token
    (Data Center). `deadline_s` bounds each public call (default `2 * timeout_s + max_retry_wait_s`);
    `backoff_s` doubles per retry of a 5xx or refused connection; `max_body_bytes` caps every response body
    (decoded). `sleep` is the clock retries wait
    on; tests inject their own.

    Raises (constructor):
        ConfigError: basic auth without a user.
    """

    def __init__(
        self,
        *,
        url: str,
        auth: Literal["basic", "pat"],
        user: str | None,
        token: SecretStr,
        api_version: int = 3,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        max_retry_wait_s: float = 30.0,
        deadline_s: float | None = None,
        backoff_s: float = 0.5,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if auth == "basic" and not user:
            raise ConfigError("Jira basic auth (a Cloud API token) needs the account e-mail as user")
        self._cloud = api_version == 3
        self._max_retries = max_retries
        self._max_wait = max_retry_wait_s
        self._deadline = deadline_s if deadline_s is not None else 2 * timeout_s + max_retry_wait_s
        self._backoff = backoff_s
        self._sleep = sleep
        self._limiter = anyio.CapacityLimiter(4)
        secret = token.get_secret_value()
        self._client = JIRA(
            server=url,
            options={"rest_api_version": str(api_version), "check_update": False},
            basic_auth=(user or "", secret) if auth == "basic" else None,
            token_auth=secret if auth == "pat" else None,
            get_server_info=False,  # no network in the constructor; the API version says what we talk to
            max_retries=0,  # see the module docstring: retries live in `_call`
            timeout=timeout_s,
            logging=False,
        )
        if self._cloud:
            self._client.deploymentType = "Cloud"  # enables the package's /search/jql path
        session = self._client._session  # pyright: ignore[reportPrivateUsage]  # the package has no public accessor
        assert session is not None  # JIRA.__init__ always creates it
        install_read_only_guard(session, max_body_bytes)

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one blocking `jira` call in a worker thread, retrying within the budget.

        Raises:
            GoresolveError: the classified failure of the last attempt (see `cloud_http.classify`).
        """
        attempt, waited = 0, 0.0
        while True:
            try:
                return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True, limiter=self._limiter)
            except UPSTREAM_ERRORS as exc:
                verdict = classify(exc, what, self._backoff * 2**attempt)
            wait = verdict.retry_in
            if wait is None or attempt >= self._max_retries or waited + wait > self._max_wait:
                raise verdict.error
            await self._sleep(wait)
            attempt, waited = attempt + 1, waited + wait

    async def _bounded(self, what: str, work: Callable[[], Awaitable[T]]) -> T:
        try:
            # The budget is cancelled however the call ends: a worker thread abandoned to the deadline
            # (anyio copies the context into it) stops reading at its next chunk.
            with read_budget(self._deadline), anyio.fail_after(self._deadline):
                return await work()
        except TimeoutError:
            raise UpstreamFailure(
                f"Jira did not answer within {self._deadline:g}s.", detail=f"{what}: deadline exceeded"
            ) from None

    async def get_issue(self, key: str) -> RawIssue:
        """The issue's raw fields (ADF on Cloud, wiki markup on Data Center).

        Raises:
            InvalidInput: `key` is not an issue key. NotFound, RateLimited, UpstreamFailure: see `JiraBackend`.
        """
        key = _checked_key(key)
        what = f"issue {key}"
        fetch = partial(self._client.issue, key, fields=",".join(ISSUE_FIELDS))
        issue = await self._bounded(what, lambda: self._call(what, fetch))
        raw: dict[str, Any] = issue.raw
        if not isinstance(raw.get("fields"), dict):
            raise UpstreamFailure("Jira sent a malformed response.", detail=f"{what}: no fields object")
        return RawIssue(key=str(raw.get("key", key)), fields=raw["fields"], self_url=raw.get("self"))

    async def get_comments(self, key: str, limit: int) -> tuple[list[RawComment], int]:
        """The most recent `limit` comments, oldest first, following Jira's pages; and the total.

        Jira pages comments oldest first, so the first page tells the total and, when there are more
        than `limit`, reading resumes at `total - limit` (no reliance on `orderBy`, which not every
        Data Center version honours).

        Raises:
            InvalidInput: bad key or limit. NotFound, RateLimited, UpstreamFailure: see `JiraBackend`.
        """
        key = _checked_key(key)
        if limit < 1:
            raise InvalidInput("limit must be at least 1.")
        what = f"comments of {key}"

        async def page_at(start: int) -> tuple[list[RawComment], int]:
            params = {"startAt": start, "maxResults": limit}
            # The public comments() drops the page's `total`, hence the package's own JSON getter.
            get = partial(self._client._get_json, f"issue/{key}/comment", params=params)  # pyright: ignore[reportPrivateUsage]
            return _comments_page(await self._call(what, get), what)

        async def pages() -> tuple[list[RawComment], int]:
            first, total = await page_at(0)
            start = max(0, total - limit)
            kept, position = first[start:], max(start, len(first))
            for _ in range(MAX_COMMENT_PAGES):  # a `total` that keeps growing (a hostile or broken Jira) ends here
                if position >= total:
                    break
                batch, total = await page_at(position)
                if not batch:
                    break
                kept, position = kept + batch, position + len(batch)
            return kept[-limit:], total

        return await self._bounded(what, pages)

    async def search(self, jql: str, limit: int, cursor: str | None) -> RawSearchPage:
        """One page of issues matching `jql`; the cursor is opaque and bound to the JQL.

        Raises:
            InvalidInput: Jira rejected the JQL (its message, sanitized), a bad limit or cursor.
            RateLimited, UpstreamFailure: see `JiraBackend`.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}.")
        position = _decode_cursor(cursor, jql, "t" if self._cloud else "o")
        what = "search"
        if self._cloud:
            run = partial(
                self._client.enhanced_search_issues,
                jql, nextPageToken=position or None, maxResults=limit, fields=list(SEARCH_FIELDS), json_result=True,
            )  # fmt: skip
        else:
            run = partial(
                self._client.search_issues,
                jql, startAt=int(position or 0), maxResults=limit, fields=list(SEARCH_FIELDS), json_result=True,
            )  # fmt: skip
        page: Any = await self._bounded(what, lambda: self._call(what, run))
        try:
            issues = [RawIssue(key=i["key"], fields=i["fields"], self_url=i.get("self")) for i in page["issues"]]
            if self._cloud:
                token = None if page.get("isLast", True) else page.get("nextPageToken")
                following = str(token) if token else None
            else:
                after = int(page["startAt"]) + len(issues)
                following = str(after) if issues and after < int(page["total"]) else None
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamFailure("Jira sent a malformed response.", detail=f"search: {exc!r}") from None
        next_cursor = _encode_cursor(following, jql, "t" if self._cloud else "o") if following else None
        return RawSearchPage(issues=issues, next_cursor=next_cursor)

    async def permissions(self) -> dict[str, bool] | None:
        """The credential's global/any-project permissions among `PERMISSIONS`; None if Jira has no such API.

        Raises:
            RateLimited, UpstreamFailure: see `JiraBackend`.
        """
        what = "permissions"
        fetch = partial(self._client.my_permissions, permissions=",".join(PERMISSIONS))
        try:
            data: Any = await self._bounded(what, lambda: self._call(what, fetch))
        except NotFound:
            return None
        try:
            return {k: bool(v.get("havePermission")) for k, v in data["permissions"].items() if k in PERMISSIONS}
        except (KeyError, TypeError, AttributeError) as exc:
            raise UpstreamFailure("Jira sent a malformed response.", detail=f"permissions: {exc!r}") from None


def _checked_key(key: str) -> str:
    # The key becomes part of a URL path: only a real issue key may get there.
    key = key.strip().upper()
    if not is_issue_key(key):
        raise InvalidInput(f"{key[:40]!r} is not a Jira issue key (like SVC-12).")
    return key


def _comments_page(page: Any, what: str) -> tuple[list[RawComment], int]:
    try:
        batch = [
            RawComment(
                id=str(c["id"]),
                author=(c.get("author") or {}).get("displayName"),
                created=c.get("created"),
                body=c.get("body"),
            )
            for c in page["comments"]
        ]
        return batch, int(page["total"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamFailure("Jira sent a malformed response.", detail=f"{what}: {exc!r}") from None


def _digest(jql: str) -> str:
    return hashlib.sha256(jql.encode()).hexdigest()[:16]


def _encode_cursor(position: str, jql: str, kind: str) -> str:
    raw = json.dumps({kind: position, "q": _digest(jql)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None, jql: str, kind: str) -> str | None:
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position, digest = str(data[kind]), data["q"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("Invalid cursor: pass back the next_cursor of a previous page unchanged.") from exc
    if digest != _digest(jql):
        raise InvalidInput("This cursor belongs to a different query; start again without a cursor.")
    if kind == "o" and not (position.isascii() and position.isdigit() and len(position) <= 9):
        # Data Center's offset: a position a page of ours gave, never text or a negative number (startAt=-5)
        raise InvalidInput("Invalid cursor: pass back the next_cursor of a previous page unchanged.")
    return position
