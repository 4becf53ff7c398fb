"""Repository names: one validated type for policies, the CLI and every tool.

A name is either a plain name (`sample-service`) or GitHub's `owner/name` (`zeromicro/go-zero`):
each part starts with a letter or digit and holds only letters, digits, `.`, `_` and `-`, at most
100 characters. So a name never contains `..` as a part, a backslash, a quote or whitespace, and
it is safe in a SQL literal. `repo_slug` maps it to one file-name component (`owner+name`: `+` is
not allowed in names, so two names never share a slug).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
REPO_NAME_PATTERN = rf"^{_PART}(/{_PART})?$"
_RE = re.compile(REPO_NAME_PATTERN)
_HINT = "a name like sample-service or owner/name (letters, digits, . _ -)"


def check_repo_name(value: str) -> str:
    """`value` if it is a valid repository name.

    Raises:
        ValueError: it is not; the message shows what a name looks like.
    """
    if not _RE.fullmatch(value):
        shown = value[:100] + ("..." if len(value) > 100 else "")
        raise ValueError(f"invalid repository name {shown!r}: expected {_HINT}")
    return value


# GitHub's owner/name of a repository as a push or issue event gives it (owner: letters, digits, `-`, `_` for
# managed users; name: also `.`, and it may start with one, as `.github` does), never `.` or `..` as the name:
# the webhook gateway and the re-index worker build paths from it.
GITHUB_FULL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}/(?!\.\.?$)[A-Za-z0-9._-]{1,100}")


def repo_slug(name: str) -> str:
    """One file-name component for a valid repository name: `owner/name` -> `owner+name`.

    Raises:
        ValueError: `name` is not a valid repository name.
    """
    return check_repo_name(name).replace("/", "+")


RepoName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=201,
        pattern=REPO_NAME_PATTERN,
        description="Repository name: a plain name or owner/name, as list_repos shows.",
    ),
    AfterValidator(check_repo_name),
]
