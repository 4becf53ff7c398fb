"""Every GitHub request of github-pr goes through `Calls`: bounded retries, one error mapping.

PyGithub's default retry (`GithubRetry`) sleeps as long as a `Retry-After` header asks, without a
ceiling, so the client is built with `retry=None` and this module decides instead:

- 403/429 that GitHub marks as a rate limit: wait `Retry-After` (or until `x-ratelimit-reset`) when
  that is at most `max_wait_s`, otherwise fail at once with `RateLimited(retry_after)`;
- 5xx, timeouts and dropped connections: exponential backoff, only for requests safe to repeat
  (a retried comment could be posted twice, so comments are not retried on 5xx);
- at most `max_retries` retries, and never past `deadline_s` of wall-clock time per request: the
  request's `ReadBudget` (see `bounded_http`) also stops a response being read, a 202 being repeated,
  or a page walk, once the deadline has passed.

Errors leave as `servers.common.errors`: 404 -> NotFound, 409/422 -> Conflict (the callers use it for
the "already exists" paths), rate limits -> RateLimited, everything else -> UpstreamFailure. GitHub's
own response body goes to `detail` (logs), never into the message. A body over the size cap, and an
answer PyGithub cannot use (a redirect to another host or in a cycle, a URL on another host: PyGithub
raises RuntimeError, RecursionError or AssertionError for these), are UpstreamFailures too, never retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from github import GithubException, RateLimitExceededException

from servers.common.bounded_http import BodyTooLarge, CallOver, read_budget
from servers.common.errors import Conflict, NotFound, RateLimited, UpstreamFailure

from .bounded_http import NotReady

T = TypeVar("T")

_RATE_MESSAGES = ("rate limit", "secondary rate", "abuse")
UNUSABLE = "GitHub sent an unusable response"
# What PyGithub raises for an answer it cannot follow: a 301 to another host or scheme (RuntimeError), a
# redirect cycle (RecursionError, or requests' TooManyRedirects from bounded_http), a URL in a body that
# points at another host (AssertionError from its URL check); and a GET answered 202 again and again.
_UNUSABLE_ERRORS = (RuntimeError, RecursionError, AssertionError, requests.TooManyRedirects, NotReady)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    max_wait_s: float = 30.0
    deadline_s: float = 120.0
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)


def _header(exc: GithubException, name: str) -> str | None:
    headers: dict[str, Any] = {k.lower(): v for k, v in (exc.headers or {}).items()}
    value = headers.get(name)
    return str(value) if value is not None else None


def _message(exc: GithubException) -> str:
    data: Any = exc.data
    if isinstance(data, dict):
        return str(data.get("message", ""))  # pyright: ignore[reportUnknownArgumentType]
    return ""


def rate_limit_wait(exc: GithubException, now: float) -> float | None:
    """Seconds GitHub asks us to wait, when `exc` is a rate limit; None when it is not one."""
    is_rate = isinstance(exc, RateLimitExceededException) or exc.status == 429
    if exc.status == 403 and not is_rate:
        is_rate = any(m in _message(exc).lower() for m in _RATE_MESSAGES) or _header(exc, "retry-after") is not None
    if not is_rate:
        return None
    retry_after = _header(exc, "retry-after")
    if retry_after is not None and retry_after.strip().isdigit():
        return float(retry_after)
    if _header(exc, "x-ratelimit-remaining") == "0":
        reset = _header(exc, "x-ratelimit-reset")
        if reset is not None and reset.isdigit():
            return max(0.0, float(reset) - now)
    return 60.0  # GitHub's documented minimum for a secondary limit without a header


class Calls:
    """Run one GitHub request with the retry policy; raise only `servers.common.errors`."""

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()

    def __call__(self, what: str, fn: Callable[[], T], *, retry_5xx: bool = True) -> T:
        """Call `fn` (one PyGithub request) and return its result.

        Raises:
            NotFound: 404.
            Conflict: 409 or 422 (the message carries GitHub's short reason).
            RateLimited: a rate limit whose wait exceeds `max_wait_s`, or persisting past the retries.
            UpstreamFailure: 401, other 403s, 5xx or network failures after the retries; a body over the
                cap; an answer PyGithub cannot use; the deadline passed.
        """
        p = self.policy
        started = p.clock()
        attempt = 0
        with read_budget(p.deadline_s):
            while True:
                try:
                    return fn()
                except GithubException as exc:
                    wait, error = self._classify(what, exc, attempt, retry_5xx)
                except BodyTooLarge as exc:
                    raise UpstreamFailure(
                        f"GitHub sent a response larger than {exc.limit} bytes ({what}; the limit is setting "
                        "GORESOLVE_GITHUB_PR_MAX_RESPONSE_BYTES)",
                        detail=f"{what}: body over {exc.limit} bytes",
                    ) from None
                except CallOver:
                    raise UpstreamFailure(f"GitHub did not answer in time ({what})", detail="deadline") from None
                except (requests.Timeout, requests.ConnectionError) as exc:
                    wait = p.backoff_s * 2**attempt if retry_5xx else None
                    error = UpstreamFailure(f"GitHub did not answer ({what})", detail=repr(exc))
                except _UNUSABLE_ERRORS as exc:
                    raise UpstreamFailure(UNUSABLE, detail=f"{what}: {type(exc).__name__}: {str(exc)[:300]}") from None
                if wait is None or attempt >= p.max_retries or p.clock() - started + wait > p.deadline_s:
                    raise error
                p.sleep(wait)
                attempt += 1

    def _classify(
        self, what: str, exc: GithubException, attempt: int, retry_5xx: bool
    ) -> tuple[float | None, Exception]:
        detail = f"{exc.status} {str(exc.data)[:2000]}"
        limited = rate_limit_wait(exc, time.time())
        if limited is not None:
            error = RateLimited(f"GitHub rate limit ({what}); retry after {limited:.0f}s", retry_after=limited)
            error.detail = detail
            return (limited if limited <= self.policy.max_wait_s else None), error
        status = exc.status
        if status == 404:
            return None, NotFound(f"{what}: not found, or not visible to this token", detail=detail)
        if status in (409, 422):
            reason = _message(exc)[:160] or "unprocessable"
            return None, Conflict(f"{what}: {reason}", detail=detail)
        if status == 401:
            return None, UpstreamFailure("GitHub rejected the credential", status=401, detail=detail)
        if status == 403:
            message = f"GitHub refused {what}: the token lacks permission"
            return None, UpstreamFailure(message, status=403, detail=detail)
        if status >= 500 and retry_5xx:
            wait = min(self.policy.backoff_s * 2**attempt, self.policy.max_wait_s)
            return wait, UpstreamFailure(f"GitHub failed ({status}) on {what}", status=status, detail=detail)
        return None, UpstreamFailure(f"GitHub answered {status} on {what}", status=status, detail=detail)
