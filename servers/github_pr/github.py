"""GitHub backend: PyGithub and the git data API (blobs, trees, commits, refs) — no clone needed.

A change is built from the commit the branch started from: the files the patch touches are read
as blobs, patched by `git apply` in a scratch directory, written back as blobs, and combined with
the base tree into a new tree and a commit by the bot, on top of the branch's previous head.
The branch ref is created, or moved without force (a fast-forward), so GitHub itself refuses to
overwrite commits someone else pushed.

An existing branch is built on only when it is provably the bot's: its head is the commit this
process last pushed there, or GitHub's own record of the ref (the repository activity API: who
created it and who pushed to it since) shows only the bot's login, ending at the current head.
A commit's author and trailers prove nothing (anyone with push access can write them).

422 "already exists" on the ref or the pull request means a concurrent call won the race: the call
continues on the winner's branch and pull request.

Requests go through `Calls` (bounded retries, error mapping); see `github_calls.py`.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Container, Iterable, Mapping
from typing import Any, TypeVar

from github import Auth, Github, InputGitAuthor, InputGitTreeElement
from github.GithubObject import GithubObject
from github.GitRef import GitRef
from github.Issue import Issue
from github.PaginatedList import PaginatedList
from github.PullRequest import PullRequest
from github.Repository import Repository
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass
from requests.adapters import HTTPAdapter

from servers.common.errors import Conflict, InvalidInput, NotFound, UpstreamFailure

from . import bounded_http, git
from .github_calls import UNUSABLE, Calls
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

# Each lost attempt means a concurrent call for the same ticket succeeded, so a few attempts suffice.
_RACE_ATTEMPTS = 5
_RACE_PAUSE_S = 0.05  # at most 0.05 + 0.1 + 0.2 + 0.4 s in all


class _LostRace(Exception):
    """A ref create/update got 422: a concurrent call for the same ticket got there first."""


T = TypeVar("T", bound=GithubObject)
PER_PAGE = 100  # GitHub's largest page: the fewest requests for a list
MAX_PAGES = 10  # a listing of more than 1,000 branches or pull requests for one ticket is not GitHub's


def connect(
    token: str,
    *,
    base_url: str,
    timeout_s: float,
    seconds_between_writes: float,
    max_body_bytes: int = bounded_http.DEFAULT_MAX_BODY_BYTES,
) -> Github:
    """A PyGithub client with its own retries off (see github_calls), GitHub Enterprise support, and every
    connection bounded (body cap, redirects, the call's budget: see bounded_http)."""
    client = Github(
        auth=Auth.Token(token),
        base_url=base_url.rstrip("/"),
        timeout=max(1, round(timeout_s)),
        retry=None,
        per_page=PER_PAGE,
        seconds_between_requests=None,
        seconds_between_writes=seconds_between_writes or None,
    )
    _install(client, max_body_bytes)
    return client


def _bounded_classes(
    max_body_bytes: int,
) -> tuple[type[HTTPRequestsConnectionClass], type[HTTPSRequestsConnectionClass]]:
    def adapter(connection: Any) -> bounded_http.GitHubAdapter:
        return bounded_http.GitHubAdapter(
            max_body_bytes=max_body_bytes,
            max_retries=connection.retry,
            pool_connections=connection.pool_size,
            pool_maxsize=connection.pool_size,
        )

    class Http(HTTPRequestsConnectionClass):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.adapter = adapter(self)
            self.session.mount("http://", self.adapter)

    class Https(HTTPSRequestsConnectionClass):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.adapter = adapter(self)
            self.session.mount("https://", self.adapter)

    return Http, Https


def _install(client: Github, max_body_bytes: int) -> None:
    """Make every connection `client` opens (to its base URL, and to any host PyGithub follows) use
    `GitHubAdapter`. PyGithub has no per-client hook, only process-wide `Requester.injectConnectionClasses`
    (which also turns connection reuse off), so the instance's own (name-mangled) attributes are set.

    Raises:
        RuntimeError: this PyGithub no longer has those attributes (a test pins them).
    """
    requester = client.requester
    http, https = _bounded_classes(max_body_bytes)
    names = ("_Requester__connectionClass", "_Requester__httpConnectionClass", "_Requester__httpsConnectionClass")
    if not all(hasattr(requester, name) for name in names):
        raise RuntimeError("PyGithub's Requester changed: cannot bound its connections")
    scheme_class = https if issubclass(getattr(requester, names[0]), HTTPSRequestsConnectionClass) else http
    for name, cls in zip(names, (scheme_class, http, https), strict=True):
        setattr(requester, name, cls)


def current_connection_adapter(client: Github) -> HTTPAdapter | None:
    """The adapter of the client's open connection, if any (for the test that pins `install`)."""
    connection = getattr(client.requester, "_Requester__connection", None)
    found = getattr(connection, "adapter", None)
    return found if isinstance(found, HTTPAdapter) else None


def walk(pages: PaginatedList[T], what: str, max_pages: int = MAX_PAGES) -> list[T]:
    """Every element of a paginated listing, following GitHub's `Link: rel=next` for at most `max_pages`
    pages; a next page that names one already read is an unusable answer (a listing that never ends).

    Raises:
        UpstreamFailure: more than `max_pages` pages, or a repeated page. GithubException etc.: as PyGithub.
    """
    found: list[T] = []
    seen: set[str] = set()
    for _ in range(max_pages):
        if not pages._couldGrow():  # pyright: ignore[reportPrivateUsage]  # PyGithub's page step, no public one
            return found
        cursor = getattr(pages, "_PaginatedList__nextUrl", None)
        if isinstance(cursor, str):
            if cursor in seen:
                raise UpstreamFailure(UNUSABLE, detail=f"{what}: GitHub named page {cursor[:200]} again")
            seen.add(cursor)
        found += pages._grow()  # pyright: ignore[reportPrivateUsage]
    if pages._couldGrow():  # pyright: ignore[reportPrivateUsage]
        raise UpstreamFailure(f"GitHub listed more than {max_pages} pages of {what}", detail=what)
    return found


def patched_paths(patch: str) -> set[str]:
    """Every path `git apply` touches for `patch` (old and new names, as git reads them: `git.patch_paths`).

    The base tree's files at these paths are what `git apply` needs to see: the files it modifies,
    deletes or renames, and any existing file a "new" file would collide with.
    """
    return git.patch_paths(patch)


def unread_paths(touched: Iterable[str], read: Container[str], base: Iterable[str]) -> list[str]:
    """One line per path of `touched` (what git's result changes) that the base tree (`base`, the paths
    of its files) holds but git was not given as a pre-image in `read`: as a file, a directory, or a file
    where the path needs a directory. Writing such a path on top of the base tree would replace what is
    there without the policy having seen it."""
    files = set(base)
    dirs = {path[:i] for path in files for i, c in enumerate(path) if c == "/"}
    problems: list[str] = []
    for path in sorted(touched):
        if path in read:
            continue
        if path in files:
            problems.append(f"{path} already exists in the base tree")
        elif path in dirs:
            problems.append(f"{path} is a directory in the base tree")
        else:
            parents = [path[:i] for i, c in enumerate(path) if c == "/" and path[:i] in files]
            if parents:
                problems.append(f"{path} needs {parents[0]}, a file in the base tree, to be a directory")
    return problems


class GitHubBackend:
    """`PullRequestBackend` on GitHub. `repos` maps policy repo names to `owner/name`."""

    def __init__(
        self, client: Github, repos: Mapping[str, str], calls: Calls | None = None, *, login: str | None = None
    ) -> None:
        self._client = client
        self._names = dict(repos)
        self._calls = calls or Calls()
        self._repos: dict[str, Repository] = {}
        self._lock = threading.Lock()
        self._login = login  # the actor GitHub records for the bot's pushes; asked from GET /user when None
        self._pushed: dict[tuple[str, str], str] = {}  # (repo, branch) -> head this process last pushed

    def login(self) -> str:
        """The bot's GitHub login (configured, or the token's user, asked once).

        Raises:
            UpstreamFailure: GitHub would not say (an App installation token cannot: configure the login).
            RateLimited: GitHub rate limited the request.
        """
        if self._login is None:
            try:
                login = self._calls("authenticated user", lambda: self._client.get_user().login)
            except UpstreamFailure as exc:
                raise UpstreamFailure(
                    "cannot tell this token's GitHub login (a GitHub App token cannot be asked): set "
                    "GORESOLVE_GITHUB_PR_GITHUB_LOGIN, e.g. to <app-slug>[bot]",
                    status=exc.status,
                    detail=exc.detail,
                ) from exc
            with self._lock:
                self._login = login
        return self._login

    def _check_owned(self, repo: Repository, name: str, branch: str, head: str) -> None:
        """Refuse unless `branch` at `head` is provably the bot's (see the module docstring).

        Raises:
            Conflict: the branch was created by someone else, someone else pushed to it, or its head is not
                the bot's last push; nothing is changed.
            _LostRace: another of the bot's processes pushed after `head` was read (the caller starts over).
            RateLimited, UpstreamFailure: GitHub failed.
        """
        with self._lock:
            if self._pushed.get((name, branch)) == head:
                return
        me = self.login().lower()
        ref = f"refs/heads/{branch}"

        def activity(**query: object) -> list[dict[str, Any]]:
            params = {"ref": ref, "per_page": 100, **query}
            _headers, data = repo.requester.requestJsonAndCheck("GET", f"{repo.url}/activity", parameters=params)
            return [a for a in data or [] if isinstance(a, dict)]  # pyright: ignore[reportUnknownVariableType]

        newest = self._calls(f"activity of {branch}", activity)  # newest first
        creations = [i for i, a in enumerate(newest) if a.get("activity_type") == "branch_creation"]
        window = newest[: creations[0] + 1] if creations else newest
        if not creations:
            created = self._calls(f"creation of {branch}", lambda: activity(activity_type="branch_creation"))
            window = window + created[:1]
        creator = _actor(window[-1]) if window and window[-1].get("activity_type") == "branch_creation" else None
        if creator is None:
            raise Conflict(f"branch {branch}: GitHub has no record of its creation; the bot will not build on it")
        if creator != me:
            raise Conflict(f"branch {branch} was not created by this bot; it does not adopt branches it did not push")
        others = sorted({who or "a deleted account" for a in window if (who := _actor(a)) != me})
        if others:
            raise Conflict(
                f"branch {branch} moved since this bot last pushed it (pushed by {', '.join(others)}); "
                "the bot will not build on it"
            )
        if window[0].get("after") != head and any(a.get("after") == head for a in window):
            # The bot itself (another of its processes) pushed again after `head` was read: start over
            # from the new head rather than refuse.
            raise _LostRace
        if window[0].get("after") != head:
            # A push GitHub has not listed yet: someone else's, or this bot's from another process moments ago.
            raise Conflict(
                f"branch {branch} moved since this bot last pushed it (its head is not a push GitHub lists for "
                "the bot); the bot will not build on it. If the bot pushed it moments ago, try again shortly"
            )

    def repository(self, name: str) -> Repository:
        """The PyGithub repository for a policy repo name (fetched once, then cached).

        Raises:
            NotFound: no GitHub name in policy, or the token cannot see the repository.
            RateLimited, UpstreamFailure: GitHub failed.
        """
        full = self._names.get(name)
        if full is None:
            raise NotFound(f"repository {name} has no GitHub name in policy (repos.yaml `github`)")
        with self._lock:
            cached = self._repos.get(name)
        if cached is None:
            cached = self._calls(f"repository {full}", lambda: self._client.get_repo(full))
            with self._lock:
                self._repos[name] = cached
        return cached

    @property
    def calls(self) -> Calls:
        return self._calls

    @property
    def names(self) -> dict[str, str]:
        return dict(self._names)

    # --- operations -------------------------------------------------------------------------------

    def open_or_update(self, change: Change) -> PullRequestRef:
        """See `PullRequestBackend.open_or_update`.

        Raises:
            NotFound: repository or base branch.
            Conflict: someone else's commit on the branch, a closed pull request, a patch that does
                not apply (also: its result would write over a base path git was not given), or a branch
                that moved while we built on it.
            InvalidInput: `change.check` refused the change as git applied it; nothing is written then.
            RateLimited, UpstreamFailure: GitHub failed.
        """
        for attempt in range(_RACE_ATTEMPTS - 1):
            try:
                return self._open_or_update(change)
            except _LostRace:
                # Another process created or moved the branch: start again from its head, after a short
                # random pause so that two callers that yielded to each other do not collide again.
                time.sleep(random.uniform(0, _RACE_PAUSE_S * 2**attempt))  # noqa: S311 - jitter, not crypto
        try:
            return self._open_or_update(change)
        except _LostRace as exc:
            raise Conflict(f"branch of {change.ticket} keeps moving; try again later") from exc

    def _open_or_update(self, change: Change) -> PullRequestRef:
        repo = self.repository(change.repo)
        refs = self._calls(
            "list branches", lambda: walk(repo.get_git_matching_refs(f"heads/{change.branch_glob}"), "branches")
        )
        pull: PullRequest | None = None
        current: GitRef | None = None
        if refs:
            current = self._own_branch(repo, change.repo, refs)
            branch, parent = current.ref.removeprefix("refs/heads/"), current.object.sha
            # The head is the bot's own commit (checked above), so its trailer is the bot's.
            head = self._calls("read branch head", lambda: repo.get_git_commit(parent))
            start = trailer(head.message, TRAILER_BASE)
            if start is None:
                raise Conflict(f"branch {branch}: the bot's commit has no {TRAILER_BASE} trailer; not updating it")
            pull = self._find_pull(repo, branch)
            refusal = (
                update_refusal(change, pull.number, pull.state, pull.base.ref, bool(pull.draft))
                if pull is not None
                else None
            )
            if refusal is not None:
                raise Conflict(refusal)
        else:
            branch = change.branch
            try:
                base = self._calls("base branch", lambda: repo.get_git_ref(f"heads/{change.base}"))
            except NotFound as exc:
                raise NotFound(f"base branch {change.base} does not exist in {change.repo}") from exc
            start = parent = base.object.sha
        sha = self._commit(repo, change, start, parent, reuse_parent=current is not None)
        try:
            if current is not None and sha == parent:
                pass  # the head already holds base + patch (the same call again): nothing to push
            elif current is not None:  # never forced: GitHub refuses anything but a fast-forward
                moving = current
                self._calls("update branch", lambda: moving.edit(sha, force=False))
            else:
                created_ref = self._calls("create branch", lambda: repo.create_git_ref(f"refs/heads/{branch}", sha))
                self._yield_if_raced(repo, change, created_ref)
        except Conflict as exc:
            raise _LostRace from exc
        with self._lock:
            self._pushed[(change.repo, branch)] = sha
        created = pull is None
        if pull is None:
            try:
                pull = self._calls(
                    "open pull request",
                    lambda: repo.create_pull(
                        base=change.base, head=branch, title=change.title, body=change.body, draft=change.draft
                    ),
                )
            except Conflict:
                pull = self._find_pull(repo, branch)
                if pull is None:
                    if not self._branch_exists(repo, branch):
                        # We built on a branch whose creator saw a rival and deleted it (see
                        # `_yield_if_raced`): GitHub refuses a pull request from a missing head.
                        raise _LostRace from None
                    raise
                created = False
        if not created:
            existing = pull
            self._calls("update pull request", lambda: existing.edit(title=change.title, body=change.body))
        if change.labels:
            # PyGithub's add_to_labels posts a bare JSON array, a legacy form GitHub's REST description
            # no longer documents; send the documented `{"labels": [...]}` object instead.
            issue_url, labels = pull.issue_url, {"labels": list(change.labels)}
            self._calls(
                "label pull request",
                lambda: repo.requester.requestJsonAndCheck("POST", f"{issue_url}/labels", input=labels),
            )
        return PullRequestRef(
            number=pull.number, url=pull.html_url, branch=branch, head_sha=sha, base=pull.base.ref, created=created
        )

    def _yield_if_raced(self, repo: Repository, change: Change, created: GitRef) -> None:
        """Another process may have created a branch for this ticket under a different slug meanwhile.

        GitHub cannot create "the first ref with this prefix" atomically, so after creating ours we
        look again: whoever sees another branch of the ticket deletes its own (just created, under
        the bot prefix, no pull request yet) and starts over on the other. A caller that saw only its
        own branch keeps it, and any later creator sees it and yields, so two branches never survive;
        two callers that see each other both yield and retry after a random pause (bounded attempts).
        """
        refs = self._calls(
            "list branches", lambda: walk(repo.get_git_matching_refs(f"heads/{change.branch_glob}"), "branches")
        )
        if any(r.ref != created.ref for r in refs):
            if created.ref.startswith(f"refs/heads/{change.branch_glob}"):
                self._calls("delete raced branch", created.delete)
            raise _LostRace

    def _branch_exists(self, repo: Repository, branch: str) -> bool:
        try:
            self._calls("read branch", lambda: repo.get_git_ref(f"heads/{branch}"))
        except NotFound:
            return False
        return True

    def _own_branch(self, repo: Repository, name: str, refs: list[GitRef]) -> GitRef:
        """The bot's branch among `refs` (the ticket's branches under the prefix): the one this process pushed
        last first, then the others by name, the first that `_check_owned` accepts. Someone's branch named like
        the bot's (`goresolve/SVC-7-a`, sorting first) no longer hides the bot's own.

        Raises:
            Conflict: none of them is provably the bot's (the first one's refusal); nothing is changed.
            _LostRace, RateLimited, UpstreamFailure: as `_check_owned`.
        """
        with self._lock:
            pushed = {branch for (repo_name, branch) in self._pushed if repo_name == name}
        ordered = sorted(refs, key=lambda r: (r.ref.removeprefix("refs/heads/") not in pushed, r.ref))
        refusal: Conflict | None = None
        for ref in ordered:
            try:
                self._check_owned(repo, name, ref.ref.removeprefix("refs/heads/"), ref.object.sha)
            except Conflict as exc:
                refusal = refusal or exc
                continue
            return ref
        assert refusal is not None  # `refs` is not empty
        raise refusal

    def _find_pull(self, repo: Repository, branch: str) -> PullRequest | None:
        """The bot's own pull request from `branch`, or None when there is none.

        Raises:
            Conflict: only someone else's pull request comes from `branch`: the bot never writes to it.
        """
        owner = repo.full_name.split("/", 1)[0]
        pulls: list[PullRequest] = self._calls(
            "find pull request", lambda: walk(repo.get_pulls(state="all", head=f"{owner}:{branch}"), "pull requests")
        )
        me = self.login().lower()
        own = [p for p in pulls if p.user.login.lower() == me]
        if not own and pulls:
            raise Conflict(
                f"pull request #{pulls[0].number} from {branch} was opened by someone else; the bot does not write "
                "to a person's pull request"
            )
        return own[0] if own else None

    def _commit(self, repo: Repository, change: Change, start: str, parent: str, *, reuse_parent: bool) -> str:
        """The commit of base + patch, built with the git data API; `change.check` sees git's diff of the
        new tree before any blob is written. With `reuse_parent`, a tree that is already `parent`'s makes no
        commit: `parent` is returned."""
        base = self._calls("read base commit", lambda: repo.get_git_commit(start))
        tree = self._calls("read base tree", lambda: repo.get_git_tree(base.tree.sha, recursive=True))
        if tree.raw_data.get("truncated"):
            raise UpstreamFailure(f"the tree of {change.repo} is too large for the git data API")
        entries = {e.path: e for e in tree.tree if e.type == "blob"}
        files: dict[str, tuple[str, bytes]] = {}
        for path in sorted(patched_paths(change.patch)):
            if path in entries:
                blob = self._calls(f"read {path}", lambda p=path: repo.get_git_blob(entries[p].sha))
                files[path] = (entries[path].mode, base64.b64decode(blob.content))
        result = git.apply_to_files(change.patch, files, change.check)
        # git was given the base file at every path it names. What its result could still write over unseen
        # (and the tree below would replace without the check having judged it) is a base directory, a base
        # file where it needs a directory (git refuses both on a full tree), or a file the names missed.
        base_paths = [e.path for e in tree.tree if e.type != "tree"]  # blobs, symlinks, submodules
        unread = unread_paths(result.files, files, base_paths)
        if unread:
            raise Conflict(f"patch does not apply: {'; '.join(unread)}")  # what git says of these on a full tree
        elements: list[InputGitTreeElement] = []
        for path, staged in result.files.items():
            if staged is None:
                if path in entries:
                    elements.append(InputGitTreeElement(path, entries[path].mode, "blob", sha=None))
                continue
            mode, content = staged
            encoded = base64.b64encode(content).decode()
            blob = self._calls(f"write {path}", lambda e=encoded: repo.create_git_blob(e, "base64"))
            elements.append(InputGitTreeElement(path, mode, "blob", sha=blob.sha))  # pyright: ignore[reportArgumentType]
        new_tree = self._calls("write tree", lambda: repo.create_git_tree(elements, base_tree=base.tree))
        parent_commit = base if parent == start else self._calls("read head", lambda: repo.get_git_commit(parent))
        if reuse_parent and parent_commit.tree.sha == new_tree.sha:
            return parent
        who = InputGitAuthor(change.author.name, change.author.email)
        commit = self._calls(
            "write commit",
            lambda: repo.create_git_commit(
                change.commit_message(start), new_tree, [parent_commit], author=who, committer=who
            ),
        )
        return commit.sha

    def get_pull_request(self, repo: str, number: int) -> PullRequestInfo:
        """Raises: NotFound; RateLimited, UpstreamFailure."""
        gh = self.repository(repo)
        return _info(self._calls(f"pull request #{number}", lambda: gh.get_pull(number)))

    def opened_by_bot(self, repo: str, number: int) -> bool:
        """GitHub's record of who opened the pull request is the bot's login. Raises: NotFound; RateLimited,
        UpstreamFailure."""
        gh = self.repository(repo)
        pull = self._calls(f"pull request #{number}", lambda: gh.get_pull(number))
        return pull.user.login.lower() == self.login().lower()

    def comment(self, repo: str, number: int, body: str) -> CommentRef:
        """Not retried on 5xx (a retry could post twice). Raises: NotFound; RateLimited, UpstreamFailure."""
        gh = self.repository(repo)
        pull = self._calls(f"pull request #{number}", lambda: gh.get_pull(number))
        note = self._calls("comment", lambda: pull.create_issue_comment(body), retry_5xx=False)
        return CommentRef(id=note.id, url=note.html_url)

    def _issue(self, repo: str, number: int) -> Issue:
        """Issue `number`; a pull request (GitHub serves it as an issue too) is refused.
        Raises: InvalidInput (a pull request); NotFound; RateLimited, UpstreamFailure."""
        gh = self.repository(repo)
        issue = self._calls(f"issue #{number}", lambda: gh.get_issue(number))
        if issue.pull_request is not None:
            raise InvalidInput(f"#{number} is a pull request, not an issue")
        return issue

    def get_issue(self, repo: str, number: int) -> RawIssue:
        """Raises: InvalidInput (a pull request); NotFound; RateLimited, UpstreamFailure."""
        issue = self._issue(repo, number)
        return RawIssue(
            title=issue.title or "",
            body=issue.body,
            state="closed" if issue.state == "closed" else "open",
            labels=tuple(label.name for label in issue.labels),
            author=issue.user.login if issue.user else None,
            url=issue.html_url,
            created=issue.created_at.isoformat() if issue.created_at else None,
            updated=issue.updated_at.isoformat() if issue.updated_at else None,
            comments=issue.comments,
        )

    def get_issue_comments(self, repo: str, number: int, limit: int) -> tuple[list[RawComment], int]:
        """The newest `limit` (at most PER_PAGE) comments, oldest first: GitHub lists comments oldest first, so
        they are on the last page the issue's comment count gives, and at most the page before it.
        Raises: InvalidInput (a pull request); NotFound; RateLimited, UpstreamFailure."""
        issue = self._issue(repo, number)
        total = issue.comments
        if total < 1:
            return [], 0
        pages = issue.get_comments()
        last = (total - 1) // PER_PAGE
        found = self._calls(f"comments of issue #{number}", lambda: pages.get_page(last))
        if len(found) < limit and last > 0:
            found = self._calls(f"comments of issue #{number}", lambda: pages.get_page(last - 1)) + found
        return [
            RawComment(
                id=c.id,
                author=c.user.login if c.user else None,
                created=c.created_at.isoformat() if c.created_at else None,
                body=c.body or "",
            )
            for c in found[-limit:]
        ], total

    def comment_on_issue(self, repo: str, number: int, body: str) -> CommentRef:
        """Comment on an issue (never a pull request). Not retried on 5xx.
        Raises: InvalidInput (a pull request); NotFound; RateLimited, UpstreamFailure."""
        issue = self._issue(repo, number)
        note = self._calls("comment on issue", lambda: issue.create_comment(body), retry_5xx=False)
        return CommentRef(id=note.id, url=note.html_url)

    def request_review(
        self, repo: str, number: int, reviewers: tuple[str, ...], team_reviewers: tuple[str, ...]
    ) -> PullRequestInfo:
        """Raises: NotFound; Conflict (422: e.g. the reviewer is not a collaborator); RateLimited, UpstreamFailure."""
        gh = self.repository(repo)
        pull = self._calls(f"pull request #{number}", lambda: gh.get_pull(number))
        self._calls(
            "request review",
            lambda: pull.create_review_request(reviewers=list(reviewers), team_reviewers=list(team_reviewers)),
        )
        return self.get_pull_request(repo, number)

    def assign(self, repo: str, number: int, assignees: tuple[str, ...]) -> PullRequestInfo:
        """Raises: NotFound; RateLimited, UpstreamFailure."""
        gh = self.repository(repo)
        pull = self._calls(f"pull request #{number}", lambda: gh.get_pull(number))
        self._calls("assign", lambda: pull.add_to_assignees(*assignees))
        return self.get_pull_request(repo, number)


def _actor(activity: Mapping[str, Any]) -> str | None:
    """The lower-cased login that performed `activity` (None for a deleted account)."""
    actor = activity.get("actor")
    login = actor.get("login") if isinstance(actor, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return login.lower() if isinstance(login, str) else None


def _info(pull: PullRequest) -> PullRequestInfo:
    state = "merged" if pull.merged else ("open" if pull.state == "open" else "closed")
    return PullRequestInfo(
        number=pull.number,
        url=pull.html_url,
        title=pull.title,
        state=state,
        draft=bool(pull.draft),
        branch=pull.head.ref,
        base=pull.base.ref,
        head_sha=pull.head.sha,
        labels=[label.name for label in pull.labels],
        assignees=[user.login for user in pull.assignees],
        requested_reviewers=[user.login for user in pull.requested_reviewers],
        requested_teams=[team.slug for team in pull.requested_teams],
    )
