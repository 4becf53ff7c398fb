"""GitHub issues kept as files, for the local backend (no GitHub to read them from).

One file per issue, `<issues dir>/<repo slug>/<number>.json` (or `.yaml`/`.yml`), in GitHub's own REST
shape: what `gh api repos/OWNER/REPO/issues/N` prints can be saved as is. Only the fields the agent
reads are kept (title, body, state, labels, author, dates, address); the rest is ignored. Its comments
may be saved beside it, `<number>.comments.json` (or .yaml), as `gh api --paginate --slurp
repos/OWNER/REPO/issues/N/comments` (every page) or the same without the flags (the first 30) prints them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

import yamlfiles
from servers.common.errors import InvalidInput, NotFound
from servers.common.repo_names import repo_slug

from .models import RawComment, RawIssue

M = TypeVar("M", bound=BaseModel)

MAX_FILE_BYTES = 1 << 20
SUFFIXES = (".json", ".yaml", ".yml")


class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1, max_length=100)


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    login: str = Field(min_length=1, max_length=100)


class CommentFile(BaseModel):
    """The part of GitHub's issue comment object the agent reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int = Field(ge=1)
    body: str | None = None
    user: _User | None = None
    created_at: str | None = Field(default=None, max_length=64)


class _CommentList(RootModel[list[CommentFile]]):
    """One page as `gh api` prints it, or every page as `gh api --paginate --slurp` prints them (a list of
    pages, read as one list)."""

    @model_validator(mode="before")
    @classmethod
    def _pages(cls, data: Any) -> Any:
        if isinstance(data, list) and data and all(isinstance(page, list) for page in cast(list[Any], data)):
            return [comment for page in cast(list[list[Any]], data) for comment in page]
        return data


class IssueFile(BaseModel):
    """The part of GitHub's issue object the agent reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    title: str = Field(min_length=1, max_length=1000)
    body: str | None = None
    state: Literal["open", "closed"] = "open"
    labels: list[str | _Named] = Field(default_factory=list[str | _Named], max_length=100)
    user: _User | None = None
    html_url: str | None = Field(default=None, max_length=2000)
    created_at: str | None = Field(default=None, max_length=64)
    updated_at: str | None = Field(default=None, max_length=64)
    pull_request: dict[str, Any] | None = None


def _file(issues_dir: Path, repo: str, stem: str) -> Path | None:
    folder = issues_dir / repo_slug(repo)
    return next((folder / f"{stem}{s}" for s in SUFFIXES if (folder / f"{stem}{s}").is_file()), None)


def _parsed(path: Path, model: type[M], where: str) -> M:
    """The file at `path` read as `model`. Raises InvalidInput naming `where` and the first bad field."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{where}: larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.suffix == ".json" else yamlfiles.safe_load(text)  # no repeated key
        return model.model_validate(data)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{where}: unreadable ({type(exc).__name__})") from None
    except (json.JSONDecodeError, RecursionError, yaml.YAMLError) as exc:
        detail = ": ".join(yamlfiles.describe(exc)) if isinstance(exc, yaml.YAMLError) else type(exc).__name__
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise InvalidInput(f"{where}: not valid {kind}", detail=f"{path.name}: {detail}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"])) or "(the file)"
        raise InvalidInput(f"{where}: {field}: {first['msg']}") from None


def read_issue(issues_dir: Path, repo: str, number: int) -> RawIssue:
    """Issue `number` of `repo` from its file.

    Raises:
        NotFound: no file for it.
        InvalidInput: the file is too large, not JSON/YAML, not an issue, or a pull request.
    """
    path = _file(issues_dir, repo, str(number))
    if path is None:
        raise NotFound(
            f"no issue #{number} in {repo}: the local backend reads {repo_slug(repo)}/{number}.json (or .yaml) "
            "in its issues directory (GORESOLVE_GITHUB_PR_ISSUES_DIR)"
        )
    issue = _parsed(path, IssueFile, f"issue #{number} of {repo} ({path.name})")
    if issue.pull_request is not None:
        raise InvalidInput(f"#{number} is a pull request, not an issue")
    return RawIssue(
        title=issue.title,
        body=issue.body,
        state=issue.state,
        labels=tuple(label if isinstance(label, str) else label.name for label in issue.labels),
        author=issue.user.login if issue.user else None,
        url=issue.html_url or f"local:{repo}/issues/{number}",
        created=issue.created_at,
        updated=issue.updated_at,
    )


def read_comments(issues_dir: Path, repo: str, number: int) -> list[RawComment]:
    """The comments saved beside issue `number`, oldest first: `<number>.comments.json` (or .yaml), a list in
    GitHub's shape (what `gh api repos/OWNER/REPO/issues/N/comments` prints), or a list of such pages (what
    `gh api --paginate --slurp …` prints, for more than one page). None when there is no such file.

    Raises:
        InvalidInput: the file is too large, not JSON/YAML, or not a list of comments.
    """
    path = _file(issues_dir, repo, f"{number}.comments")
    if path is None:
        return []
    comments = _parsed(path, _CommentList, f"comments of issue #{number} of {repo} ({path.name})")
    return [
        RawComment(id=c.id, author=c.user.login if c.user else None, created=c.created_at, body=c.body or "")
        for c in comments.root
    ]
