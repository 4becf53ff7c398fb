"""Local backend: a bare git repository on disk is the remote; pull requests live in SQLite.

Each remote gets a bare cache under `work_dir`. A call fetches the cache, builds the commit in it
with a throwaway index, and pushes it to the remote: real git, real refs, nothing checked out.
All git work on one repository happens under an exclusive file lock, so concurrent calls from
several processes cannot interleave fetches and pushes.
"""

from __future__ import annotations

import dataclasses
import fcntl
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from servers.common.errors import Conflict, InvalidInput, NotFound
from servers.common.repo_names import repo_slug

from . import git
from .issue_files import read_comments, read_issue
from .models import (
    TRAILER_BASE,
    Change,
    CommentRef,
    PullRequestInfo,
    PullRequestRef,
    RawComment,
    RawIssue,
    trailer,
    update_refusal,
)
from .store import PullRow, PullStore

_ORIGIN = "refs/remotes/origin/"


class LocalBackend:
    """`PullRequestBackend` over bare repositories (`remotes`: repo name -> path) and a SQLite store."""

    def __init__(
        self,
        remotes: Mapping[str, Path],
        store: PullStore,
        work_dir: Path,
        issues_dir: Path | None = None,
        bot: str = "goresolve[bot]",
    ) -> None:
        self._bot = bot  # the author of the comments this backend records
        self._remotes = dict(remotes)
        self._store = store
        self._work_dir = work_dir
        self._issues_dir = issues_dir or work_dir / "issues"

    def _remote(self, repo: str) -> Path:
        remote = self._remotes.get(repo)
        if remote is None:
            raise NotFound(f"repository {repo} is not configured for the local backend")
        return remote

    @contextmanager
    def _locked_cache(self, repo: str) -> Generator[Path]:
        remote = self._remote(repo)
        cache = self._work_dir / "cache" / f"{repo_slug(repo)}.git"
        cache.parent.mkdir(parents=True, exist_ok=True)
        with (self._work_dir / "cache" / f"{repo_slug(repo)}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                git.sync_cache(remote, cache)
                yield cache
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def open_or_update(self, change: Change) -> PullRequestRef:
        """Create or fast-forward the ticket's branch, then record or update its pull request. A branch
        whose head already holds the tree of base + patch (the same call again) gets no commit and no push.

        Raises:
            NotFound: unknown repository or base branch.
            Conflict: the patch does not apply, the branch carries someone else's commit,
                or the ticket's pull request was closed.
            UpstreamFailure: git failed.
        """
        remote = self._remote(change.repo)
        with self._locked_cache(change.repo) as cache:
            existing = git.refs_with_prefix(cache, _ORIGIN + change.branch_glob)
            row = self._store.by_ticket(change.repo, change.ticket)
            refusal = update_refusal(change, row.number, row.state, row.base, row.draft) if row is not None else None
            if refusal is not None:
                raise Conflict(refusal)
            if existing:
                branch, parent = self._owned_branch(change, existing, row)
                # The head is a commit this bot made (its own record says so), so its trailer is the bot's.
                _email, message = git.commit_message(cache, parent)
                start = trailer(message, TRAILER_BASE)
                if start is None:
                    raise Conflict(f"branch {branch}: the bot's commit has no {TRAILER_BASE} trailer; not updating it")
            else:
                branch = row.branch if row is not None else change.branch
                start = git.rev_parse(cache, _ORIGIN + change.base)
                if start is None:
                    raise NotFound(f"base branch {change.base} does not exist in {change.repo}")
                parent = start
            # The tree is always base + patch: an update replaces the previous attempt, keeping history.
            # A head that already holds that tree (the same call again) stays as it is: nothing is pushed.
            sha = git.build_commit(
                cache,
                tree_of=start,
                parent=parent,
                patch=change.patch,
                message=change.commit_message(start),
                author=change.author,
                check=change.check,
                reuse_parent=bool(existing),
            )
            if sha != parent or not existing:
                self._store.begin_push(change.repo, branch, sha)
                git.push(cache, remote, sha, branch)
                self._store.end_push(change.repo, branch, sha)
            # Recorded under the lock too, so rows follow pushes in order.
            return self._record(change, branch, sha, row)

    def _owned_branch(self, change: Change, existing: dict[str, str], row: PullRow | None) -> tuple[str, str]:
        """(branch, head) of the ticket's branch, when the bot's own record says it pushed that head.

        Raises:
            Conflict: a branch of this ticket that the bot did not create, or whose head moved since the
                bot's last push (someone pushed to it); nothing is changed.
        """
        heads = {ref.removeprefix(_ORIGIN): sha for ref, sha in existing.items()}
        # The pull request's own branch when it has one: look-alikes under the prefix are not ours to touch.
        candidates = [row.branch] if row is not None and row.branch in heads else sorted(heads)
        for branch in candidates:
            recorded = self._store.bot_heads(change.repo, branch) or set()
            if row is not None and row.branch == branch:
                recorded.add(row.head_sha)  # the pull request row records the last push too (older stores)
            if heads[branch] in recorded:
                return branch, heads[branch]
        branch = candidates[0]
        if self._store.bot_heads(change.repo, branch) is not None:
            raise Conflict(
                f"branch {branch} moved since this bot last pushed it (head {heads[branch][:12]}); "
                "someone else pushed to it, so the bot will not build on it"
            )
        raise Conflict(f"branch {branch} was not created by this bot; it does not adopt branches it did not push")

    def _record(self, change: Change, branch: str, sha: str, row: PullRow | None) -> PullRequestRef:
        created = row is None
        if row is None:
            row = self._store.insert(
                repo=change.repo,
                ticket=change.ticket,
                branch=branch,
                base=change.base,
                title=change.title,
                body=change.body,
                draft=change.draft,
                head_sha=sha,
            )
            created = row is not None
            if row is None:  # another process recorded it between our read and insert
                row = self._store.by_ticket(change.repo, change.ticket)
                assert row is not None
        labels = sorted(set(row.labels) | set(change.labels))
        row = self._store.update(
            change.repo, row.number, title=change.title, body=change.body, head_sha=sha, labels=labels
        )
        return PullRequestRef(
            number=row.number, url=_url(row), branch=row.branch, head_sha=sha, base=row.base, created=created
        )

    def get_pull_request(self, repo: str, number: int) -> PullRequestInfo:
        """Raises: NotFound: no such pull request in `repo`."""
        return _info(self._store.get(repo, number))

    def opened_by_bot(self, repo: str, number: int) -> bool:
        """The store holds only pull requests this bot opened. Raises: NotFound."""
        self._store.get(repo, number)
        return True

    def comment(self, repo: str, number: int, body: str) -> CommentRef:
        """Raises: NotFound: no such pull request in `repo`."""
        row = self._store.get(repo, number)
        comment_id = self._store.add_comment(repo, number, body)
        return CommentRef(id=comment_id, url=f"{_url(row)}#comment-{comment_id}")

    def _not_a_pull(self, repo: str, number: int) -> None:
        """Raises: NotFound (the repository is not configured); InvalidInput (`number` is a local pull request)."""
        self._remote(repo)
        try:
            self._store.get(repo, number)
        except NotFound:
            return
        raise InvalidInput(f"#{number} is a pull request, not an issue")

    def get_issue(self, repo: str, number: int) -> RawIssue:
        """The issue's file in the issues directory (`issue_files.py`).

        Raises:
            NotFound: the repository is not configured, or the issue has no file.
            InvalidInput: `number` is a pull request, or its file is not an issue.
        """
        self._not_a_pull(repo, number)
        issue = read_issue(self._issues_dir, repo, number)
        return dataclasses.replace(issue, comments=len(self._comments(repo, number)))

    def get_issue_comments(self, repo: str, number: int, limit: int) -> tuple[list[RawComment], int]:
        """The comments saved beside the issue's file (`issue_files.read_comments`), then those this backend
        recorded on it; the newest `limit`, oldest first.

        Raises:
            NotFound: the repository is not configured, or the issue has no file.
            InvalidInput: `number` is a pull request, or a file is not an issue or its comments.
        """
        self._not_a_pull(repo, number)
        read_issue(self._issues_dir, repo, number)  # the issue itself must exist, as on GitHub
        every = self._comments(repo, number)
        return every[-limit:], len(every)

    def _comments(self, repo: str, number: int) -> list[RawComment]:
        """Every comment of the issue, oldest first: those saved beside its file, then those posted here."""
        saved = read_comments(self._issues_dir, repo, number)
        posted = [
            RawComment(id=cid, author=self._bot, created=datetime.fromtimestamp(at, UTC).isoformat(), body=body)
            for cid, at, body in self._store.issue_comment_rows(repo, number)
        ]
        return saved + posted

    def comment_on_issue(self, repo: str, number: int, body: str) -> CommentRef:
        """A comment on the ticket's issue, kept in the store; the issue must have its file, as it must
        exist on GitHub (the same refusal `get_issue` gives).

        Raises:
            NotFound: the repository is not configured, or the issue has no file.
            InvalidInput: `number` is one of the local pull requests, or its file is not an issue.
        """
        self._not_a_pull(repo, number)
        read_issue(self._issues_dir, repo, number)
        comment_id = self._store.add_issue_comment(repo, number, body)
        return CommentRef(id=comment_id, url=f"local:{repo}/issues/{number}#comment-{comment_id}")

    def request_review(
        self, repo: str, number: int, reviewers: tuple[str, ...], team_reviewers: tuple[str, ...]
    ) -> PullRequestInfo:
        """Raises: NotFound: no such pull request in `repo`."""
        row = self._store.get(repo, number)
        row = self._store.update(
            repo,
            number,
            reviewers=sorted(set(row.reviewers) | set(reviewers)),
            teams=sorted(set(row.teams) | set(team_reviewers)),
        )
        return _info(row)

    def assign(self, repo: str, number: int, assignees: tuple[str, ...]) -> PullRequestInfo:
        """Raises: NotFound: no such pull request in `repo`."""
        row = self._store.get(repo, number)
        return _info(self._store.update(repo, number, assignees=sorted(set(row.assignees) | set(assignees))))


def _url(row: PullRow) -> str:
    return f"local:{row.repo}/pull/{row.number}"


def _info(row: PullRow) -> PullRequestInfo:
    state = row.state if row.state in ("open", "closed", "merged") else "closed"
    return PullRequestInfo(
        number=row.number,
        url=_url(row),
        title=row.title,
        state=state,  # type: ignore[arg-type]
        draft=row.draft,
        branch=row.branch,
        base=row.base,
        head_sha=row.head_sha,
        labels=row.labels,
        assignees=row.assignees,
        requested_reviewers=row.reviewers,
        requested_teams=row.teams,
    )
