"""Behaviour added by wrapping a ChatModel: retries, a fallback chain, a response cache, a timeout.

    model = Fallback([Retrying(primary), Retrying(secondary)])
    model = Cached(model, ResponseCache(path))      # opt-in, for deterministic steps
    model = Redacting(model)                         # outermost: nothing below sees a credential

Each wrapper is itself a ChatModel, so the loop never knows which are in place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, cast

import anyio
import stamina

from agent.ledger import private_dir
from agent.llm.errors import (
    LLMError,
    MalformedResponse,
    ProviderError,
    RateLimited,
    RetryableError,
    SpendRefused,
    without_secrets,
)
from agent.llm.types import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    Message,
    Usage,
    response_from_json,
    response_to_json,
)
from credentials import REMOVED, redact_credentials

WAIT_MAX_S = 20.0
"""The longest wait between two attempts, a provider's Retry-After included."""


SpendGuard = Callable[[Usage], None]
"""Called before a call's next attempt once earlier attempts were billed, with what they were billed (over the
whole call: every retry and every model of a fallback chain before it). Raises SpendRefused when another
attempt's worst case no longer fits in a budget; the call then stops with what it was billed."""

_GUARD: ContextVar[SpendGuard | None] = ContextVar("goresolve_spend_guard", default=None)
_NOTHING_BILLED = Usage()  # frozen
_BILLED_BEFORE: ContextVar[Usage] = ContextVar("goresolve_billed_before", default=_NOTHING_BILLED)
"""What the models a fallback chain tried before the current one were billed for this call."""


@contextmanager
def spend_guard(guard: SpendGuard) -> Generator[None]:
    """Model calls made inside the block (in this task) check `guard` before each attempt that follows a billed one."""
    token = _GUARD.set(guard)
    try:
        yield
    finally:
        _GUARD.reset(token)


def _before_attempt(spent: Usage) -> None:
    """Ask the spend guard, if any, whether another attempt may follow the billed ones (`spent`, this wrapper's own).

    Raises:
        SpendRefused: another attempt's worst case does not fit; its `billed` is `spent`.
    """
    guard = _GUARD.get()
    billed = _BILLED_BEFORE.get() + spent
    if guard is None or not billed.total:
        return
    try:
        guard(billed)
    except SpendRefused as exc:
        exc.billed = spent if spent.total else None
        raise


def chain_names(model: ChatModel) -> list[str]:
    """The names of the models that may answer a call through `model`: each model of a fallback chain, through
    every wrapper around it (Redacting, Cached, Retrying). The call is priced and budgeted at these."""
    models: Sequence[ChatModel] | None = getattr(model, "models", None)
    if models:
        return [name for m in models for name in chain_names(m)]
    inner: ChatModel | None = getattr(model, "inner", None)
    return [model.name] if inner is None else chain_names(inner)


def _backoff(exc: Exception, left_s: float = float("inf")) -> bool | float | dt.timedelta:
    """stamina's hook: retry retryable errors and garbled bodies; a Retry-After overrides the exponential wait.

    A Retry-After longer than WAIT_MAX_S, or than the `left_s` seconds left of the retry deadline, is not waited
    for: the rate limit is raised at once (its message carries the value), and a fallback model, if any, is next.
    """
    if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
        if exc.retry_after_s > min(WAIT_MAX_S, left_s):
            return False
        return exc.retry_after_s
    return isinstance(exc, RetryableError | MalformedResponse)


class Retrying:
    """Retries 429, 5xx, timeouts and garbled bodies with exponential backoff and jitter (stamina),
    honouring a Retry-After that fits in what is left of the deadline.

    Every attempt has its own `timeout_s`; `attempts` bounds the tries, `deadline_s` the total time.
    """

    def __init__(
        self, model: ChatModel, *, attempts: int = 4, timeout_s: float = 60.0, deadline_s: float = 180.0
    ) -> None:
        self.inner = model
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s

    @property
    def name(self) -> str:
        return self.inner.name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Raises the last attempt's LLMError; a RateLimited at once when its Retry-After is too long to wait."""
        deadline = time.monotonic() + self.deadline_s

        def on(exc: Exception) -> bool | float | dt.timedelta:
            return _backoff(exc, deadline - time.monotonic())

        spent = Usage()  # what replies the call could not use were billed: charged with the answer, or the failure
        async for attempt in stamina.retry_context(
            on=on, attempts=self.attempts, timeout=self.deadline_s, wait_initial=0.5, wait_max=WAIT_MAX_S
        ):
            with attempt:
                if attempt.num > 1:
                    _before_attempt(spent)
                try:
                    with anyio.fail_after(self.timeout_s):
                        response = await self.inner.complete(request)
                except TimeoutError as exc:
                    failure = RetryableError(f"{self.name}: no answer within {self.timeout_s:g}s")
                    if spent.total:
                        failure.billed = spent
                    raise failure from exc
                except LLMError as exc:
                    spent += exc.billed or Usage()
                    if spent.total:
                        exc.billed = spent
                    raise
                if spent.total:
                    return dataclasses.replace(response, usage=response.usage + spent)
                return response
        raise RetryableError(f"{self.name}: gave up")  # unreachable: the last attempt re-raises


