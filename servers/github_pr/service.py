"""Everything github-pr checks before a backend may touch a repository.

`PullRequestService` wraps a `PullRequestBackend` (wrap, don't flag): the backends only talk to a
code host; every rule lives here, applied in the same order for every backend:

1. the caller's identity may use the repository (policies/access.yaml `repos`), and the server
   serves it (the GitHub backend refuses repositories whose default branch is unprotected);
2. the base branch is one policy allows for that repository;
3. ticket, title, body, labels are well-formed and within limits, and carry no credential; then every
   title, body and comment is neutralised (`sanitise`: mentions, HTML, comments, foreign images,
   non-web links) before a backend sees it, and what was neutralised is counted in the audit log;
   the server's own marker and ticket link are added after that, so a forged marker never survives;
4. the patch is within the size limit, passes the shared patch policy (`check_patch`), and adds no
   line that looks like a credential (`servers.common.secrets`, the same catalogue the redactor uses);
5. one call at a time per (repo, ticket) in this process; backends make it safe across processes;
6. the backend applies the patch with git and, before writing anything, hands back git's own diff of
   what it is about to commit; that diff goes through the shared `check_applied`, so a patch whose
   text reads differently from what git does (C-quoted paths, renames, modes) is judged by its effect.
   github-pr holds no checkout, module cache or toolchain, so the Go tamper analyzer (the static
   comparison) runs in go-test-runner and `goresolve check-patch`; here the line rules read its
   package-initialisation rules from the text instead (an exit or flag change reachable from `init`
   or a var initializer, testing.Testing() in code, a new TestMain: see `patch_policy`), with the
   analyzer's rule names. What only types can show (changed test helpers, overwritten test state,
   shadowed tests, calls through methods or unchanged files) is left to go-test-runner's run.

Writes to an existing pull request (comment, assign, request review) are allowed only on pull
requests the bot opened (the host's record) whose head branch is under the bot's prefix: this
server never writes to a person's PR, even one on a branch named like the bot's. A comment on an
issue (the ticket's, when a run hands off without a pull request) needs only a repository the
caller may use; the backend refuses a number that is a pull request. Reading an issue (a ticket filed
on GitHub) needs the same, and its author's title and body come back as `UntrustedText`: invisible
characters stripped, cut past the limit, marked as data for the agent to fence.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Generator, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from servers.common.diffs import BIDI_CONTROL
from servers.common.errors import AccessDenied, InvalidInput
from servers.common.patch_policy import PatchVerdict, check_patch
from servers.common.policy import Identity, Policies
from servers.common.secrets import describe, scan, scan_patch
from servers.common.tamper.guard import check_applied
from servers.common.textnorm import strip_invisible
from servers.common.untrusted import clean

from .models import (
    LABEL_PATTERN,
    LOGIN_PATTERN,
    TEAM_PATTERN,
    TICKET_PATTERN,
    Applied,
    Author,
    Change,
    CommentRef,
    GitHubIssue,
    IssueComment,
    IssueComments,
    PullRequestBackend,
    PullRequestInfo,
    PullRequestRef,
    branch_name,
)
from .sanitise import Sanitised, sanitise_markdown, sanitise_title


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits on what the bot publishes (GitHub's own limit on a body is 65,536 characters)."""

    title_chars: int = 256
    body_chars: int = 60_000
    # what neutralising may grow a body to: GitHub's 65,536 less room for the ticket footer
    published_chars: int = 65_000
    issue_chars: int = 8000  # an issue's body as the agent reads it (GORESOLVE_GITHUB_PR_MAX_ISSUE_CHARS)
    comment_chars: int = 2000  # each of its comments (GORESOLVE_GITHUB_PR_MAX_COMMENT_CHARS)
    labels: int = 10
    people: int = 10
    shown_reasons: int = 8


