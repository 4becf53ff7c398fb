"""From a verified sender's JSON to a queue `Event`, or to the reason it is ignored.

Only the fields goresolve uses are modelled (pydantic, extra fields allowed): GitHub's webhook
schemas (@octokit/openapi-webhooks) and Atlassian's documented Jira shapes are the references,
and the tests check that every payload they send conforms to those schemas. A payload that lacks a
modelled field is malformed (400); an event or action goresolve does not act on is ignored (202).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from servers.common.repo_names import GITHUB_FULL_NAME
from workqueue import CommentData, Event, IssueData, JiraIssueData, PushData

# GitHub caps a push payload's commit list at 2,048 and each commit's file lists at 3,000.
MAX_COMMITS = 2048
MAX_FILES = 3000
ISSUE_ACTIONS = ("opened", "labeled", "reopened")
# Who may give a command in an issue comment (GitHub's `author_association`): people with write access to
# the repository, not anyone who can comment on a public issue (a command starts a paid run).
COMMAND_ROLES = ("OWNER", "MEMBER", "COLLABORATOR")
# GitHub's webhook event names (docs.github.com, "Webhook events and payloads"). The event header is not
# covered by the signature, so the ignored counter names only these; any other value counts as "other".
GITHUB_EVENTS = frozenset(
    [
        "branch_protection_configuration",
        "branch_protection_rule",
        "check_run",
        "check_suite",
        "code_scanning_alert",
        "commit_comment",
        "create",
        "custom_property",
        "custom_property_values",
        "delete",
        "dependabot_alert",
        "deploy_key",
        "deployment",
        "deployment_protection_rule",
        "deployment_review",
        "deployment_status",
        "discussion",
        "discussion_comment",
        "fork",
        "github_app_authorization",
        "gollum",
        "installation",
        "installation_repositories",
        "installation_target",
        "issue_comment",
        "issues",
        "label",
        "marketplace_purchase",
        "member",
        "membership",
        "merge_group",
        "meta",
        "milestone",
        "org_block",
        "organization",
        "package",
        "page_build",
        "personal_access_token_request",
        "ping",
        "project",
        "project_card",
        "project_column",
        "projects_v2",
        "projects_v2_item",
        "projects_v2_status_update",
        "public",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
        "push",
        "registry_package",
        "release",
        "repository",
        "repository_advisory",
        "repository_dispatch",
        "repository_import",
        "repository_ruleset",
        "repository_vulnerability_alert",
        "secret_scanning_alert",
        "secret_scanning_alert_location",
        "secret_scanning_scan",
        "security_advisory",
        "security_and_analysis",
        "sponsorship",
        "star",
        "status",
        "sub_issues",
        "team",
        "team_add",
        "watch",
        "workflow_dispatch",
        "workflow_job",
        "workflow_run",
    ]
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _User(_Model):
    login: str


class _Repository(_Model):
    full_name: str
    default_branch: str | None = None
    clone_url: str

    @field_validator("full_name")
    @classmethod
    def _github_name(cls, value: str) -> str:
        if not GITHUB_FULL_NAME.fullmatch(value):
            raise ValueError("not a GitHub owner/name (letters, digits, '-', '_', '.'; no '.' or '..' part)")
        return value


class _Commit(_Model):
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    modified: list[str] = Field(default_factory=list)


class GitHubPush(_Model):
    ref: str
    before: str = Field(pattern=r"^[0-9a-f]{40}$")
    after: str = Field(pattern=r"^[0-9a-f]{40}$")
    forced: bool = False
    deleted: bool = False
    commits: list[_Commit] = Field(default_factory=list)
    repository: _Repository


class _Label(_Model):
    name: str


class _Issue(_Model):
    number: int = Field(ge=1, le=2**31 - 1, strict=True)  # not true, "7" or 7.0
    title: str = ""
    html_url: str
    state: str = "open"
    user: _User | None = None
    labels: list[_Label] = Field(default_factory=list)
    pull_request: dict[str, Any] | None = None  # set on a pull request's issue (issue_comment events)


class GitHubIssues(_Model):
    action: str
    issue: _Issue
    repository: _Repository


class _Comment(_Model):
    body: str | None = None
    html_url: str
    user: _User | None = None
    author_association: str = "NONE"


class GitHubIssueComment(_Model):
    action: str
    issue: _Issue
    comment: _Comment
    repository: _Repository


class _JiraProject(_Model):
    key: str


class _JiraStatusCategory(_Model):
    key: str = ""


class _JiraStatus(_Model):
    statusCategory: _JiraStatusCategory | None = None


class _JiraFields(_Model):
    summary: str = ""
    project: _JiraProject
    status: _JiraStatus | None = None


class _JiraIssue(_Model):
    key: str = Field(pattern=r"^[A-Z][A-Z0-9_]*-[0-9]+$")
    self: str
    fields: _JiraFields

    @field_validator("self")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # The event's URL is built from it and shown to people and to the agent: only a web address will do.
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _key_of_its_project(self) -> _JiraIssue:
        if self.key.rsplit("-", 1)[0] != self.fields.project.key:
            raise ValueError("the issue key is not of the issue's project (fields.project.key)")
        return self

    @property
    def done(self) -> bool:
        """In a status of Jira's "done" category (Done, Closed, Resolved, ...)."""
        status = self.fields.status
        return status is not None and status.statusCategory is not None and status.statusCategory.key == "done"


