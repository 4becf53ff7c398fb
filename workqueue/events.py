"""The events the webhook gateway enqueues: plain JSON, one schema (`event.schema.json`, published).

    Event
     ├── id          dedup key: "<source>:<hook id>:<delivery GUID>" (a replay keeps it)
     ├── trace_id    born at the gateway; every consumer continues it
     ├── topic       which queue: "code-index" (pushes) or "tickets" (issues, comments, Jira)
     └── data        one of PushData | IssueData | CommentData | JiraIssueData (field `kind`)

Consumers read only these fields, never GitHub's or Jira's raw payload, so the wire shapes of the
senders can change without touching a consumer. `python -m workqueue.events` rewrites the schema file.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_FILE = Path(__file__).with_name("event.schema.json")
Topic = Literal["code-index", "tickets"]
TOPICS: tuple[Topic, ...] = ("code-index", "tickets")
_SHA = r"^[0-9a-f]{40}$"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PushData(_Data):
    """A push to a branch the gateway follows. `after` is the new tip; changed files come from git."""

    kind: Literal["push"] = "push"
    ref: str = Field(description="Full ref name, e.g. refs/heads/main.")
    before: str = Field(pattern=_SHA)
    after: str = Field(pattern=_SHA)
    forced: bool = False
    commits: int = Field(ge=0, description="Commits listed in the payload (GitHub caps the list at 2,048).")
    truncated: bool = Field(description="The payload's commit or file lists were capped: take changes from git.")
    clone_url: str


class IssueData(_Data):
    """A GitHub issue opened, labeled or reopened."""

    kind: Literal["issue"] = "issue"
    action: Literal["opened", "labeled", "reopened"]
    number: int = Field(ge=1)
    title: str
    labels: list[str] = Field(default_factory=list)
    url: str
    author: str


class CommentData(_Data):
    """A comment on a GitHub issue carrying a configured command, e.g. `/goresolve retry`."""

    kind: Literal["comment"] = "comment"
    number: int = Field(ge=1)
    command: str
    author: str
    url: str


class JiraIssueData(_Data):
    """A Jira issue created or updated."""

    kind: Literal["jira_issue"] = "jira_issue"
    action: Literal["created", "updated"]
    key: str = Field(pattern=r"^[A-Z][A-Z0-9_]*-[0-9]+$")
    project: str
    summary: str
    url: str


EventData = Annotated[PushData | IssueData | CommentData | JiraIssueData, Field(discriminator="kind")]


class Event(BaseModel):
    """One accepted delivery, as it travels through the queue."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="goresolve webhook event")

    version: Literal[1] = 1
    id: str = Field(min_length=3, max_length=300, description="Dedup key: <source>:<hook id>:<delivery GUID>.")
    source: Literal["github", "jira"]
    delivery: str = Field(min_length=1, max_length=200)
    hook_id: str = Field(max_length=100)
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    received_at: datetime
    repo: str | None = Field(default=None, description="owner/name for GitHub events.")
    data: EventData

    @property
    def topic(self) -> Topic:
        return "code-index" if self.data.kind == "push" else "tickets"

    def dumps(self) -> str:
        return self.model_dump_json()

    @classmethod
    def loads(cls, raw: str | bytes) -> Event:
        """Raises: pydantic.ValidationError when `raw` is not an event of this schema."""
        return cls.model_validate_json(raw)


def json_schema() -> str:
    """The published schema, as committed in event.schema.json."""
    schema = Event.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "urn:goresolve:webhook-event:1"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_FILE.write_text(json_schema(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE.name}")
    sys.exit(0)
