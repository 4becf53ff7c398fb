"""SQL filter strings for the index, built from validated parts only.

The access restriction and the generation window of each repo become one `WHERE` clause that the
index applies as a prefilter, inside the query: top-k is filled from allowed rows only.
A row of repo r is visible at generation g when `gen_added <= g < gen_removed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from servers.code_search.model import KINDS
from servers.common.repo_names import check_repo_name

LIVE = 2**62  # gen_removed of a row that is still current


@dataclass(frozen=True, slots=True)
class RepoView:
    """A repo as one reader sees it: the generation published when the reader looked."""

    repo: str
    gen: int
    commit: str


def quote(value: str) -> str:
    """A SQL string literal (single quotes doubled; NUL removed)."""
    return "'" + value.replace("\0", "").replace("'", "''") + "'"


def visible(views: Sequence[RepoView]) -> str:
    """The prefilter selecting exactly the rows the given repo views may see.

    Raises:
        ValueError: a repo name is not a valid repo name (never reaches SQL), or `views` is empty.
    """
    if not views:
        raise ValueError("no repos to search")
    clauses: list[str] = []
    for view in views:
        check_repo_name(view.repo)
        clauses.append(f"(repo = {quote(view.repo)} AND gen_added <= {view.gen} AND gen_removed > {view.gen})")
    # The leading `repo IN` lets the scalar index on repo narrow the scan before the per-repo windows.
    names = ", ".join(quote(v.repo) for v in views)
    return f"(repo IN ({names}) AND (" + " OR ".join(clauses) + "))"


def narrow(base: str, kinds: Sequence[str] = (), path_prefix: str | None = None) -> str:
    """`base` AND the optional kind and path-prefix restrictions.

    Raises:
        ValueError: an unknown kind.
    """
    parts = [base]
    if kinds:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind(s): {', '.join(unknown)}")
        parts.append("kind IN (" + ", ".join(quote(k) for k in kinds) + ")")
    if path_prefix:
        parts.append(f"starts_with(path, {quote(path_prefix)})")
    return " AND ".join(parts)


def any_of(column: str, values: Sequence[str]) -> str:
    """`column IN (...)` over quoted literals (column names are fixed by the caller)."""
    return f"{column} IN (" + ", ".join(quote(v) for v in values) + ")"
