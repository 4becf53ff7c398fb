"""`github-pr-mcp` / `python -m servers.github_pr`: wiring only."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from servers.common.policy import Policies
from servers.common.serve import main_for
from servers.github_pr.backends import make_backend
from servers.github_pr.server import build_server
from servers.github_pr.settings import GitHubPrSettings


def _build(settings: GitHubPrSettings, policies: Policies) -> MCPServer[Any]:
    backend, refused = make_backend(settings, policies)
    return build_server(settings, policies, backend, refused_repos=refused)


main = main_for(GitHubPrSettings, _build)

if __name__ == "__main__":
    main()
