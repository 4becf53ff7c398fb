"""What jira-read returns, and the seam its backends implement.

Backends (`local.py` for a folder of ticket files, `cloud.py` for Jira through the `jira` package)
return *raw* records: text fields still in ADF (dict) or wiki markup (str). The server turns them
into these output models, converting markup to Markdown, stripping invisible characters and
truncating, so every backend gets the same hygiene.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from servers.common.untrusted import UntrustedText


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class IssueLink(_Out):
    """A link to another issue the caller may read (links into other projects are left out)."""

    type: str = Field(description="Link relation as seen from this issue, e.g. 'blocks', 'is blocked by'.")
    key: str
    summary: UntrustedText | None = None
    status: str | None = None


class Issue(_Out):
    key: str
    summary: UntrustedText
    description: UntrustedText
    status: str | None
    type: str | None
    labels: list[str]
    components: list[str]
    priority: str | None
    assignee: str | None
    reporter: str | None
    created: str | None
    updated: str | None
    links: list[IssueLink]
    url: str | None = None
    comment_count: int | None = Field(
        default=None, description="How many comments the issue has (read them with get_comments); null: unknown."
    )


class Comment(_Out):
    id: str
    author: str | None
    created: str | None
    body: UntrustedText


class Comments(_Out):
    key: str
    comments: list[Comment]
    total: int


class IssueSummary(_Out):
    key: str
    summary: UntrustedText
    status: str | None
    type: str | None
    updated: str | None


class SearchPage(_Out):
    issues: list[IssueSummary]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page; null on the last page.")
    jql: str = Field(description="The JQL actually run, with the server's project restriction.")


# --- raw records, as backends return them ---------------------------------------------------------


class RawIssue(BaseModel):
    """A Jira issue's fields as the REST API returns them (v3 ADF or v2 wiki text)."""

    key: str
    fields: dict[str, Any]
    self_url: str | None = None


class RawComment(BaseModel):
    id: str
    author: str | None
    created: str | None
    body: Any  # ADF dict (v3) or wiki markup str (v2)


class RawSearchPage(BaseModel):
    issues: list[RawIssue]
    next_cursor: str | None


class JiraBackend(Protocol):
    """Read-only access to Jira. Every method has a deadline and raises only `servers.common.errors`.

    Raises (all methods):
        NotFound: the issue does not exist or the credential cannot see it.
        InvalidInput: Jira rejected the JQL (400).
        RateLimited: 429 persisted past the bounded retries.
        UpstreamFailure: 401/403, 5xx, timeout, malformed JSON.
    """

    async def get_issue(self, key: str) -> RawIssue: ...

    async def get_comments(self, key: str, limit: int) -> tuple[list[RawComment], int]:
        """The newest `limit` comments, oldest first, and the issue's total comment count."""
        ...

    async def search(self, jql: str, limit: int, cursor: str | None) -> RawSearchPage: ...

    async def permissions(self) -> dict[str, bool] | None:
        """The credential's permissions where Jira exposes them (mypermissions), else None."""
        ...
