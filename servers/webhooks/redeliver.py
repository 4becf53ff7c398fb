"""Replay failed GitHub deliveries through the hook deliveries API (GitHub never redelivers by itself).

    GET  /repos/{owner}/{repo}/hooks/{hook_id}/deliveries?status=failure&per_page=100[&cursor=...]
    POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts      -> 202

Deliveries come newest first; paging stops at the first one older than `since`, at a cursor seen before, or
after `MAX_PAGES` pages (an answer that pages for ever is refused, not followed). A GUID is
redelivered once, and not at all when any of its attempts succeeded (a later redelivery may have).
The gateway dedupes by GUID too, so running this twice is harmless. A redelivery is the same GUID
with the same bytes, so the gateway's dedupe by body digest (against replays under a new GUID) lets
it through whenever the first attempt never reached the queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, TypeAdapter, ValidationError

from servers.common.errors import InvalidInput, UpstreamFailure

MAX_PAGES = 300  # 30,000 deliveries: more failures than 30 days of a busy hook hold
_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str) -> timedelta:
    """`3d`, `12h`, `30m`, `90s` as a duration.

    Raises:
        InvalidInput: anything else, or more than 30 days (GitHub keeps deliveries for 30 days).
    """
    match = _SINCE.match(text.strip())
    if not match:
        raise InvalidInput(f"--since must look like 3d, 12h, 30m or 90s, not {text[:20]!r}")
    span = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if span > timedelta(days=30):
        raise InvalidInput("--since is at most 30d: GitHub keeps deliveries for 30 days")
    return span


class _Delivery(BaseModel):
    """The fields of a listed delivery this reads (GitHub's hook-delivery item)."""

    model_config = ConfigDict(extra="ignore")

    id: int
    guid: str
    delivered_at: datetime
    status_code: int | None = None

    @property
    def ok(self) -> bool:
        return 200 <= (self.status_code or 0) < 400  # GitHub counts 200-399 as success


_PAGE = TypeAdapter(list[_Delivery])


@dataclass
class RedeliveryReport:
    redelivered: list[str] = field(default_factory=list)  # GUIDs
    skipped: list[str] = field(default_factory=list)  # GUIDs with a successful attempt
    failed: list[str] = field(default_factory=list)  # GUIDs GitHub would not redeliver


def _next_cursor(response: httpx.Response) -> str | None:
    nxt = response.links.get("next", {}).get("url")
    if not nxt:
        return None
    return httpx.URL(nxt).params.get("cursor")


def redeliver_failed(
    api_url: str, token: SecretStr, repo: str, hook_id: int, since: timedelta, *, client: httpx.Client | None = None
) -> RedeliveryReport:
    """Ask GitHub to redeliver every delivery of `hook_id` that failed within `since`.

    Raises:
        UpstreamFailure: GitHub refused the listing (bad token, no such hook), did not answer, answered
            something that is not a list of deliveries, or paged on past `MAX_PAGES` or back to a page it gave.
    """
    owner, _, name = repo.partition("/")
    base = f"{api_url.rstrip('/')}/repos/{owner}/{name}/hooks/{hook_id}/deliveries"
    headers = {
        "Authorization": f"Bearer {token.get_secret_value()}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    cutoff = datetime.now(UTC) - since
    http = client or httpx.Client(timeout=30.0)
    report = RedeliveryReport()
    try:
        failed: dict[str, int] = {}  # guid -> newest failed delivery id
        succeeded: set[str] = set()
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params: dict[str, str | int] = {"per_page": 100}
            if cursor:
                params["cursor"] = cursor
            response = _get(http, base, headers, params)
            page = _deliveries(response)
            older = False
            for delivery in page:
                when = delivery.delivered_at
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                if when < cutoff:
                    older = True
                    continue
                if delivery.ok:
                    succeeded.add(delivery.guid)
                else:
                    failed.setdefault(delivery.guid, delivery.id)
            cursor = _next_cursor(response)
            if older or not cursor or not page:
                break
            if cursor in seen:
                raise UpstreamFailure("GitHub's deliveries listing pointed back to a page it gave before")
            seen.add(cursor)
        else:
            raise UpstreamFailure(f"GitHub's deliveries listing went on past {MAX_PAGES} pages; try a shorter --since")
        for guid, delivery_id in failed.items():
            if guid in succeeded:
                report.skipped.append(guid)
                continue
            answer = _post(http, f"{base}/{delivery_id}/attempts", headers)
            (report.redelivered if answer.status_code == 202 else report.failed).append(guid)
    finally:
        if client is None:
            http.close()
    return report


def _get(http: httpx.Client, url: str, headers: dict[str, str], params: dict[str, str | int]) -> httpx.Response:
    try:
        response = http.get(url, headers=headers, params=params)
    except httpx.HTTPError as exc:
        raise UpstreamFailure("GitHub did not answer the deliveries listing", detail=str(exc)) from exc
    if response.status_code != 200:
        raise UpstreamFailure(
            f"GitHub answered {response.status_code} to the deliveries listing (token scope, hook id?)",
            status=response.status_code,
            detail=response.text[:2000],
        )
    return response


def _deliveries(response: httpx.Response) -> list[_Delivery]:
    """The page's deliveries.

    Raises:
        UpstreamFailure: the body is not a JSON list of deliveries (an HTML login page, a wrong shape).
    """
    try:
        return _PAGE.validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UpstreamFailure(
            f"GitHub's deliveries listing is not a list of deliveries ({where or 'body'}: {first['msg']})"
        ) from None


def _post(http: httpx.Client, url: str, headers: dict[str, str]) -> httpx.Response:
    try:
        return http.post(url, headers=headers)
    except httpx.HTTPError as exc:
        raise UpstreamFailure("GitHub did not answer a redelivery request", detail=str(exc)) from exc
