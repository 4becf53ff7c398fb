"""`go-test-runner-mcp` / `python -m servers.go_test_runner`: wiring only (`--check`: see doctor.py)."""

from __future__ import annotations

import sys
from typing import Any

import typer
from mcp.server.mcpserver import MCPServer

from servers.common.policy import Policies
from servers.common.serve import main_for
from servers.go_test_runner import doctor
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.server import build_server
from servers.go_test_runner.settings import GoTestRunnerSettings


def _build(settings: GoTestRunnerSettings, policies: Policies) -> MCPServer[Any]:
    return build_server(settings, policies, Runner.create(settings, policies))


_serve = main_for(
    GoTestRunnerSettings,
    _build,
    more_help="go-test-runner-mcp --check (alone): print the sandbox's protections on this host and exit, 0 when "
    "they are strong, 1 when not (as `goresolve doctor`).",
)


def main() -> None:
    """Serve, or with `--check` print the sandbox's protections on this host and exit (0 strong, 1 not)."""
    if sys.argv[1:] == ["--check"]:
        try:
            doctor.command()
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
    _serve()


if __name__ == "__main__":
    main()
