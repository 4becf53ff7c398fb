"""The code-search tools' logic, apart from their registration (server.py) so it reads top to bottom.

Access: a caller reads only the repos its identity lists in policy. Those names become the
prefilter of every index query; a repo the caller may not read is reported exactly like a repo
that does not exist. Bad input (empty or oversized query, NUL bytes, `..` or absolute paths,
out-of-range lines) is a tool error naming what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from servers.code_search.embed import Embedder
from servers.code_search.filters import RepoView, quote, visible
from servers.code_search.model import KINDS, Hit, count_tokens
from servers.code_search.query import MAX_QUERY_CHARS
from servers.code_search.schemas import (
    CodeUnit,
    FileSlice,
    MethodSignature,
    RepoEntry,
    RepoList,
    SearchResult,
    SymbolResult,
)
from servers.code_search.search import Searcher, pack
from servers.code_search.settings import CodeSearchSettings
from servers.common.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # lancedb loads in a few seconds: only when the index is first opened
    from servers.code_search.index import CodeIndex

MAX_K = 50


def check_path(path: str, what: str = "path") -> str:
    """A repo-relative path with no `..`, no absolute start, no NUL or backslash.

    Raises:
        InvalidInput: the path breaks one of those rules.
    """
    if not path or "\0" in path or "\\" in path:
        raise InvalidInput(f"{what} must be a non-empty repo-relative path without NUL or backslash")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise InvalidInput(f"{what} must be relative to the repository root, not absolute")
    parts = path.split("/")
    if any(p == ".." for p in parts):
        raise InvalidInput(f"{what} must not contain '..'")
    return "/".join(p for p in parts if p not in ("", "."))


def _omitted(hit: Hit, budget: int) -> CodeUnit:
    """A unit that did not fit the token budget, as a one-line note of where to read it instead (a few dozen
    tokens: get_symbol scans at most 20 units, so its answer stays within about budget + 1,000 tokens)."""
    note = (
        f"// omitted: {hit.tokens} tokens do not fit the {budget}-token budget; "
        f"read_file path={hit.path[:300]} start_line={hit.start_line} end_line={hit.end_line}"
    )
    return CodeUnit.of(replace(hit, content=note, tokens=count_tokens(note)))


def _cap(lines: list[str], first: int, last: int, max_chars: int) -> tuple[int, str]:
    """Lines first..last (1-based) as text of at most about `max_chars` characters: whole lines while they fit
    (the returned last line says where it stopped), and a first line longer than that cut, with a marker."""
    size = 0
    for row in range(first, last + 1):
        size += len(lines[row - 1]) + (row > first)
        if size > max_chars:
            if row == first:
                line = lines[row - 1]
                marker = f"\n[... {len(line) - max_chars:,} more characters of line {row} not shown]"
                return row, line[:max_chars] + marker
            return row - 1, "\n".join(lines[first - 1 : row - 1])
    return last, "\n".join(lines[first - 1 : last])


class CodeSearchService:
    """Tool logic over one index; `open_index` is retried on each call until the index exists."""

    def __init__(self, settings: CodeSearchSettings, embedder: Embedder, open_index: Callable[[], CodeIndex]) -> None:
        self.settings = settings
        self.embedder = embedder
        self._open = open_index
        self._index: CodeIndex | None = None
        self._searcher: Searcher | None = None

    @property
    def index(self) -> CodeIndex:
        if self._index is None:
            self._index = self._open()  # raises UpstreamFailure("... missing or corrupt ...")
        return self._index

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(self.index, self.embedder)
        return self._searcher

    def views(self, allowed: Sequence[str], requested: Sequence[str] | None = None) -> list[RepoView]:
        """Published views of the requested repos, each of which the caller may read.

        Raises:
            NotFound: a requested repo is not readable by the caller or not indexed (same message).
        """
        published = {v.repo: v for v in self.index.views(list(allowed))} if allowed else {}
        if requested is None:
            return sorted(published.values(), key=lambda v: v.repo)
        out: list[RepoView] = []
        for name in dict.fromkeys(requested):
            if name not in published:
                raise NotFound(f"no repository named {name[:100]!r}")
            out.append(published[name])
        return out

    def search_code(
        self,
        allowed: Sequence[str],
        query: str,
        repos: Sequence[str] | None,
        k: int,
        kinds: Sequence[str],
        path_prefix: str | None,
        token_budget: int | None,
    ) -> SearchResult:
        if "\0" in query:
            raise InvalidInput("query must not contain NUL bytes")
        if not query.strip():
            raise InvalidInput("query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"query is longer than {MAX_QUERY_CHARS} characters; shorten it")
        bad = [kind for kind in kinds if kind not in KINDS]
        if bad:
            raise InvalidInput(f"unknown kind {bad[0][:40]!r}; known: {', '.join(KINDS)}")
        prefix = check_path(path_prefix, "path_prefix") if path_prefix else None
        views = self.views(allowed, repos)
        if not views:
            return SearchResult(units=[], tokens=0, omitted=0)
        hits = self.searcher.search(query, views, min(k, MAX_K), kinds=kinds, path_prefix=prefix)
        packed = pack(hits, token_budget or self.settings.default_token_budget)
        return SearchResult(units=[CodeUnit.of(h) for h in packed.hits], tokens=packed.tokens, omitted=packed.omitted)

    def get_symbol(self, allowed: Sequence[str], repo: str, symbol: str) -> SymbolResult:
        if not symbol.strip() or "\0" in symbol or len(symbol) > 300:
            raise InvalidInput("symbol must be 1-300 characters without NUL, e.g. pkg.Type.Method")
        views = self.views(allowed, [repo])
        base = visible(views)
        hits = self.index.scan(f"{base} AND symbol = {quote(symbol.strip())}", 20)
        if not hits and "." not in symbol and " " not in symbol.strip():
            hits = self.index.scan(f"{base} AND name = {quote(symbol.strip().lower())}", 20)
        if not hits:
            raise NotFound(f"no symbol {symbol[:100]!r} in {repo}")
        hits.sort(key=lambda h: (h.symbol, h.path, h.part, h.start_line))
        budget = self.settings.default_token_budget
        kept = {h.key for h in pack(hits, budget).hits}
        methods: list[MethodSignature] = []
        for owner in dict.fromkeys(h.symbol for h in hits if h.kind == "type"):
            found = self.index.scan(f"{base} AND parent = {quote(owner)} AND kind = 'method' AND part <= 1", 500)
            methods += [
                MethodSignature(symbol=m.symbol, signature=m.signature, path=m.path, start_line=m.start_line)
                for m in sorted(found, key=lambda m: m.symbol)
            ]
        units = [CodeUnit.of(h) if h.key in kept else _omitted(h, budget) for h in hits]
        return SymbolResult(units=units, methods=methods)

    def read_file(self, allowed: Sequence[str], repo: str, path: str, start: int | None, end: int | None) -> FileSlice:
        clean = check_path(path)
        (view,) = self.views(allowed, [repo])
        text = self.index.file_text(view, clean)
        if text is None:
            raise NotFound(f"no indexed file {clean[:200]!r} in {repo}")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        total = len(lines)
        first = 1 if start is None else start
        if first < 1 or first > max(total, 1):
            raise InvalidInput(f"start_line {first} is out of range: the file has {total} lines")
        last = total if end is None else end
        if last < first:
            raise InvalidInput(f"end_line {last} is before start_line {first}")
        last = min(last, total, first + self.settings.max_read_lines - 1)
        last, body = _cap(lines, first, last, self.settings.max_read_chars)
        return FileSlice(
            repo=repo, path=clean, commit=view.commit, start_line=first, end_line=last, total_lines=total, text=body
        )

    def list_repos(self, allowed: Sequence[str]) -> RepoList:
        if not allowed:
            return RepoList(repos=[])
        info = self.index.repo_info()
        return RepoList(
            repos=[
                RepoEntry(name=n, commit=info[n]["commit"], indexed_at=info[n]["indexed_at"])
                for n in sorted(info)
                if n in set(allowed)
            ]
        )
