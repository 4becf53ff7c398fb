"""Fakes that ship with the agent: in-process MCP servers with the four servers' tool names and result
shapes, and a scripted "developer" that fixes the bundled calc bug in a legitimate edit → test → edit
cycle. Used where hundreds of runs must be cheap (fault injection, overhead benchmarks); every
outcome test runs on the real servers instead.

The fake go-test-runner judges a patch by what it does to `Add` (no Go is run); the fake github-pr
keeps pull requests in a dict. Their tool surfaces are published under `goresolve://surface` like
the real ones, so pinning works the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import ToolAnnotations

from agent.llm.types import ChatRequest, Message, ToolCall
from agent.servers import InProcessServer, ServersConfig

CALC = (
    "// Package calc does arithmetic.\npackage calc\n\n// Add returns a + b.\n"
    "func Add(a, b int) int {\n\treturn a - b\n}\n"
)
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)


def _surface(server: MCPServer[Any], name: str) -> None:
    @server.resource("goresolve://surface", mime_type="application/json")
    def surface() -> str:  # pyright: ignore[reportUnusedFunction]
        return json.dumps({"fingerprint": "sha256:" + hashlib.sha256(name.encode()).hexdigest()})


def _verdict(patch: str | None, run: str | None = None) -> dict[str, Any]:
    fixed = bool(patch) and "+\treturn a + b" in (patch or "")
    got = {"+\treturn a * b": 6}.get(next((k for k in ("+\treturn a * b",) if k in (patch or "")), ""), -1)
    if fixed:
        report = {"ok": True, "summary": "1 package(s): 1 ok; 1 test(s) passed.", "tests": [], "build_errors": []}
        report["packages"] = [{"name": "example.com/calc", "status": "ok", "passed": 1, "failed": 0}]
    else:
        line = f"calc_test.go:7: Add(2, 3) = {got}, want 5"
        failing = {"name": "TestAdd", "package": "example.com/calc", "status": "fail", "output": [line]}
        report = {
            "ok": False,
            "summary": f"1 package(s): 1 failed; 0 test(s) passed. 1 test(s) failed: TestAdd ({line}).",
            "tests": [failing],
            "build_errors": [],
        }
    return {"ok": report["ok"], "summary": report["summary"], "report": report}


@dataclass
class FakeWorld:
    """The state behind the fake servers: the repository's one file and the pull requests opened."""

    files: dict[str, str] = field(default_factory=lambda: {"calc.go": CALC})
    pulls: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    calls: list[str] = field(default_factory=list[str])
    broken: bool = False  # go-test-runner fails every run_tests with a protocol error
    test_runs: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])  # run_tests' arguments
    # run_tests' result for a patch (None: the base) and a -run pattern (None: every test)
    verdict: Callable[[str | None, str | None], dict[str, Any]] = _verdict

    def servers(self) -> ServersConfig:
        jira: MCPServer[Any] = MCPServer("jira-read")
        code: MCPServer[Any] = MCPServer("code-search")
        tests: MCPServer[Any] = MCPServer("go-test-runner")
        prs: MCPServer[Any] = MCPServer("github-pr")
        world = self

        def ticket(key: str) -> dict[str, Any]:
            return {
                "key": key,
                "summary": {"text": "Add returns the difference instead of the sum", "untrusted": True},
                "description": {"text": "calc.Add(2, 3) returns -1. TestAdd fails.", "untrusted": True},
                "components": ["billing"],
            }

        def get_issue(key: str) -> dict[str, Any]:
            world.calls.append("get_issue")
            return ticket(key)

        def get_github_issue(repo: str, number: int) -> dict[str, Any]:  # the same ticket, filed on GitHub
            world.calls.append("get_github_issue")
            return ticket(f"{repo}#{number}")

        def get_github_issue_comments(repo: str, number: int, limit: int = 20) -> dict[str, Any]:
            world.calls.append("get_github_issue_comments")
            note = {"text": "It started after the refactor of calc.go.", "trust": "untrusted", "truncated": False}
            comment = {"id": 1, "author": "octocat", "created": "2026-01-05T09:00:00Z", "body": note}
            return {"key": f"{repo}#{number}", "comments": [comment], "total": 1}

        def list_repos() -> dict[str, Any]:
            return {"repos": [{"name": "calc", "commit": "0" * 40, "indexed_at": "2026-01-05T09:00:00Z"}]}

        def search_code(
            query: str, repos: list[str] | None = None, k: int = 10, token_budget: int | None = None
        ) -> dict[str, Any]:
            world.calls.append("search_code")
            text = world.files["calc.go"]
            return {
                "units": [
                    {
                        "repo": "calc",
                        "path": "calc.go",
                        "start_line": 1,
                        "end_line": 7,
                        "symbol": "calc.Add",
                        "kind": "func",
                        "code": text,
                    }
                ]
            }

        def read_file(
            repo: str, path: str, start_line: int | None = None, end_line: int | None = None
        ) -> dict[str, Any]:
            world.calls.append("read_file")
            if path not in world.files:
                raise ToolError(f"no file {path}")
            text = world.files[path]
            n = len(text.splitlines())
            return {
                "repo": repo,
                "path": path,
                "commit": "0" * 40,
                "start_line": 1,
                "end_line": n,
                "total_lines": n,
                "text": text,
            }

        def run_tests(
            repo: str,
            ref: str,
            packages: list[str],
            patch: str | None = None,
            run: str | None = None,
            timeout_s: int | None = None,
            dependents: bool = False,
        ) -> dict[str, Any]:
            world.calls.append("run_tests")
            world.test_runs.append({"packages": packages, "patched": patch is not None, "run": run})
            world.test_runs[-1]["dependents"] = dependents
            if world.broken:  # a crashing server answers with a protocol error, as the platform does
                raise MCPError(code=-32603, message="internal error (trace 0)")
            return world.verdict(patch, run)

        def check_patch(repo: str, ref: str, patch: str) -> dict[str, Any]:
            return {"allowed": "_test.go" not in patch, "reasons": []}

        def open_pull_request(
            repo: str,
            base: str,
            ticket: str,
            title: str,
            body: str,
            patch: str,
            draft: bool = True,
            labels: list[str] | None = None,
        ) -> dict[str, Any]:
            world.calls.append("open_pull_request")
            number = len(world.pulls) + 1
            world.pulls[ticket] = {
                "number": number,
                "draft": draft,
                "body": body,
                "labels": labels or [],
                "patch": patch,
            }
            return {
                "number": number,
                "url": f"local:{repo}/pull/{number}",
                "branch": f"goresolve/{ticket}",
                "head_sha": "1" * 40,
                "base": base,
                "created": True,
            }

        def assign(repo: str, number: int, assignees: list[str]) -> dict[str, Any]:
            return {"number": number, "assignees": assignees}

        for server, name in ((jira, "jira-read"), (code, "code-search"), (tests, "go-test-runner"), (prs, "github-pr")):
            _surface(server, name)
        jira.add_tool(get_issue, annotations=READ, structured_output=True)
        code.add_tool(list_repos, annotations=READ, structured_output=True)
        code.add_tool(search_code, annotations=READ, structured_output=True)
        code.add_tool(read_file, annotations=READ, structured_output=True)
        tests.add_tool(run_tests, annotations=READ, structured_output=True)
        tests.add_tool(check_patch, annotations=READ, structured_output=True)
        prs.add_tool(open_pull_request, annotations=WRITE, structured_output=True)
        prs.add_tool(get_github_issue, annotations=READ, structured_output=True)
        prs.add_tool(get_github_issue_comments, annotations=READ, structured_output=True)
        prs.add_tool(assign, annotations=WRITE, structured_output=True)
        return ServersConfig(
            servers=(
                InProcessServer("jira-read", jira),
                InProcessServer("code-search", code),
                InProcessServer("go-test-runner", tests),
                InProcessServer("github-pr", prs),
            )
        )


WRONG = {"path": "calc.go", "search": "return a - b", "replace": "return a * b"}
RIGHT = {"path": "calc.go", "search": "return a * b", "replace": "return a + b"}


def developer(request: ChatRequest) -> Message:
    """A scripted developer: a wrong first edit, tests, the right edit, tests, submit.

    It decides from the tool results so far (not from how many times it was called), so a corrected
    format error or a retried call simply repeats the intended step.
    """
    results = [m.content for m in request.messages if m.role == "tool"]
    edits = sum(r.startswith(("edited", "created")) for r in results)
    last_ok = next((r for r in reversed(results) if not r.startswith("error")), "")
    if edits == 0:
        call = ("edit", WRONG)
    elif last_ok.startswith("edited"):
        call = ("run_tests", {})
    elif edits == 1:
        call = ("edit", RIGHT)
    else:
        call = ("submit", {"title": "Add returns the sum", "summary": "Add subtracted b; it now adds it."})
    return Message("assistant", "", (ToolCall(f"call_{len(results)}", call[0], json.dumps(call[1])),))
