"""Bounds on what one upstream answer may cost a `requests` client: body size and the call's time.

The `jira` package and PyGithub read every body whole, and a worker thread abandoned at a tool call's
deadline goes on reading. `BoundedAdapter`, mounted on the client's `requests` session:

- streams every answer; a `Content-Length` over the cap is not read, and a body that grows past the
  cap once decoded (gzip/deflate) is cut there (`BodyTooLarge`);
- checks the call's `ReadBudget` before sending and after every chunk it reads: a budget travels with
  the call in a context variable (worker threads started by anyio inherit it), and once the call is
  over (its deadline passed, or it was abandoned) the request is not sent, or the connection is closed
  mid-body (`CallOver`).

In each case the connection is closed, so nothing more is read from it. Budgets nest: a budget opened
inside another is over when either is. Subclasses add their own checks (`check_request`, `check_response`).
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

_CHUNK = 64 * 1024


class BodyTooLarge(requests.exceptions.RequestException):
    """A response body (as decoded) over the cap. The connection was closed; the body is not kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response body over {limit} bytes")
        self.limit = limit


class CallOver(requests.exceptions.RequestException):
    """The call a request belongs to is over (deadline passed, or abandoned): nothing more is sent or read."""


class ReadBudget:
    """What one call may still spend: a monotonic deadline, a cancel flag, counters for subclasses' limits; and
    the enclosing call's budget."""

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


_budget: ContextVar[ReadBudget | None] = ContextVar("read_budget", default=None)


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

    def __init__(self, *, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_body_bytes = max_body_bytes

    def check_request(self, request: requests.PreparedRequest) -> None:
        """A subclass's refusal of `request` before it is sent (nothing by default)."""

    def check_response(self, response: requests.Response, budget: ReadBudget | None) -> None:
        """A subclass's refusal of `response` before its body is read (nothing by default)."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Send `request` and read its body within the cap and the call's budget.

        Raises:
            CallOver: the call is over (before sending, or while reading).
            BodyTooLarge: the body (declared, or as read and decoded) is over `max_body_bytes`.
            Whatever `check_request` or `check_response` raise.
        """
        self.check_request(request)
        budget = _budget.get()
        if budget is not None:
            budget.check()
        kwargs["stream"] = True  # the body is read below, bounded, whatever the caller asked
        response = super().send(request, *args, **kwargs)
        try:
            self.check_response(response, budget)
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
