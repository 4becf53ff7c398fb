"""`code-search-mcp` / `python -m servers.code_search`: wiring only."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from servers.code_search.server import build_server
from servers.code_search.settings import CodeSearchSettings, open_embedder
from servers.common.policy import Policies
from servers.common.serve import main_for


def _build(settings: CodeSearchSettings, policies: Policies) -> MCPServer[Any]:
    return build_server(settings, policies, open_embedder(settings))


main = main_for(CodeSearchSettings, _build)

if __name__ == "__main__":
    main()
