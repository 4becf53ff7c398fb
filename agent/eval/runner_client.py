"""go-test-runner over MCP: the eval harness's only way to run a task's tests.

The harness starts `go-test-runner-mcp` over stdio (the installed server, never imported: the
agent side talks MCP only) with a policy directory that names the task repositories, and calls
its `run_tests` tool. A tool error (patch refused, does not apply, ...) is a `ToolRefused`; the
structured result comes back as a plain dict in the server's own schema.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp_types import TextContent

from agent.servers import server_env

SERVER_MODULE = "servers.go_test_runner"  # started as a process, never imported here
_RUN_TIMEOUT_S = 900


class ToolRefused(Exception):
    """The runner answered with a tool error; `text` is its short message."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    @property
    def tampering(self) -> bool:
        """True when the patch was refused by policy (tests weakened, protected paths)."""
        return "refused by policy" in self.text


@dataclass(frozen=True)
class RunnerConfig:
    """Where the server keeps its state and which policy it loads."""

    policy_dir: Path
    state_dir: Path
    identity: str
    max_concurrency: int
    gocache: Path | None = None
    gomodcache: Path | None = None

    def env(self) -> dict[str, str]:
        prefix = "GORESOLVE_GO_TEST_RUNNER_"
        env = server_env("go-test-runner", os.environ)  # no other server's token, no model key, no secrets dir
        env |= {
            f"{prefix}POLICY_DIR": str(self.policy_dir),
            f"{prefix}STATE_DIR": str(self.state_dir),
            f"{prefix}STDIO_IDENTITY": self.identity,
            f"{prefix}MAX_CONCURRENCY": str(self.max_concurrency),
            f"{prefix}MAX_QUEUE": str(max(16, 4 * self.max_concurrency)),
            f"{prefix}LOG_LEVEL": env.get(f"{prefix}LOG_LEVEL", "WARNING"),
        }
        for name, value in (("GOCACHE", self.gocache), ("GOMODCACHE", self.gomodcache)):
            if value is not None and f"{prefix}{name}" not in env:
                env[f"{prefix}{name}"] = str(value)
        return env


class TestRunner:
    """A started go-test-runner session."""

    __test__ = False  # not a pytest class

    def __init__(self, client: Client) -> None:
        self._client = client

    async def run_tests(
        self, repo: str, ref: str, packages: list[str], *, patch: str | None = None, run: str | None = None
    ) -> dict[str, Any]:
        """Call `run_tests`; returns the structured RunResult.

        Raises:
            ToolRefused: the server answered with a tool error.
            mcp.MCPError: a protocol error (for example, the repository is not granted to the identity).
        """
        args: dict[str, Any] = {"repo": repo, "ref": ref, "packages": packages, "timeout_s": _RUN_TIMEOUT_S}
        if patch:
            args["patch"] = patch
        if run:
            args["run"] = run
        result = await self._client.call_tool("run_tests", args)
        if result.is_error or not isinstance(result.structured_content, dict):
            first = result.content[0] if result.content else None
            raise ToolRefused(first.text if isinstance(first, TextContent) else "run_tests returned no result")
        content: dict[str, Any] = result.structured_content
        return content


@asynccontextmanager
async def start_runner(config: RunnerConfig) -> AsyncGenerator[TestRunner]:
    """Start the server over stdio and yield a client for it; the process ends with the block."""
    params = StdioServerParameters(command=sys.executable, args=["-m", SERVER_MODULE], env=config.env())
    async with Client(params, read_timeout_seconds=_RUN_TIMEOUT_S + 60) as client:
        yield TestRunner(client)
