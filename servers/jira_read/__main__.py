"""`jira-read-mcp` / `python -m servers.jira_read`: wiring only."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from servers.common.policy import Policies
from servers.common.serve import main_for
from servers.jira_read.backends import make_backend
from servers.jira_read.server import build_server
from servers.jira_read.settings import JiraReadSettings


def _build(settings: JiraReadSettings, policies: Policies) -> MCPServer[Any]:
    return build_server(settings, policies, make_backend(settings))


main = main_for(JiraReadSettings, _build)

if __name__ == "__main__":
    main()
