"""What every HTTP provider shares: its constructor, and one POST with the provider error mapping."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from agent.llm.errors import (
    MalformedResponse,
    ProviderError,
    RateLimited,
    RetryableError,
    remember_secret,
    without_secrets,
)


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


MAX_BODY_BYTES = 8 * 1024 * 1024
"""The most of a provider's answer that is read: a completion is bounded by the request's max_tokens, so a body
this size is not one (the rest is never downloaded)."""

MAX_DEPTH = 64
"""The deepest nesting accepted in a provider's answer. The wire formats nest a handful of levels (a tool call's
input a few more); a deeper body is refused here rather than breaking whatever walks it later."""


async def post_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any], timeout_s: float, who: str
) -> dict[str, Any]:
    """POST `body` and return the decoded JSON object.

    Raises:
        RateLimited: 429 (with Retry-After when given).
        RetryableError: 5xx, timeout, connection failure.
        ProviderError: any other non-2xx (the provider's message, shortened); a redirect (3xx), never followed;
            any other failure of the request.
        MalformedResponse: a 2xx whose body is not a JSON object: not JSON, larger than MAX_BODY_BYTES, nested
            deeper than MAX_DEPTH, or another top-level value; a body that does not decode as its
            Content-Encoding says.
    """
    try:
        async with client.stream("POST", url, headers=headers, json=body, timeout=timeout_s) as resp:
            if resp.status_code == 429:
                wait = retry_after_seconds(resp.headers.get("retry-after"))
                said = "" if wait is None else f": Retry-After {wait:.0f} s"
                raise RateLimited(f"{who}: rate-limited by the provider (429){said}", wait)
            if resp.status_code >= 500:
                raise RetryableError(f"{who}: server error {resp.status_code}", status=resp.status_code)
            if 300 <= resp.status_code < 400:  # never followed: the key would go wherever it points
                where = _host(resp.headers.get("location", ""))
                raise ProviderError(
                    f"{who}: HTTP {resp.status_code}: redirected{where}, not followed: set the base URL to where "
                    "the provider answers",
                    status=resp.status_code,
                )
            raw = await _read_capped(resp)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{who}: timed out after {timeout_s:g}s") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{who}: connection failed ({type(exc).__name__})", unreachable=True) from exc
    except httpx.DecodingError as exc:  # a body its Content-Encoding does not describe
        raise MalformedResponse(f"{who}: the response body does not decode as its Content-Encoding says") from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"{who}: the request failed ({type(exc).__name__})") from exc
    if resp.status_code >= 400:
        message = "response too large" if raw is None else _short_error(raw, _header_secrets(headers))
        raise ProviderError(f"{who}: HTTP {resp.status_code}: {message}", status=resp.status_code)
    if raw is None:
        raise MalformedResponse(f"{who}: response larger than {MAX_BODY_BYTES} bytes")
    data = decode_object(raw)
    if isinstance(data, str):
        raise MalformedResponse(f"{who}: {data}")
    return data


def _host(location: str) -> str:
    """ " to HOST" for a redirect's Location (its host alone: a query may carry anything), or ""."""
    host = urlsplit(location.strip()).hostname if location.strip() else None
    return f" to {host[:100]}" if host else ""


async def _read_capped(resp: httpx.Response) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY_BYTES (stops reading there)."""
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def decode_object(raw: bytes) -> dict[str, Any] | str:
    """`raw` as a JSON object, or why it is not one (a short fixed phrase, nothing of the body's text)."""
    try:
        data = json.loads(raw)
    except RecursionError:
        return f"response nested deeper than {MAX_DEPTH} levels"
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
        return "response is not JSON"
    if not isinstance(data, dict):
        return "response is not a JSON object"
    if _deeper_than(data, MAX_DEPTH):
        return f"response nested deeper than {MAX_DEPTH} levels"
    return cast("dict[str, Any]", data)


def _deeper_than(value: object, limit: int) -> bool:
    """Whether `value` nests more than `limit` containers deep (iteratively: no recursion to run out of)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = cast("dict[str, object]", node).values() if isinstance(node, dict) else cast("list[object]", node)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


_SECRET_HEADERS = ("authorization", "key", "token", "secret")


def _header_secrets(headers: dict[str, str]) -> tuple[str, ...]:
    """The credentials a request sent in `headers`: the value of each authorization, key or token header, and the
    credential of an `authorization: Scheme credential`."""
    out: list[str] = []
    for name, value in headers.items():
        if any(word in name.lower() for word in _SECRET_HEADERS):
            out.append(value)
            out.extend(value.split(None, 1)[1:])
    return tuple(out)


def _short_error(raw: bytes, secrets: tuple[str, ...] = ()) -> str:
    """The provider's error message, without the credentials it may quote (`secrets`, and every configured key),
    then cut to 200 characters (after: a cut must not leave part of a key behind)."""
    data = decode_object(raw)
    if isinstance(data, str):
        text = raw[:4096].decode(errors="replace")
    else:
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):  # pyright: ignore[reportUnknownMemberType]
            text = str(err["message"])  # pyright: ignore[reportUnknownArgumentType]
        else:
            text = json.dumps(data)
    return without_secrets(text, secrets)[:200]


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
        remember_secret(api_key.get_secret_value() if api_key is not None else None)
        self.timeout_s = timeout_s
        self._client = client or httpx.AsyncClient()

    @property
    def name(self) -> str:
        return self.model