class _KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: tuple[str, str]) -> Generator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class PullRequestService:
    """The policed operations of github-pr. Blocking; the MCP layer runs each call in a thread."""

    def __init__(
        self,
        backend: PullRequestBackend,
        policies: Policies,
        *,
        prefix: str,
        author: Author,
        limits: Limits | None = None,
        refused_repos: Mapping[str, str] | None = None,
        ticket_url: str | None = None,
        web_host: str = "github.com",
        image_prefixes: tuple[str, ...] = (),
        mentionable: Iterable[str] = (),
        on_neutralised: Callable[[str, str, str, Mapping[str, int]], None] | None = None,
    ) -> None:
        """`web_host` is the code host's web address (github.com, or a GitHub Enterprise host): a
        repository's own images there stay in what the bot publishes, as do images under
        `image_prefixes` (`host/` or `host/path/`). A mention of one of `mentionable` (logins or org/team:
        the people hand-offs are for) still notifies; every other mention is neutralised.
        `on_neutralised(caller, tool, field, counts)` is told what was neutralised in each published text
        (the server writes it to its audit log)."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*", prefix):
            raise ValueError(f"invalid branch prefix {prefix!r}")
        self._backend = backend
        self._policies = policies
        self._prefix = prefix
        self._author = author
        self._limits = limits or Limits()
        self._refused = dict(refused_repos or {})
        self._ticket_url = ticket_url
        self._locks = _KeyedLocks()
        self._web_host = web_host.lower()
        self._image_prefixes = image_prefixes
        self._mentionable = frozenset(m.lower() for m in mentionable)
        self._on_neutralised = on_neutralised

    # --- checks -----------------------------------------------------------------------------------

    def _check_repo(self, caller: str, identity: Identity | None, repo: str) -> None:
        if identity is None or repo not in identity.repos or repo not in self._policies.repos.repos:
            raise AccessDenied(f"{caller} may not use repository {repo!r}")
        if repo in self._refused:
            raise AccessDenied(f"repository {repo!r} is not served: {self._refused[repo]}")

    def _check_text(self, field: str, text: str, limit: int, *, single_line: bool = False) -> None:
        if not text.strip():
            raise InvalidInput(f"{field} is empty")
        if len(text) > limit:
            raise InvalidInput(f"{field} is {len(text)} characters; the limit is {limit}")
        if single_line and re.search(r"[\x00-\x1f\x7f-\x9f]", text):
            raise InvalidInput(f"{field} must be a single line without control characters")
        if single_line and BIDI_CONTROL.search(text):
            raise InvalidInput(
                f"{field} must not contain bidirectional control characters (U+202A-U+202E, U+2066-U+2069, "
                "U+200E, U+200F, U+061C): they make it display in another order than it is written"
            )
        findings = scan(text, field)
        if findings:
            raise InvalidInput(describe(findings))

    def _check_names(self, field: str, names: tuple[str, ...], pattern: str, limit: int) -> None:
        if len(names) > limit:
            raise InvalidInput(f"at most {limit} {field}")
        # Scanned before the format check, whose message quotes the entry.
        findings = [f for name in names for f in scan(name, field)]
        if findings:
            raise InvalidInput(describe(findings))
        for name in names:
            if not re.fullmatch(pattern, name):
                raise InvalidInput(f"not a valid entry in {field}: {name[:60]!r}")

    def _check_patch(self, patch: str) -> None:
        protected = self._policies.protected
        size = len(patch.encode())
        if size > protected.max_patch_bytes:
            raise InvalidInput(f"patch is {size} bytes; the limit is {protected.max_patch_bytes}")
        if not patch.strip():
            raise InvalidInput("patch is empty")
        # Credentials first: the policy's refusal quotes paths and lines, which must not carry one.
        findings = scan_patch(patch)
        if findings:
            raise InvalidInput(describe(findings))
        self._refuse_unless_allowed(check_patch(patch, protected), "patch refused by policy")

    def _check_applied(self, applied: Applied) -> None:
        """The shared check on git's diff of the staged change (see item 6 of the module docstring)."""
        policy = self._policies.protected.model_copy(update={"static_analysis": False})
        verdict = check_applied(applied.diff, policy, base_files=applied.base_files, base=None, patched=None)
        self._refuse_unless_allowed(verdict, "patch refused by policy as git applied it")

    def _refuse_unless_allowed(self, verdict: PatchVerdict, heading: str) -> None:
        if not verdict.allowed:
            shown = verdict.reasons[: self._limits.shown_reasons]
            lines = [f"{r.path or '(patch)'}:{r.line or '-'}: {r.rule}: {r.detail}" for r in shown]
            more = len(verdict.reasons) - len(shown)
            tail = f"\n(+{more} more)" if more > 0 else ""
            raise InvalidInput(f"{heading}:\n" + "\n".join(lines) + tail)

    def _own_pull(self, caller: str, identity: Identity | None, repo: str, number: int) -> PullRequestInfo:
        self._check_repo(caller, identity, repo)
        info = self._backend.get_pull_request(repo, number)
        if not info.branch.startswith(self._prefix + "/") or not self._backend.opened_by_bot(repo, number):
            raise AccessDenied(f"pull request #{number} was not opened by this bot; it only writes to its own")
        return info

    def _images_allowed(self, repo: str) -> tuple[str, ...]:
        """Where an image in what the bot publishes on `repo` may point: the repository's own pages and
        raw files, GitHub's user-content hosts (pasted screenshots), and the configured prefixes."""
        prefixes = list(self._image_prefixes)
        policy = self._policies.repos.repos.get(repo)
        github = policy.github if policy is not None else None
        if github:
            owner_name = github.lower()
            prefixes.append(f"{self._web_host}/{owner_name}/")
            if self._web_host == "github.com":
                prefixes += [
                    f"raw.githubusercontent.com/{owner_name}/",
                    "github.com/user-attachments/assets/",
                    "user-images.githubusercontent.com/",
                    "private-user-images.githubusercontent.com/",
                ]
            else:
                prefixes.append(f"{self._web_host}/user-attachments/assets/")
        return tuple(prefixes)

    def _neutralised(self, caller: str, tool: str, field: str, result: Sanitised) -> str:
        if result.changed and self._on_neutralised is not None:
            self._on_neutralised(caller, tool, field, result.counts)
        return result.text

    def _own_issue(self, repo: str, ticket: str) -> frozenset[str]:
        """The references a closing keyword in the pull request for `ticket` may name: its own GitHub issue
        (`#12`, and `owner/name#12` for the repository's `github`); none for a Jira ticket."""
        if not ticket.startswith("#"):
            return frozenset()
        number = int(ticket[1:])
        policy = self._policies.repos.repos.get(repo)
        github = policy.github if policy is not None else None
        return frozenset({f"#{number}", *([f"{github.lower()}#{number}"] if github else [])})

    def _published_body(
        self, caller: str, tool: str, repo: str, body: str, closes: frozenset[str] = frozenset()
    ) -> str:
        """`body` as the bot publishes it on `repo` (see `sanitise`); a closing keyword may name only `closes`.
        Raises InvalidInput when neutralising grew it past what GitHub accepts."""
        cleaned = sanitise_markdown(body, self._images_allowed(repo), self._mentionable, closes)
        text = self._neutralised(caller, tool, "body", cleaned)
        if len(text) > self._limits.published_chars:
            raise InvalidInput(
                f"body is {len(text)} characters once its markup is neutralised; the limit is "
                f"{self._limits.published_chars} (quote HTML and mentions as code to keep them short)"
            )
        return text

    def _decorated_body(self, body: str, ticket: str) -> str:
        if ticket.lstrip("#").isdigit():
            link = f"Refs #{ticket.lstrip('#')}"
        elif self._ticket_url:
            link = f"Ticket: [{ticket}]({self._ticket_url.format(ticket=ticket)})"
        else:
            link = f"Ticket: {ticket}"
        return f"{body.rstrip()}\n\n---\n{link}\n<!-- goresolve:ticket={ticket} -->\n"

    # --- operations -------------------------------------------------------------------------------

    def open_pull_request(
        self,
        caller: str,
        identity: Identity | None,
        *,
        repo: str,
        base: str,
        ticket: str,
        title: str,
        body: str,
        patch: str,
        draft: bool = True,
        labels: tuple[str, ...] = (),
    ) -> PullRequestRef:
        """Open the ticket's pull request, or update it when it exists (idempotent per repo and ticket).

        Raises:
            AccessDenied: the caller may not use `repo`, or the server does not serve it.
            InvalidInput: a bad base, ticket, title, body or label; a credential in the text; a patch
                over the size limit or refused by the patch policy, as text or as git applied it (each
                reason listed; nothing is pushed).
            NotFound, Conflict, RateLimited, UpstreamFailure: from the backend (see PullRequestBackend).
        """
        self._check_repo(caller, identity, repo)
        allowed = self._policies.repos.repos[repo].pr_bases()
        if base not in allowed:
            raise InvalidInput(f"base branch {base!r} is not allowed for {repo}; allowed: {', '.join(allowed)}")
        if not re.fullmatch(TICKET_PATTERN, ticket):
            raise InvalidInput("ticket must be a Jira key (SVC-12) or a GitHub issue number (#12)")
        if ticket.isdigit():
            ticket = f"#{ticket}"  # one spelling per GitHub issue, so `12` and `#12` share a pull request
        self._check_text("title", title, self._limits.title_chars, single_line=True)
        self._check_text("body", body, self._limits.body_chars)
        self._check_names("labels", labels, LABEL_PATTERN, self._limits.labels)
        self._check_patch(patch)
        closes = self._own_issue(repo, ticket)
        title = self._neutralised(caller, "open_pull_request", "title", sanitise_title(title, closes))
        body = self._published_body(caller, "open_pull_request", repo, body, closes)
        change = Change(
            repo=repo,
            base=base,
            ticket=ticket,
            branch=branch_name(self._prefix, ticket, title),
            title=title,
            body=self._decorated_body(body, ticket),
            patch=patch,
            author=self._author,
            draft=draft,
            labels=labels,
            check=self._check_applied,
        )
        with self._locks.hold((repo, ticket)):
            return self._backend.open_or_update(change)

    def get_pull_request(self, caller: str, identity: Identity | None, repo: str, number: int) -> PullRequestInfo:
        """Raises: AccessDenied (repository not allowed); NotFound and backend errors."""
        self._check_repo(caller, identity, repo)
        return self._backend.get_pull_request(repo, number)

    def comment(self, caller: str, identity: Identity | None, repo: str, number: int, body: str) -> CommentRef:
        """Raises: AccessDenied (repository not allowed, or not the bot's PR); InvalidInput; backend errors."""
        self._check_text("body", body, self._limits.body_chars)
        self._own_pull(caller, identity, repo, number)
        return self._backend.comment(repo, number, self._published_body(caller, "comment", repo, body))

    def get_issue(self, caller: str, identity: Identity | None, repo: str, number: int) -> GitHubIssue:
        """The issue as the agent reads a ticket: its author's text cleaned and marked untrusted.

        Raises: AccessDenied (repository not allowed); InvalidInput (`number` is a pull request); NotFound and
        backend errors."""
        self._check_repo(caller, identity, repo)
        raw = self._backend.get_issue(repo, number)
        return GitHubIssue(
            key=f"{repo}#{number}",
            number=number,
            summary=clean(raw.title, self._limits.title_chars),
            description=clean(raw.body, self._limits.issue_chars),
            status=raw.state,
            labels=[strip_invisible(label)[:100] for label in raw.labels],
            reporter=strip_invisible(raw.author)[:100] if raw.author else None,
            created=raw.created,
            updated=raw.updated,
            url=raw.url,
            comment_count=raw.comments,
        )

    def get_issue_comments(
        self, caller: str, identity: Identity | None, repo: str, number: int, limit: int
    ) -> IssueComments:
        """The issue's newest `limit` comments, oldest first, each body cleaned and marked untrusted.

        Raises: AccessDenied (repository not allowed); InvalidInput (`number` is a pull request); NotFound and
        backend errors."""
        self._check_repo(caller, identity, repo)
        raw, total = self._backend.get_issue_comments(repo, number, limit)
        comments = [
            IssueComment(
                id=c.id,
                author=strip_invisible(c.author)[:100] if c.author else None,
                created=c.created,
                body=clean(c.body, self._limits.comment_chars),
            )
            for c in raw[-limit:]
        ]
        return IssueComments(key=f"{repo}#{number}", comments=comments, total=total)

    def comment_on_issue(self, caller: str, identity: Identity | None, repo: str, number: int, body: str) -> CommentRef:
        """Raises: AccessDenied (repository not allowed); InvalidInput (bad body, or `number` is a pull
        request); NotFound and backend errors."""
        self._check_text("body", body, self._limits.body_chars)
        self._check_repo(caller, identity, repo)
        return self._backend.comment_on_issue(
            repo, number, self._published_body(caller, "comment_on_issue", repo, body)
        )

    def request_review(
        self,
        caller: str,
        identity: Identity | None,
        repo: str,
        number: int,
        reviewers: tuple[str, ...] = (),
        team_reviewers: tuple[str, ...] = (),
    ) -> PullRequestInfo:
        """Raises: AccessDenied (repository not allowed, or not the bot's PR); InvalidInput; backend errors."""
        if not reviewers and not team_reviewers:
            raise InvalidInput("name at least one reviewer or team")
        self._check_names("reviewers", reviewers, LOGIN_PATTERN, self._limits.people)
        self._check_names("team_reviewers", team_reviewers, TEAM_PATTERN, self._limits.people)
        self._own_pull(caller, identity, repo, number)
        return self._backend.request_review(repo, number, reviewers, team_reviewers)

    def assign(
        self, caller: str, identity: Identity | None, repo: str, number: int, assignees: tuple[str, ...]
    ) -> PullRequestInfo:
        """Raises: AccessDenied (repository not allowed, or not the bot's PR); InvalidInput; backend errors."""
        if not assignees:
            raise InvalidInput("name at least one assignee")
        self._check_names("assignees", assignees, LOGIN_PATTERN, self._limits.people)
        self._own_pull(caller, identity, repo, number)
        return self._backend.assign(repo, number, assignees)
