"""A Jira backend over a folder of ticket files, for the embedded default, the demo and tests.

One file per issue (`*.yaml`, `*.yml` or `*.json`), shaped like the Jira REST issue resource::

    key: SVC-1
    fields:
      summary: ...
      description: <ADF dict (v3) or wiki-markup string (v2)>
      status: {name: Open}
      issuetype: {name: Bug}
      labels: [...]
      components: [{name: ...}]
      priority: {name: High}
      assignee: {displayName: ...}      # or null
      reporter: {displayName: ...}
      created: 2026-01-05T09:12:00.000+0000
      updated: ...
      issuelinks: [{type: {name, inward, outward}, outwardIssue: {key, fields: {summary, status}}}]
      comment: {comments: [{id, author: {displayName}, created, body}]}

Every file is validated when the backend is built; a bad one stops the process (`ConfigError`).
Search understands the JQL subset in `local_jql` and refuses anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from servers.common import yamlfile
from servers.common.errors import ConfigError, InvalidInput, NotFound
from servers.jira_read import local_jql
from servers.jira_read.models import RawComment, RawIssue, RawSearchPage

MAX_LIMIT = 100
_KEY_PATTERN = r"^[A-Z][A-Z0-9_]*-[1-9][0-9]*$"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Named(_Loose):
    name: str


class _User(_Loose):
    displayName: str


class _LinkType(_Loose):
    name: str
    inward: str
    outward: str


class _LinkedIssue(_Loose):
    key: str = Field(pattern=_KEY_PATTERN)


class _Link(_Loose):
    type: _LinkType
    inwardIssue: _LinkedIssue | None = None
    outwardIssue: _LinkedIssue | None = None


class _Comment(_Loose):
    id: str
    author: _User | None = None
    created: str | None = None
    body: str | dict[str, Any]


class _CommentPage(_Loose):
    comments: list[_Comment] = []


class _Fields(_Loose):
    summary: str = Field(min_length=1)
    description: str | dict[str, Any] | None = None
    status: _Named
    issuetype: _Named
    labels: list[str] = []
    components: list[_Named] = []
    priority: _Named | None = None
    assignee: _User | None = None
    reporter: _User | None = None
    created: str
    updated: str
    issuelinks: list[_Link] = []
    comment: _CommentPage = _CommentPage()

    @field_validator("created", "updated")
    @classmethod
    def _jira_timestamp(cls, value: str) -> str:
        parse_timestamp(value)
        return value


def parse_timestamp(value: str) -> datetime:
    """Parse Jira's timestamp format, e.g. `2026-01-05T09:12:00.000+0000`.

    Raises:
        ValueError: `value` is not in that format.
    """
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


class TicketFile(_Loose):
    """One ticket file, validated. Unknown extra fields are kept (real Jira exports have many)."""

    key: str = Field(pattern=_KEY_PATTERN)
    fields: _Fields


def load_tickets(directory: Path) -> dict[str, tuple[TicketFile, dict[str, Any]]]:
    """Read and validate every ticket file in `directory`: key -> (validated model, raw fields dict).

    Raises:
        ConfigError: the folder is missing, a file is not valid YAML/JSON or not a ticket (the message names
            the file and the field), or two files hold the same key.
    """
    if not directory.is_dir():
        raise ConfigError(f"Jira ticket folder {directory} does not exist or is not a directory.")
    tickets: dict[str, tuple[TicketFile, dict[str, Any]]] = {}
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yamlfile.safe_load(text)
            ticket = TicketFile.model_validate(data)
        except (OSError, UnicodeDecodeError, ValueError, RecursionError, yaml.YAMLError) as exc:
            raise ConfigError(f"Invalid ticket file {path}: {_first_error(exc)}") from exc
        if ticket.key in tickets:
            raise ConfigError(f"Invalid ticket file {path}: key {ticket.key} is already defined by another file.")
        tickets[ticket.key] = (ticket, data["fields"])
    return tickets


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        return f"field {where}: {err['msg']}"
    if isinstance(exc, yaml.YAMLError):  # a repeated key, nesting too deep, or not YAML: say where
        where, reason = yamlfile.describe(exc)
        return reason if where == "(file)" else f"{where}: {reason}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _search_doc(ticket: TicketFile) -> dict[str, list[str]]:
    f = ticket.fields
    summary = f.summary.casefold()
    description = local_jql.adf_text(f.description).casefold()
    comments = [local_jql.adf_text(c.body).casefold() for c in f.comment.comments]

    def one(value: _Named | _User | None) -> list[str]:
        if value is None:
            return []
        return [(value.name if isinstance(value, _Named) else value.displayName).casefold()]

    return {
        "key": [ticket.key.casefold()],
        "project": [ticket.key.rsplit("-", 1)[0].casefold()],
        "status": one(f.status),
        "issuetype": one(f.issuetype),
        "labels": [label.casefold() for label in f.labels],
        "components": [c.name.casefold() for c in f.components],
        "priority": one(f.priority),
        "assignee": one(f.assignee),
        "reporter": one(f.reporter),
        "summary": [summary],
        "description": [description] if description else [],
        "comment": comments,
        "text": [summary, description, *comments],
    }


def _sort_key(ticket: TicketFile, field: str) -> tuple[str, float]:
    if field == "key":
        project, number = ticket.key.rsplit("-", 1)
        return (project, int(number))
    return ("", parse_timestamp(ticket.fields.created if field == "created" else ticket.fields.updated).timestamp())


class LocalJiraBackend:
    """`JiraBackend` over a folder of ticket files, loaded once at construction.

    Raises (constructor):
        ConfigError: see `load_tickets`.
    """

    def __init__(self, directory: Path) -> None:
        self._tickets = load_tickets(directory)
        self._docs = {key: _search_doc(ticket) for key, (ticket, _) in self._tickets.items()}

    def _ticket(self, key: str) -> tuple[TicketFile, dict[str, Any]]:
        found = self._tickets.get(key.strip().upper())
        if found is None:
            raise NotFound(f"Issue {key} does not exist or is not visible.")
        return found

    async def get_issue(self, key: str) -> RawIssue:
        """The issue `key` with its raw fields (the comments' count only: they are served by `get_comments`).

        Raises:
            NotFound: no ticket file holds `key`.
        """
        ticket, fields = self._ticket(key)
        # as Jira's `comment` field: the count; the comments themselves are served by get_comments
        comment = {"total": len(ticket.fields.comment.comments), "comments": []}
        return RawIssue(
            key=ticket.key, fields={**{k: v for k, v in fields.items() if k != "comment"}, "comment": comment}
        )

    async def get_comments(self, key: str, limit: int) -> tuple[list[RawComment], int]:
        """The most recent `limit` comments of `key`, oldest first, and the total number of comments.

        Raises:
            NotFound: no ticket file holds `key`.
            InvalidInput: `limit` is below 1.
        """
        if limit < 1:
            raise InvalidInput("limit must be at least 1.")
        ticket, _ = self._ticket(key)
        comments = ticket.fields.comment.comments
        raw = [
            RawComment(id=c.id, author=c.author.displayName if c.author else None, created=c.created, body=c.body)
            for c in comments[-limit:]
        ]
        return raw, len(comments)

    async def search(self, jql: str, limit: int, cursor: str | None) -> RawSearchPage:
        """Issues matching `jql` (see `local_jql` for the subset), `limit` per page.

        Without ORDER BY, newest created first. The cursor is opaque and bound to the JQL it came from.

        Raises:
            InvalidInput: malformed or unsupported JQL, a bad `limit`, or a cursor from another query.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}.")
        offset = _decode_cursor(cursor, jql)
        hits = self.find(jql)
        issues = [
            RawIssue(key=key, fields={k: v for k, v in self._tickets[key][1].items() if k != "comment"})
            for key in hits[offset : offset + limit]
        ]
        more = offset + limit < len(hits)
        return RawSearchPage(issues=issues, next_cursor=_encode_cursor(offset + limit, jql) if more else None)

    def find(self, jql: str) -> list[str]:
        """Keys of every ticket matching `jql`, in its ORDER BY order (newest created first without one).

        Raises:
            InvalidInput: malformed JQL or JQL outside the supported subset.
        """
        query = local_jql.parse(jql)
        hits = [ticket for ticket, _ in self._tickets.values() if query.predicate(self._docs[ticket.key])]
        # Stable sorts applied last-key-first give a multi-key ORDER BY; key is the final tie-breaker.
        hits.sort(key=lambda t: _sort_key(t, "key"))
        for field, desc in reversed(query.order or [("created", True)]):
            hits.sort(key=lambda t, f=field: _sort_key(t, f), reverse=desc)
        return [t.key for t in hits]

    async def permissions(self) -> dict[str, bool] | None:
        """Local files carry no credential, so there are no permissions to report."""
        return None


def _jql_digest(jql: str) -> str:
    return hashlib.sha256(jql.encode()).hexdigest()[:16]


def _encode_cursor(offset: int, jql: str) -> str:
    payload = json.dumps({"o": offset, "q": _jql_digest(jql)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None, jql: str) -> int:
    if cursor is None:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset, digest = data["o"], data["q"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("Invalid cursor: pass back the next_cursor of a previous page unchanged.") from exc
    if digest != _jql_digest(jql) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("This cursor belongs to a different query; start again without a cursor.")
    return offset
