"""End to end: `github-pr-mcp` as a real subprocess over stdio, local backend, real git."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from .conftest import FIX_PATCH, git, make_remote

SCRIPT = Path(sys.executable).parent / "github-pr-mcp"


def _setup(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    make_remote(tmp_path / "origin")  # leaves a working repository in origin/src
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "access.yaml").write_text("identities:\n  local-dev: {roles: [agent], repos: [svc]}\n")
    (policy_dir / "tools.yaml").write_text("roles:\n  agent: {scopes: [pr:read, pr:write]}\n")
    (policy_dir / "repos.yaml").write_text("repos:\n  svc: {path: ../origin/src}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    env.update(
        GORESOLVE_GITHUB_PR_STATE_DIR=str(tmp_path / "state"),
        GORESOLVE_GITHUB_PR_POLICY_DIR=str(policy_dir),
    )
    return policy_dir, env


async def test_stdio_console_script_opens_a_pull_request(tmp_path: Path) -> None:
    _, env = _setup(tmp_path)
    command = str(SCRIPT) if SCRIPT.exists() else sys.executable
    args = [] if SCRIPT.exists() else ["-m", "servers.github_pr"]
    async with Client(StdioServerParameters(command=command, args=args, env=env)) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool(
            "open_pull_request",
            {"repo": "svc", "base": "main", "ticket": "SVC-1", "title": "Fix Add", "body": "b", "patch": FIX_PATCH},
        )
    assert names == ["assign", "comment", "comment_on_issue", "get_pull_request", "open_pull_request", "request_review"]
    assert not result.is_error, result.content
    remote = tmp_path / "state" / "github-pr" / "remotes" / "svc.git"
    assert git("rev-parse", "goresolve/SVC-1-fix-add", cwd=remote) == result.structured_content["head_sha"]


def test_the_github_backend_without_a_token_stops_with_a_clear_message(tmp_path: Path) -> None:
    _, env = _setup(tmp_path)
    env["GORESOLVE_GITHUB_PR_BACKEND"] = "github"
    proc = subprocess.run(
        [sys.executable, "-m", "servers.github_pr"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 2
    assert "GORESOLVE_GITHUB_PR_TOKEN" in proc.stderr
    assert "Traceback" not in proc.stderr
