"""GitHub issues kept as files, for the local backend (no GitHub to read them from).

One file per issue, `<issues dir>/<repo slug>/<number>.json` (or `.yaml`/`.yml`), in GitHub's own REST
shape: what `gh api repos/OWNER/REPO/issues/N` prints can be saved as is. Only the fields the agent
reads are kept (title, body, state, labels, author, dates, address); the rest is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from servers.common.errors import InvalidInput, NotFound
from servers.common.repo_names import repo_slug

from .models import RawIssue

MAX_FILE_BYTES = 1 << 20
SUFFIXES = (".json", ".yaml", ".yml")


class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1, max_length=100)


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    login: str = Field(min_length=1, max_length=100)


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


def read_issue(issues_dir: Path, repo: str, number: int) -> RawIssue:
    """Issue `number` of `repo` from its file.

    Raises:
        NotFound: no file for it.
        InvalidInput: the file is too large, not JSON/YAML, not an issue, or a pull request.
    """
    folder = issues_dir / repo_slug(repo)
    path = next((folder / f"{number}{s}" for s in SUFFIXES if (folder / f"{number}{s}").is_file()), None)
    if path is None:
        raise NotFound(
            f"no issue #{number} in {repo}: the local backend reads {repo_slug(repo)}/{number}.json (or .yaml) "
            "in its issues directory (GORESOLVE_GITHUB_PR_ISSUES_DIR)"
        )
    where = f"issue #{number} of {repo} ({path.name})"
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{where}: larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        issue = IssueFile.model_validate(data)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{where}: unreadable ({type(exc).__name__})") from None
    except (json.JSONDecodeError, yaml.YAMLError):
        raise InvalidInput(f"{where}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"])) or "(the file)"
        raise InvalidInput(f"{where}: {field}: {first['msg']}") from None
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
