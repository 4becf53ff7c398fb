"""What github-pr returns, what its backends receive, and the seam they implement.

The server validates and polices every request (`service.py`), then hands a backend a `Change`:
a fully decided description of the commit and pull request to create or update. Backends do no
policy of their own; they only talk to a code host (a bare git repository on disk, or GitHub).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from servers.common.untrusted import UntrustedText

# A Jira key (SVC-12) or a GitHub issue number (#12 or 12).
TICKET_PATTERN = r"^(?:[A-Z][A-Z0-9_]{0,49}-[1-9][0-9]{0,9}|#?[1-9][0-9]{0,9})$"
# GitHub logins: alphanumerics and inner hyphens, at most 39 characters (no look-ahead: JSON Schema
# validators in clients use the ECMA/Rust regex subset).
LOGIN_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$"
TEAM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
# No C0 or C1 control, DEL, or bidirectional control (`servers.common.diffs.BIDI_CONTROL`), no comma.
LABEL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069,]{1,50}$"
TRAILER_TICKET = "Goresolve-Ticket"
TRAILER_BASE = "Goresolve-Base"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PullRequestRef(_Out):
    """The result of `open_pull_request`."""

    number: int
    url: str
    branch: str
    head_sha: str = Field(description="The commit the branch points at after this call.")
    base: str
    created: bool = Field(description="True when this call opened the pull request, false when it updated it.")


class PullRequestInfo(_Out):
    """A pull request as `get_pull_request`, `assign` and `request_review` return it."""

    number: int
    url: str
    title: str
    state: Literal["open", "closed", "merged"]
    draft: bool
    branch: str
    base: str
    head_sha: str
    labels: list[str]
    assignees: list[str]
    requested_reviewers: list[str]
    requested_teams: list[str]


class CommentRef(_Out):
    id: int
    url: str


class GitHubIssue(_Out):
    """A GitHub issue as `get_github_issue` returns it, in the fields the agent reads from a Jira issue:
    the title is the `summary` and the body the `description`, both text of the issue's author."""

    key: str = Field(description="The ticket key: <repository>#<number>.")
    number: int
    summary: UntrustedText
    description: UntrustedText
    status: Literal["open", "closed"]
    labels: list[str]
    reporter: str | None
    created: str | None
    updated: str | None
    url: str
    comment_count: int | None = Field(
        default=None,
        description="How many comments the issue has (read them with get_github_issue_comments); null: unknown.",
    )


class IssueComment(_Out):
    id: int
    author: str | None
    created: str | None
    body: UntrustedText


class IssueComments(_Out):
    """The most recent comments of a GitHub issue, oldest first, and how many it has in all."""

    key: str = Field(description="The ticket key: <repository>#<number>.")
    comments: list[IssueComment]
    total: int


@dataclass(frozen=True, slots=True)
class RawComment:
    """A comment as a backend read it (the service cleans its body)."""

    id: int
    author: str | None
    created: str | None
    body: str


@dataclass(frozen=True, slots=True)
class RawIssue:
    """An issue as a backend read it: text as its author wrote it (the service cleans it)."""

    title: str
    body: str | None
    state: Literal["open", "closed"]
    labels: tuple[str, ...]
    author: str | None
    url: str
    created: str | None = None
    updated: str | None = None
    comments: int | None = None  # how many comments it has; None: the backend cannot tell


@dataclass(frozen=True, slots=True)
class Author:
    """The bot identity every commit is authored and committed with."""

    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Applied:
    """What a backend is about to commit, as git sees it: the staged diff against the base tree
    (`git diff --cached --binary -M`) and the pre-images of every path it names (None: absent)."""

    diff: str
    base_files: Mapping[str, str | None]


class AppliedCheck(Protocol):
    def __call__(self, applied: Applied, /) -> None:
        """Refuse (raise) a change by what git applied; return to let the backend commit it."""
        ...


