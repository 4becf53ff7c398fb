"""code-search: read-only, access-controlled search over indexed Go repositories.

Four tools, all read-only (the index is written by the indexer, never through a tool):
`search_code`, `get_symbol`, `read_file`, `list_repos`. Every call is confined to the repos the
caller's identity may read (policies/access.yaml); the restriction is a prefilter inside the index
query, and a forbidden repo is indistinguishable from a missing one. Index and model work runs in
a worker thread so the event loop stays responsive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from servers.code_search.embed import Embedder
from servers.code_search.query import MAX_QUERY_CHARS
from servers.code_search.schemas import FileSlice, RepoList, SearchResult, SymbolResult
from servers.code_search.service import MAX_K, CodeSearchService
from servers.code_search.settings import CodeSearchSettings, open_index
from servers.common.app import Platform, current_caller
from servers.common.policy import Policies
from servers.common.repo_names import RepoName
from servers.common.tools import ToolSpec

if TYPE_CHECKING:  # lancedb loads in a few seconds: the index is opened on the first call
    from servers.code_search.index import CodeIndex

T = TypeVar("T")

INSTRUCTIONS = (
    "Read-only search over indexed Go repositories. search_code finds functions, methods, types and docs "
    "for a ticket, an error message or a stack trace and returns whole units within a token budget; "
    "get_symbol fetches a unit by name (a type with its methods' signatures); read_file reads lines "
    "of an indexed file at the indexed commit; list_repos shows what you may search."
)


def _allowed() -> tuple[str, ...]:
    caller = current_caller()
    return caller.identity.repos if caller.identity else ()


async def _run(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


def build_server(
    settings: CodeSearchSettings,
    policies: Policies,
    embedder: Embedder,
    index_opener: Callable[[], CodeIndex] | None = None,
) -> MCPServer[Any]:
    """Assemble the code-search MCP server over the index at `settings.db_dir` (opened on first use)."""
    service = CodeSearchService(settings, embedder, index_opener or (lambda: open_index(settings, embedder)))
    platform = Platform.create("code-search", settings, policies, instructions=INSTRUCTIONS)

    @platform.tool(
        ToolSpec.reader(
            "code:read",
            name="search_code",
            open_world=False,
            description=(
                "Search Go code and Markdown docs of the repositories you may read. The query may be plain words, "
                "identifiers (parseHTTPHeader, Router.Match), file paths, error strings or a whole Go stack trace; "
                "names in it weigh most. Returns whole units (function, method, type, const/var block, doc section), "
                "best first, filling token_budget without cutting any unit."
            ),
        )
    )
    async def search_code(
        query: Annotated[str, Field(max_length=MAX_QUERY_CHARS, description="What to look for.")],
        repos: Annotated[list[RepoName] | None, Field(max_length=20, description="Limit to these repos.")] = None,
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many units to rank.")] = 10,
        kinds: Annotated[
            list[str] | None,
            Field(max_length=8, description="Only these kinds: func, method, type, const, var, package, doc, window."),
        ] = None,
        path_prefix: Annotated[str | None, Field(max_length=300, description="Only paths under this prefix.")] = None,
        token_budget: Annotated[
            int | None, Field(ge=100, le=64_000, description="Token budget (default 4000).")
        ] = None,
    ) -> SearchResult:
        allowed = _allowed()
        return await _run(lambda: service.search_code(allowed, query, repos, k, kinds or [], path_prefix, token_budget))

    @platform.tool(
        ToolSpec.reader(
            "code:read",
            name="get_symbol",
            open_world=False,
            description=(
                "Fetch a unit by qualified symbol (pkg.Func, pkg.Type, pkg.Type.Method) or bare name. For a type, "
                "also the signatures of all its methods."
            ),
        )
    )
    async def get_symbol(
        repo: RepoName,
        symbol: Annotated[str, Field(min_length=1, max_length=300, description="e.g. mux.Router.ServeHTTP")],
    ) -> SymbolResult:
        allowed = _allowed()
        return await _run(lambda: service.get_symbol(allowed, repo, symbol))

    @platform.tool(
        ToolSpec.reader(
            "code:read",
            name="read_file",
            open_world=False,
            description=(
                f"Read lines of an indexed file (.go or .md) at the indexed commit; at most {settings.max_read_lines} "
                "lines per call."
            ),
        )
    )
    async def read_file(
        repo: RepoName,
        path: Annotated[str, Field(min_length=1, max_length=500, description="Path relative to the repo root.")],
        start_line: Annotated[int | None, Field(ge=1, description="First line (1-based).")] = None,
        end_line: Annotated[int | None, Field(ge=1, description="Last line, inclusive.")] = None,
    ) -> FileSlice:
        allowed = _allowed()
        return await _run(lambda: service.read_file(allowed, repo, path, start_line, end_line))

    @platform.tool(
        ToolSpec.reader(
            "code:read",
            name="list_repos",
            open_world=False,
            description="The repositories you may search, with their indexed commit.",
        )
    )
    async def list_repos() -> RepoList:
        allowed = _allowed()
        return await _run(lambda: service.list_repos(allowed))

    return platform.finish()
