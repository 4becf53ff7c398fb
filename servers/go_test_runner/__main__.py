"""`go-test-runner-mcp` / `python -m servers.go_test_runner`: wiring only."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from servers.common.policy import Policies
from servers.common.serve import main_for
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.server import build_server
from servers.go_test_runner.settings import GoTestRunnerSettings


def _build(settings: GoTestRunnerSettings, policies: Policies) -> MCPServer[Any]:
    return build_server(settings, policies, Runner.create(settings, policies))


main = main_for(GoTestRunnerSettings, _build)

if __name__ == "__main__":
    main()