@dataclass(frozen=True, slots=True)
class Change:
    """A policed request to open (or update) the pull request of one ticket in one repo."""

    repo: str
    base: str
    ticket: str
    branch: str
    title: str
    body: str
    patch: str
    author: Author
    draft: bool = True
    labels: tuple[str, ...] = ()
    # The service's check of git's own diff of the staged change; a backend calls it before writing
    # any object, commit or ref, so a refused change leaves nothing behind.
    check: AppliedCheck | None = field(default=None, compare=False, repr=False)

    @property
    def branch_glob(self) -> str:
        """The prefix every branch of this ticket starts with, whatever its slug."""
        return self.branch.rsplit("/", 1)[0] + "/" + ticket_part(self.ticket) + "-"

    def commit_message(self, base_sha: str) -> str:
        """Title, ticket, and trailers that let an update find the commit the branch started from."""
        return f"{self.title}\n\n{TRAILER_TICKET}: {self.ticket}\n{TRAILER_BASE}: {base_sha}\n"


def ticket_part(ticket: str) -> str:
    """The ticket as it appears in a branch name: `SVC-12` or `12` (for GitHub issue #12)."""
    return ticket.lstrip("#")


def slugify(title: str, limit: int = 40) -> str:
    """A lowercase, hyphen-separated branch-name slug of `title` (at most `limit` chars, never empty)."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:limit].rstrip("-")
    return slug or "change"


def branch_name(prefix: str, ticket: str, title: str) -> str:
    """`<prefix>/<ticket>-<slug>`; the prefix is fixed by settings, never by the caller."""
    return f"{prefix}/{ticket_part(ticket)}-{slugify(title)}"


def update_refusal(change: Change, number: int, state: str, base: str, draft: bool) -> str | None:
    """Why `change` may not update its ticket's existing pull request (#`number`), or None when it may.

    A draft (what a hand-off opens: the best attempt of a run that did not pass) never adds its commit to a
    pull request that is ready for review: that one holds a change whose tests passed."""
    if state != "open":
        return f"the pull request of {change.ticket} (#{number}) is {state}; not reopening it"
    if base != change.base:
        return f"the pull request of {change.ticket} (#{number}) targets {base}, not {change.base}"
    if change.draft and not draft:
        return (
            f"the pull request of {change.ticket} (#{number}) is ready for review; a draft does not add its "
            "commit to it"
        )
    return None


def trailer(message: str, key: str) -> str | None:
    """The value of the *last* `Key: value` line of a commit message, or None.

    The last one, because the bot writes its trailers at the end: a title (written by a model) that
    imitates a trailer comes first and cannot redirect an update to another base commit.
    """
    values = re.findall(rf"^{re.escape(key)}: (\S+)[ \t]*$", message, re.MULTILINE)
    return values[-1] if values else None


class PullRequestBackend(Protocol):
    """A code host that can hold branches and pull requests. Blocking; the server calls it in a thread.

    Raises (all methods):
        NotFound: the repository or pull request does not exist or is not visible.
        Conflict: the branch or pull request is in a state this bot must not change
            (commits by someone else, pull request closed, patch does not apply).
        RateLimited: the host kept rate limiting past the bounded retries.
        UpstreamFailure: any other failure of the host (5xx after retries, timeouts, git errors).
    """

    def open_or_update(self, change: Change) -> PullRequestRef:
        """Build the commit (base + patch), call `change.check` on git's diff of it, then push and
        open or update the pull request. Whatever `check` raises propagates, with nothing written."""
        ...

    def get_pull_request(self, repo: str, number: int) -> PullRequestInfo: ...

    def opened_by_bot(self, repo: str, number: int) -> bool:
        """Whether the bot itself opened pull request `number`, by the host's record (never by its branch
        name alone, which anyone with push access can choose)."""
        ...

    def comment(self, repo: str, number: int, body: str) -> CommentRef: ...

    def get_issue(self, repo: str, number: int) -> RawIssue:
        """Read issue `number`. Raises InvalidInput when `number` is a pull request."""
        ...

    def get_issue_comments(self, repo: str, number: int, limit: int) -> tuple[list[RawComment], int]:
        """The newest `limit` comments of issue `number`, oldest first, and its total comment count.
        Raises InvalidInput when `number` is a pull request."""
        ...

    def comment_on_issue(self, repo: str, number: int, body: str) -> CommentRef:
        """Comment on issue `number`. Raises InvalidInput when `number` is a pull request (pull requests
        are written only through `comment`, and only the bot's own), NotFound when there is no such issue
        (as `get_issue` does)."""
        ...

    def request_review(
        self, repo: str, number: int, reviewers: tuple[str, ...], team_reviewers: tuple[str, ...]
    ) -> PullRequestInfo: ...

    def assign(self, repo: str, number: int, assignees: tuple[str, ...]) -> PullRequestInfo: ...
