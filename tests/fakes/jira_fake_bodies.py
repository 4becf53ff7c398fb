"""The JSON bodies the fake Jira serves, shaped like Jira's REST API (v3: ADF, v2: strings)."""

from __future__ import annotations

import base64
from typing import Any

from servers.jira_read import local_jql

FIELD_NAMES = ["summary", "description", "status", "issuetype", "labels", "components", "updated", "created"]


def rfc3339(jira_time: str) -> str:
    """`...+0000` -> `...+00:00`: the description types comment times as RFC 3339 date-time, although
    real Jira sends `+0000` (as the description's own examples show); consumers must accept both."""
    return f"{jira_time[:-2]}:{jira_time[-2:]}" if jira_time[-5] in "+-" else jira_time


def adf(text: str) -> dict[str, Any]:
    paras = [p for p in text.split("\n\n") if p.strip()]
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paras],
    }


def rich(value: Any, v: str) -> Any:
    """Rich text as the API version returns it: ADF for v3, a string for v2."""
    if value is None:
        return None
    if v == "3":
        return value if isinstance(value, dict) else adf(str(value))
    return value if isinstance(value, str) else local_jql.adf_text(value)


def user(display_name: str) -> dict[str, Any]:
    account = base64.b32encode(display_name.encode()).decode().lower().rstrip("=")[:24]
    return {"accountId": account, "displayName": display_name, "active": True}


def server_info(base_url: str, cloud: bool) -> dict[str, Any]:
    return {
        "baseUrl": base_url,
        "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.4",
        "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 4],
        "deploymentType": "Cloud" if cloud else "Server",
        "buildNumber": 100240 if cloud else 9120004,
        "serverTitle": "Fake Jira",
    }


def fields() -> list[dict[str, Any]]:
    return [
        {"id": n, "key": n, "name": n.title(), "custom": False, "clauseNames": [n], "schema": {"type": "any"}}
        for n in FIELD_NAMES
    ]


def issue(base_url: str, v: str, key: str, issue_id: str, raw: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    """An IssueBean from a ticket file's fields, keeping only `wanted` fields unless it asks for all."""
    out: dict[str, Any] = {k: val for k, val in raw.items() if k != "comment"}
    out["description"] = rich(raw.get("description"), v)
    for person in ("assignee", "reporter"):
        if out.get(person):
            out[person] = user(out[person]["displayName"])
    out["project"] = {"key": key.rsplit("-", 1)[0], "name": key.rsplit("-", 1)[0]}
    comments = (raw.get("comment") or {}).get("comments", [])
    # the issue's `comment` field is a PageOfComments, as Jira sends it
    out["comment"] = {
        "comments": [comment(base_url, v, key, c) for c in comments],
        "maxResults": len(comments),
        "total": len(comments),
        "startAt": 0,
    }
    if wanted and "*all" not in wanted and "*navigable" not in wanted:
        out = {k: val for k, val in out.items() if k in wanted}
    return {"id": issue_id, "self": f"{base_url}/rest/api/{v}/issue/{issue_id}", "key": key, "fields": out}


def comment(base_url: str, v: str, key: str, c: dict[str, Any]) -> dict[str, Any]:
    return {
        "self": f"{base_url}/rest/api/{v}/issue/{key}/comment/{c['id']}",
        "id": c["id"],
        "author": user(c["author"]["displayName"]),
        "body": rich(c["body"], v),
        "created": rfc3339(c["created"]),
        "updated": rfc3339(c["created"]),
    }


def permissions(keys: list[str], granted: frozenset[str]) -> dict[str, Any]:
    return {
        "permissions": {
            k: {"id": str(i), "key": k, "name": k.title(), "type": "PROJECT", "havePermission": k in granted}
            for i, k in enumerate(keys, start=10)
        }
    }