class JiraWebhook(_Model):
    webhookEvent: str
    issue: _JiraIssue


class Ignored(Exception):
    """Not an event goresolve acts on; `reason` is a short label for the ignored counter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _command(text: str, commands: tuple[str, ...]) -> str | None:
    """The command `text` gives: one of `commands`, alone or followed by white space (a reason, a new line)."""
    return next((c for c in commands if text == c or (text.startswith(c) and text[len(c)].isspace())), None)


def _followed(ref: str, repo: _Repository, branches: tuple[str, ...]) -> bool:
    if not ref.startswith("refs/heads/"):
        return False
    branch = ref.removeprefix("refs/heads/")
    return branch == repo.default_branch or branch in branches


def github_event(
    kind: str,
    body: dict[str, Any],
    *,
    delivery: str,
    hook_id: str,
    trace_id: str,
    branches: tuple[str, ...],
    commands: tuple[str, ...],
    command_roles: tuple[str, ...] = COMMAND_ROLES,
) -> Event:
    """The event to enqueue for a GitHub delivery.

    Raises:
        Ignored: an event, action, branch or comment goresolve does not act on: also a closed issue, a
            comment on a pull request, and a command from someone without write access (`command_roles`).
        pydantic.ValidationError: an accepted event without the fields it must have.
    """
    common: dict[str, Any] = {
        "id": f"github:{hook_id}:{delivery}",
        "source": "github",
        "delivery": delivery,
        "hook_id": hook_id,
        "trace_id": trace_id,
        "received_at": datetime.now(UTC),
    }
    if kind == "push":
        push = GitHubPush.model_validate(body)
        if push.deleted or set(push.after) == {"0"}:
            raise Ignored("push:deleted")
        if not _followed(push.ref, push.repository, branches):
            raise Ignored("push:branch")
        truncated = len(push.commits) >= MAX_COMMITS or any(
            len(c.added) + len(c.removed) + len(c.modified) >= MAX_FILES for c in push.commits
        )
        data = PushData(
            ref=push.ref,
            before=push.before,
            after=push.after,
            forced=push.forced,
            commits=len(push.commits),
            truncated=truncated,
            clone_url=push.repository.clone_url,
        )
        return Event(**common, repo=push.repository.full_name, data=data)
    if kind == "issues":
        action = str(body.get("action", ""))
        if action not in ISSUE_ACTIONS:
            raise Ignored(f"issues:{action[:40] or '?'}")
        issues = GitHubIssues.model_validate(body)
        issue = issues.issue
        if issue.state != "open":  # e.g. a label added to a closed issue
            raise Ignored("issues:closed")
        data_issue = IssueData(
            action=action,  # type: ignore[arg-type]  # checked against ISSUE_ACTIONS above
            number=issue.number,
            title=issue.title,
            labels=[label.name for label in issue.labels],
            url=issue.html_url,
            author=issue.user.login if issue.user else "",
        )
        return Event(**common, repo=issues.repository.full_name, data=data_issue)
    if kind == "issue_comment":
        if body.get("action") != "created":
            raise Ignored("issue_comment:action")
        comment = GitHubIssueComment.model_validate(body)
        command = _command((comment.comment.body or "").strip(), commands)
        if command is None:
            raise Ignored("issue_comment:no-command")
        if comment.issue.pull_request is not None:  # a pull request's conversation is not a ticket
            raise Ignored("issue_comment:pull-request")
        if comment.comment.author_association not in command_roles:
            raise Ignored("issue_comment:not-allowed")
        if comment.issue.state != "open":
            raise Ignored("issue_comment:closed")
        data_comment = CommentData(
            number=comment.issue.number,
            command=command,
            author=comment.comment.user.login if comment.comment.user else "",
            url=comment.comment.html_url,
        )
        return Event(**common, repo=comment.repository.full_name, data=data_comment)
    raise Ignored(f"event:{kind}" if kind in GITHUB_EVENTS else "event:other")


def jira_event(body: dict[str, Any], *, delivery: str, trace_id: str) -> Event:
    """The event to enqueue for a Jira delivery (`jira:issue_created` / `jira:issue_updated`).

    Raises:
        Ignored: any other webhook event, or an issue in a status of the "done" category.
        pydantic.ValidationError: an issue event without the fields it must have.
    """
    kind = str(body.get("webhookEvent", ""))
    actions = {"jira:issue_created": "created", "jira:issue_updated": "updated"}
    if kind not in actions:
        raise Ignored(f"jira:{kind[:40] or '?'}")
    hook = JiraWebhook.model_validate(body)
    issue = hook.issue
    if issue.done:  # resolved or closed: an edit or comment after that asks for no run
        raise Ignored("jira:done")
    base = issue.self.split("/rest/", 1)[0]
    data = JiraIssueData(
        action="created" if actions[kind] == "created" else "updated",
        key=issue.key,
        project=issue.fields.project.key,
        summary=issue.fields.summary,
        url=f"{base}/browse/{issue.key}",
    )
    return Event(
        id=f"jira:webhook:{delivery}",
        source="jira",
        delivery=delivery,
        hook_id="webhook",
        trace_id=trace_id,
        received_at=datetime.now(UTC),
        data=data,
    )
