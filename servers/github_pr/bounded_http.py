"""Bounds on what one GitHub answer may cost, below PyGithub: body size, redirects, and the call's time.

PyGithub reads every body whole (`response.text`), follows a 301 by recursing without a limit, and
repeats a 202 on a GET every 2 s for ever. It builds its own `requests` sessions, one per connection
class, so `github.connect` gives the client's `Requester` connection classes whose session carries
`BoundedAdapter` (this module does not import PyGithub: the server imports it for `read_budget`):

- every answer is streamed; a `Content-Length` over the cap is not read, and a body that grows past
  the cap once decoded (gzip/deflate) is cut there (`BodyTooLarge`);
- a `ReadBudget` travels with the call in a context variable (worker threads started by anyio inherit
  it): every request, and every chunk read, checks it; once the call is over (its deadline passed, or
  it was abandoned), the request is not sent, or the connection is closed mid-body (`CallOver`);
- at most `MAX_REDIRECTS` redirects per budget (`requests.TooManyRedirects`), and at most
  `MAX_ACCEPTED` "202 Accepted, try again" answers (`NotReady`).

Budgets nest: `Calls` opens one per GitHub request (its `deadline_s`), the server one per tool call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import requests
from requests.adapters import HTTPAdapter

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_REDIRECTS = 10
MAX_ACCEPTED = 5  # PyGithub waits 2 s before repeating a GET answered 202
_CHUNK = 64 * 1024


class BodyTooLarge(requests.exceptions.RequestException):
    """A response body (as decoded) over the cap. The connection was closed; the body is not kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response body over {limit} bytes")
        self.limit = limit


class NotReady(requests.exceptions.RequestException):
    """GitHub answered 202 ("still computing") to more than `MAX_ACCEPTED` GETs of one call."""


class CallOver(requests.exceptions.RequestException):
    """The call a request belongs to is over (deadline passed, or abandoned): nothing more is sent or read."""


class ReadBudget:
    """What one call may still spend: a monotonic deadline, a cancel flag, a redirect count; and its parent's."""

    def __init__(self, deadline_s: float, parent: ReadBudget | None = None) -> None:
        self._until = time.monotonic() + deadline_s
        self._over = threading.Event()
        self._parent = parent
        self.redirects = 0
        self.accepted = 0

    def cancel(self) -> None:
        self._over.set()

    def check(self) -> None:
        """Raises: CallOver once this call or an enclosing one was cancelled or passed its deadline."""
        if self._over.is_set() or time.monotonic() > self._until:
            raise CallOver("the call is over")
        if self._parent is not None:
            self._parent.check()


_budget: ContextVar[ReadBudget | None] = ContextVar("github_pr_budget", default=None)


@contextmanager
def read_budget(deadline_s: float) -> Generator[ReadBudget]:
    """Bind a `ReadBudget` (inside any enclosing one) to the current context for one call; cancel it on the
    way out, however the call ends, so a worker thread still working for it stops at its next chunk."""
    budget = ReadBudget(deadline_s, _budget.get())
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        budget.cancel()
        _budget.reset(token)


class BoundedAdapter(HTTPAdapter):
    """An `HTTPAdapter` that reads at most `max_body_bytes` of a body and honours the call's `ReadBudget`."""

    def __init__(self, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_body_bytes = max_body_bytes

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Send `request` and read its body within the cap and the call's budget.

        Raises:
            CallOver: the call is over (before sending, or while reading).
            BodyTooLarge: the body (declared, or as read and decoded) is over `max_body_bytes`.
            requests.TooManyRedirects: more than `MAX_REDIRECTS` redirects in this call.
            NotReady: more than `MAX_ACCEPTED` answers 202 in this call.
        """
        budget = _budget.get()
        if budget is not None:
            budget.check()
        kwargs["stream"] = True  # the body is read below, bounded, whatever the caller asked
        response = super().send(request, *args, **kwargs)
        try:
            if budget is not None and response.is_redirect:
                budget.redirects += 1
                if budget.redirects > MAX_REDIRECTS:
                    raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")
            if budget is not None and response.status_code == 202:
                budget.accepted += 1
                if budget.accepted > MAX_ACCEPTED:
                    raise NotReady(f"more than {MAX_ACCEPTED} answers 202")
            body = self._read(response, budget)
        except BaseException:
            response.close()  # drops the connection: nothing more is read from it
            raise
        response._content = body  # pyright: ignore[reportPrivateUsage]  # what requests itself does after reading
        return response

    def _read(self, response: requests.Response, budget: ReadBudget | None) -> bytes:
        limit = self.max_body_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        body = bytearray()
        # urllib3 decodes gzip/deflate at most a chunk at a time, so a compressed bomb is cut at the cap too.
        for chunk in response.iter_content(_CHUNK):
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge(limit)
            if budget is not None:
                budget.check()
        return bytes(body)
