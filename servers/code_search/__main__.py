"""`code-search-mcp` / `python -m servers.code_search`: wiring only."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from servers.code_search.embed import LazyEmbedder
from servers.code_search.server import build_server
from servers.code_search.settings import CodeSearchSettings, check_embedder, open_embedder
from servers.common.policy import Policies
from servers.common.serve import main_for


def _build(settings: CodeSearchSettings, policies: Policies) -> MCPServer[Any]:
    check_embedder(settings)
    # The model loads (and, the first time, installs) in the background: tools/list answers at once.
    embedder = LazyEmbedder(lambda: open_embedder(settings), settings.embedder)
    server = build_server(settings, policies, embedder)
    embedder.start()
    return server


main = main_for(CodeSearchSettings, _build)

if __name__ == "__main__":
    main()
