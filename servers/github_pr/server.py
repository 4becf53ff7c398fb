"""github-pr: open pull requests from patches — and nothing more powerful than that.

Seven tools. `open_pull_request` creates (or, for the same repo and ticket, updates) a branch under
the bot prefix, commits the patch as the bot, pushes and opens a draft pull request; `comment`,
`request_review` and `assign` act only on the bot's own pull requests; `comment_on_issue` writes on
an issue (never a pull request) of a repository in policy, for a hand-off with no pull request;
`get_pull_request` reads a pull request and `get_github_issue` an issue (a ticket filed on GitHub:
its title and body as untrusted text).
There is no tool, and no backend method, that merges, closes, deletes a branch outside the prefix,
force-pushes, or changes repository settings. Every patch is checked again against the patch
policy before anything is pushed (see service.py for the full list of checks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from servers.common.app import Platform, current_caller
from servers.common.bounded_http import read_budget
from servers.common.errors import UpstreamFailure
from servers.common.logging import get_logger
from servers.common.policy import Policies
from servers.common.tools import ToolSpec
from servers.common.tracing import current_trace_id

from .models import (
    LOGIN_PATTERN,
    TEAM_PATTERN,
    TICKET_PATTERN,
    Author,
    CommentRef,
    GitHubIssue,
    IssueComments,
    PullRequestBackend,
    PullRequestInfo,
    PullRequestRef,
)
from .service import Limits, PullRequestService
from .settings import GitHubPrSettings, mentionable

log = get_logger(__name__)
T = TypeVar("T")

INSTRUCTIONS = (
    "Opens and updates pull requests from unified diffs, one per (repo, ticket); draft by default. "
    "Patches are checked against the protected-paths and test-tampering policy before anything is pushed. "
    "This server cannot merge, close, or change repository settings."
)

RepoName = Annotated[str, Field(min_length=1, max_length=100, description="Repository name from policy.")]
Number = Annotated[int, Field(ge=1, le=10**9, description="Pull request number.")]
IssueNumber = Annotated[int, Field(ge=1, le=10**9, description="Issue number.")]
Login = Annotated[str, Field(pattern=LOGIN_PATTERN, description="A GitHub login.")]
Team = Annotated[str, Field(pattern=TEAM_PATTERN, description="A team slug in the repository's organisation.")]


def _writer(name: str, description: str, *, idempotent: bool) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=description,
        scope="pr:write",
        read_only=False,
        destructive=False,
        idempotent=idempotent,
        open_world=True,
    )


def build_server(
    settings: GitHubPrSettings,
    policies: Policies,
    backend: PullRequestBackend,
    *,
    refused_repos: Mapping[str, str] | None = None,
) -> MCPServer[Any]:
    """Assemble the github-pr MCP server around `backend`.

    `refused_repos` (name -> reason) are repositories the server must not write to, found at start
    (the GitHub backend's branch-protection check).
    """
    platform = Platform.create("github-pr", settings, policies, instructions=INSTRUCTIONS)

    def neutralised(caller: str, tool: str, field: str, counts: Mapping[str, int]) -> None:
        """What was neutralised in a published text, by kind, as its own audit record: counts only."""
        shown = " ".join(f"{kind}={n}" for kind, n in sorted(counts.items()))
        platform.audit.append(
            caller=caller,
            tool=tool,
            arguments={"field": field},
            outcome=f"neutralised {field}: {shown}",
            trace_id=current_trace_id(),
        )
        log.info("published text neutralised", field=field, **counts)

    service = PullRequestService(
        backend,
        policies,
        prefix=settings.branch_prefix,
        author=Author(settings.bot_name, settings.bot_email),
        limits=Limits(issue_chars=settings.max_issue_chars, comment_chars=settings.max_comment_chars),
        refused_repos=refused_repos,
        ticket_url=settings.ticket_url,
        web_host=settings.web_host(),
        image_prefixes=settings.image_prefixes,
        mentionable=mentionable(settings),
        on_neutralised=neutralised,
    )

    deadline = settings.deadline_s

    async def off_loop(work: Callable[[], T]) -> T:
        """Run `work` (blocking: PyGithub or git) in a worker thread, for at most `deadline_s`. Past it the
        caller gets an UpstreamFailure at once; the worker's budget is cancelled, so it sends no further
        request and stops reading the one in flight at its next chunk (see bounded_http)."""
        try:
            with read_budget(deadline), anyio.fail_after(deadline):
                return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except TimeoutError:
            raise UpstreamFailure(
                f"The call did not finish within {deadline:g}s (GitHub too slow or not answering).",
                detail="tool call deadline exceeded",
            ) from None

    def who() -> tuple[str, Any]:
        caller = current_caller()
        return caller.name, caller.identity

    @platform.tool(
        _writer(
            "open_pull_request",
            "Open a draft pull request for a ticket from a unified diff against `base`, or update the "
            "ticket's existing pull request (same branch, new commit on top; the same patch again changes "
            "nothing). Returns number, url, branch, "
            "head commit and whether it was created. Refused: protected paths, weakened or skipped tests, "
            "credentials in title/body, oversize patches, bases or repos outside policy.",
            idempotent=True,
        )
    )
    async def open_pull_request(
        repo: RepoName,
        base: Annotated[str, Field(min_length=1, max_length=255, description="Base branch, e.g. main.")],
        ticket: Annotated[str, Field(pattern=TICKET_PATTERN, description="Jira key (SVC-12) or GitHub issue (#12).")],
        title: Annotated[str, Field(min_length=1, max_length=256, description="One line.")],
        body: Annotated[str, Field(min_length=1, max_length=60_000, description="Markdown description.")],
        patch: Annotated[str, Field(min_length=1, description="Unified diff (git diff format) against base.")],
        draft: Annotated[bool, Field(description="Open as a draft (only on creation).")] = True,
        labels: Annotated[list[str] | None, Field(max_length=10, description="Labels to add.")] = None,
    ) -> PullRequestRef:
        name, identity = who()

        def run() -> PullRequestRef:
            return service.open_pull_request(
                name,
                identity,
                repo=repo,
                base=base,
                ticket=ticket,
                title=title,
                body=body,
                patch=patch,
                draft=draft,
                labels=tuple(labels or ()),
            )

        return await off_loop(run)

    @platform.tool(
        ToolSpec.reader(
            "pr:read",
            name="get_pull_request",
            description="Read a pull request: state, draft, branch, base, head commit, labels, people.",
        )
    )
    async def get_pull_request(repo: RepoName, number: Number) -> PullRequestInfo:
        name, identity = who()
        return await off_loop(lambda: service.get_pull_request(name, identity, repo, number))

    @platform.tool(
        ToolSpec.reader(
            "issue:read",
            name="get_github_issue",
            description="Read a GitHub issue of a repository in policy (a ticket filed on GitHub): title and "
            "body as untrusted text written by its author, state, labels, reporter. A pull request is refused.",
        )
    )
    async def get_github_issue(repo: RepoName, number: IssueNumber) -> GitHubIssue:
        name, identity = who()
        return await off_loop(lambda: service.get_issue(name, identity, repo, number))

    @platform.tool(
        ToolSpec.reader(
            "issue:read",
            name="get_github_issue_comments",
            description="The most recent comments of a GitHub issue, oldest first, as untrusted Markdown. "
            "A pull request is refused.",
        )
    )
    async def get_github_issue_comments(
        repo: RepoName,
        number: IssueNumber,
        limit: Annotated[int, Field(ge=1, le=100, description="At most this many comments.")] = 20,
    ) -> IssueComments:
        name, identity = who()
        return await off_loop(lambda: service.get_issue_comments(name, identity, repo, number, limit))

    @platform.tool(
        _writer(
            "comment",
            "Comment on one of this bot's pull requests (Markdown; no credentials).",
            idempotent=False,
        )
    )
    async def comment(
        repo: RepoName, number: Number, body: Annotated[str, Field(min_length=1, max_length=60_000)]
    ) -> CommentRef:
        name, identity = who()
        return await off_loop(lambda: service.comment(name, identity, repo, number, body))

    @platform.tool(
        _writer(
            "comment_on_issue",
            "Comment on an issue (not a pull request) of a repository in policy, e.g. the ticket's issue "
            "when a run hands off to a person without a pull request (Markdown; no credentials).",
            idempotent=False,
        )
    )
    async def comment_on_issue(
        repo: RepoName,
        number: IssueNumber,
        body: Annotated[str, Field(min_length=1, max_length=60_000)],
    ) -> CommentRef:
        name, identity = who()
        return await off_loop(lambda: service.comment_on_issue(name, identity, repo, number, body))

    @platform.tool(
        _writer(
            "request_review",
            "Request reviews from people and/or teams on one of this bot's pull requests.",
            idempotent=True,
        )
    )
    async def request_review(
        repo: RepoName,
        number: Number,
        reviewers: Annotated[list[Login] | None, Field(max_length=10)] = None,
        team_reviewers: Annotated[list[Team] | None, Field(max_length=10)] = None,
    ) -> PullRequestInfo:
        name, identity = who()
        people, teams = tuple(reviewers or ()), tuple(team_reviewers or ())
        return await off_loop(lambda: service.request_review(name, identity, repo, number, people, teams))

    @platform.tool(_writer("assign", "Add assignees to one of this bot's pull requests.", idempotent=True))
    async def assign(
        repo: RepoName, number: Number, assignees: Annotated[list[Login], Field(min_length=1, max_length=10)]
    ) -> PullRequestInfo:
        name, identity = who()
        people = tuple(assignees)
        return await off_loop(lambda: service.assign(name, identity, repo, number, people))

    return platform.finish()
