"""What every HTTP provider shares: its constructor, and one POST with the provider error mapping."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx
from pydantic import SecretStr

from agent.llm.errors import MalformedResponse, ProviderError, RateLimited, RetryableError


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


async def post_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any], timeout_s: float, who: str
) -> dict[str, Any]:
    """POST `body` and return the decoded JSON object.

    Raises:
        RateLimited: 429 (with Retry-After when given).
        RetryableError: 5xx, timeout, connection failure.
        ProviderError: any other non-2xx (the provider's message, shortened).
        MalformedResponse: a 2xx whose body is not a JSON object.
    """
    try:
        resp = await client.post(url, headers=headers, json=body, timeout=timeout_s)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{who}: timed out after {timeout_s:g}s") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{who}: connection failed ({type(exc).__name__})", unreachable=True) from exc
    if resp.status_code == 429:
        raise RateLimited(f"{who}: rate limited (429)", retry_after_seconds(resp.headers.get("retry-after")))
    if resp.status_code >= 500:
        raise RetryableError(f"{who}: server error {resp.status_code}", status=resp.status_code)
    if resp.status_code >= 400:
        raise ProviderError(f"{who}: HTTP {resp.status_code}: {_short_error(resp)}", status=resp.status_code)
    try:
        data = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"{who}: response is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedResponse(f"{who}: response is not a JSON object")
    return data  # pyright: ignore[reportUnknownVariableType]


def _short_error(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return resp.text[:200]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])[:200]
    return json.dumps(data)[:200]


class HttpChatModel:
    """The state of a chat model behind one HTTP endpoint. `client` is injected so tests can point it at a fake."""

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: SecretStr | None = None,
        *,
        timeout_s: float = 60.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout_s = timeout_s
        self._client = client or httpx.AsyncClient()

    @property
    def name(self) -> str:
        return self.model
