"""The HTTP edge of the Jira backend: a read-only guard on the requests Session, and fault mapping.

The guard is a requests transport adapter mounted for every scheme, so any request the `jira`
package builds — including ones a future code path might add — passes through it just before it
would leave the process. Only GET, and POST to the JQL search endpoints (a search, not a write),
go through; anything else raises `WriteRefused` and never reaches the network.

The adapter is a `servers.common.bounded_http.BoundedAdapter`, so it also bounds what a response may
cost: every answer is streamed, one whose `Content-Length` is over the body cap is not read, the
decoded body (after gzip/deflate) is read only up to the cap, and reading stops when the call it
belongs to is over (its deadline passed, or it was abandoned; `read_budget`). In each case the
connection is closed, so an abandoned worker stops downloading too.

`classify` turns what the `jira`/requests stack raised into goresolve's error tree, together with
whether and when the call may be retried. Messages are short and carry no upstream body; Jira's
own JQL error text is kept (sanitized) because the model can act on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from jira.exceptions import JIRAError
from jira.resilientsession import parse_errors

from servers.common.bounded_http import BodyTooLarge, BoundedAdapter, CallOver
from servers.common.errors import GoresolveError, InvalidInput, NotFound, RateLimited, UpstreamFailure

_SEARCH_POST = re.compile(r"/rest/api/(?:2|3|latest)/search(?:/jql)?/?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


# Everything the `jira`/requests stack raises for an upstream fault. ValueError covers requests'
# JSONDecodeError; KeyError/TypeError/NotImplementedError come from a body of the wrong shape (the
# package raises NotImplementedError for an empty resource). WriteRefused is not among them.
UPSTREAM_ERRORS = (
    JIRAError,
    requests.exceptions.RequestException,
    ValueError,
    KeyError,
    TypeError,
    NotImplementedError,
)


class WriteRefused(RuntimeError):
    """A request other than GET or the JQL search POST was attempted. It never left the process.

    Deliberately not a `GoresolveError`: it means a bug in goresolve, so it surfaces as an internal error.
    """


class ReadOnlyAdapter(BoundedAdapter):
    """A transport adapter that sends only GET and the JQL search POST, and reads at most `max_body_bytes`
    within the call's `ReadBudget` (`servers.common.bounded_http`)."""

    def __init__(self, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, **kwargs: Any) -> None:
        super().__init__(max_body_bytes=max_body_bytes, **kwargs)

    def check_request(self, request: requests.PreparedRequest) -> None:
        """Raises: WriteRefused: any other method than GET, or a POST elsewhere than the search endpoints."""
        method = (request.method or "").upper()
        path = urlsplit(request.url or "").path
        if method != "GET" and not (method == "POST" and _SEARCH_POST.search(path)):
            raise WriteRefused(f"read-only Jira client refused {method} {path}")


def install_read_only_guard(session: requests.Session, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Route every request of `session`, whatever its URL, through `ReadOnlyAdapter`."""
    session.adapters.clear()
    adapter = ReadOnlyAdapter(max_retries=0, max_body_bytes=max_body_bytes)  # retries are decided above
    session.mount("https://", adapter)
    session.mount("http://", adapter)


@dataclass(frozen=True)
class Verdict:
    """What a failed attempt means: the error to raise, and how long to wait before a retry (None: don't)."""

    error: GoresolveError
    retry_in: float | None = None


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or unreadable."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = headers.get("Date")
    now = parsedate_to_datetime(date) if date else datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def jira_messages(response: requests.Response | None, limit: int = 3) -> str:
    """Jira's error messages from a response, cleaned for a model: no control characters, short."""
    if response is None:
        return ""
    messages = [" ".join(_CONTROL.sub(" ", m).split())[:300] for m in parse_errors(response)]
    return "; ".join(m for m in messages[:limit] if m)


def classify(exc: BaseException, what: str, backoff_s: float) -> Verdict:
    """Map an exception from the `jira`/requests stack to a `Verdict`.

    `what` names the call for messages (e.g. "issue SVC-1"); `backoff_s` is the delay before
    retrying a 5xx or a failed connection.
    """
    if isinstance(exc, JIRAError):
        status = exc.status_code or 0
        response: requests.Response | None = exc.response
        detail = f"HTTP {status} for {what}: {jira_messages(response)}"
        if status in (401, 403):
            reason = "rejected the credential" if status == 401 else "refused access with this credential"
            return Verdict(UpstreamFailure(f"Jira {reason} ({status}).", status=status, detail=detail))
        if status == 404:
            return Verdict(NotFound(f"Jira has no {what}, or the credential cannot see it.", detail=detail))
        if status == 400:
            said = jira_messages(response) or "the request was rejected"
            return Verdict(InvalidInput(f"Jira rejected the request: {said}", detail=detail))
        if status == 429:
            wait = retry_after_seconds(response.headers if response is not None else None)
            error = RateLimited("Jira is rate-limiting requests; try again later.", retry_after=wait, detail=detail)
            return Verdict(error, backoff_s if wait is None else wait)
        if status >= 500:
            wait = retry_after_seconds(response.headers if response is not None else None) if status == 503 else None
            error = UpstreamFailure(f"Jira failed with HTTP {status}.", status=status, detail=detail)
            return Verdict(error, backoff_s if wait is None else wait)
        return Verdict(UpstreamFailure(f"Jira answered HTTP {status}.", status=status or None, detail=detail))
    if isinstance(exc, BodyTooLarge):
        return Verdict(
            UpstreamFailure(
                f"Jira sent a response larger than {exc.limit} bytes (the limit, setting "
                "GORESOLVE_JIRA_READ_MAX_RESPONSE_BYTES); it was not read.",
                detail=f"{what}: body over {exc.limit} bytes",
            )
        )
    if isinstance(exc, CallOver):
        return Verdict(UpstreamFailure("Jira did not answer in time.", detail=f"{what}: call over while reading"))
    if isinstance(exc, requests.exceptions.ConnectionError):  # includes ConnectTimeout: nothing was sent
        return Verdict(UpstreamFailure("Could not connect to Jira.", detail=f"{what}: {type(exc).__name__}"), backoff_s)
    if isinstance(exc, requests.exceptions.Timeout):
        return Verdict(UpstreamFailure("Jira did not answer in time.", detail=f"{what}: {type(exc).__name__}"))
    if isinstance(exc, ValueError | KeyError | TypeError | NotImplementedError):
        return Verdict(UpstreamFailure("Jira sent a malformed response.", detail=f"{what}: {type(exc).__name__}"))
    return Verdict(UpstreamFailure("The request to Jira failed.", detail=f"{what}: {type(exc).__name__}"))