class Fallback:
    """Tries each model in order; moves on when one fails with a provider error (after its own retries)."""

    def __init__(self, models: Sequence[ChatModel]) -> None:
        if not models:
            raise ValueError("a fallback chain needs at least one model")
        self.models = list(models)

    @property
    def name(self) -> str:
        return self.models[0].name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        last: ProviderError | None = None
        spent = Usage()  # what the models before the one that answers were billed for replies it could not use
        for model in self.models:
            try:
                if last is not None:
                    _before_attempt(spent)
                token = _BILLED_BEFORE.set(_BILLED_BEFORE.get() + spent)
                try:
                    response = await model.complete(request)
                finally:
                    _BILLED_BEFORE.reset(token)
            except SpendRefused as exc:
                billed = spent + (exc.billed or Usage())
                exc.billed = billed if billed.total else None
                raise
            except ProviderError as exc:
                spent += exc.billed or Usage()
                last = exc
                continue
            return dataclasses.replace(response, usage=response.usage + spent) if spent.total else response
        assert last is not None
        if spent.total:
            last.billed = spent
        raise last


class ResponseCache:
    """SQLite, keyed by sha256(model, messages, tools, params). Only what callers choose to cache goes in."""

    def __init__(self, path: Path) -> None:
        private_dir(path.parent)  # answers hold code and ticket text: this user's alone, as the run records are
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT NOT NULL)")

    def get(self, key: str) -> ChatResponse | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else response_from_json(json.loads(row[0]))

    def put(self, key: str, response: ChatResponse) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, body) VALUES (?, ?)",
                (key, json.dumps(_without_secrets(response_to_json(response)))),
            )

    def close(self) -> None:
        self._db.close()


def _without_secrets(value: Any) -> Any:
    """`value` (decoded JSON) with every configured key removed from its strings (`without_secrets`)."""
    if isinstance(value, str):
        return without_secrets(value)
    if isinstance(value, list | tuple):
        return [_without_secrets(v) for v in cast("list[Any]", value)]
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in cast("dict[str, Any]", value).items()}
    return value


class Cached:
    """A cache hit costs nothing: its usage is reported as zero and `cached=True`."""

    def __init__(self, model: ChatModel, cache: ResponseCache) -> None:
        self.inner = model
        self.cache = cache

    @property
    def name(self) -> str:
        return self.inner.name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        key = request.fingerprint(self.inner.name)
        hit = self.cache.get(key)
        if hit is not None:
            return ChatResponse(hit.message, Usage(), hit.model, hit.finish_reason, cached=True, extra=hit.extra)
        response = await self.inner.complete(request)
        self.cache.put(key, response)
        return response


@functools.lru_cache(maxsize=4096)
def _redact(content: str) -> tuple[str, int]:
    """One message's text redacted, and how many credentials went. Cached: every request of a run sends the
    whole history again, and the catalogue costs about 45 ms per 100 KB (bench/redaction_cost.py)."""
    clean = redact_credentials(content)
    return clean, clean.count(REMOVED) - content.count(REMOVED)


def redact_text(text: str) -> str:
    """`text` as a model would be sent it (the same cache as the requests'), and without the configured API keys
    (`agent.llm.errors.remember_secret`): what the run saves and publishes goes through here."""
    return without_secrets(_redact(text)[0])


def redacted(request: ChatRequest) -> tuple[ChatRequest, int]:
    """`request` with every credential-shaped string in its messages replaced by `[credential removed: KIND]`,
    and how many were removed (the same request when none was)."""
    messages: list[Message] = []
    removed = 0
    for message in request.messages:
        content, count = _redact(message.content)
        removed += count
        messages.append(message if content == message.content else dataclasses.replace(message, content=content))
    if not removed:
        return request, 0
    return dataclasses.replace(request, messages=tuple(messages)), removed


class Redacting:
    """Removes credentials from everything sent to the model: the tickets, the code it reads, test output.

    The model's provider is a third party, and no fix needs a key's value. The agent keeps the real text
    (its file overlay edits what code-search returned, not what the model saw), so a redacted line is
    never written back; an edit that would write the marker is refused (`agent.overlay`). A response
    says how many were removed in `extra["credentials_removed"]`. Tool-call arguments, the model's own
    output, are sent back as they came.
    """

    def __init__(self, model: ChatModel) -> None:
        self.inner = model

    @property
    def name(self) -> str:
        return self.inner.name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        clean, removed = redacted(request)
        response = await self.inner.complete(clean)
        if not removed:
            return response
        return dataclasses.replace(response, extra={**response.extra, "credentials_removed": removed})


__all__ = [
    "Cached",
    "Fallback",
    "LLMError",
    "Redacting",
    "ResponseCache",
    "Retrying",
    "SpendGuard",
    "chain_names",
    "redact_text",
    "redacted",
    "spend_guard",
]
