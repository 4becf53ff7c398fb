"""Contract tests: go-test-runner through the public MCP client, in memory, on the fixture repos."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from servers.common.errors import FORBIDDEN
from servers.common.tools import surface_document
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.server import build_server
from tests.support import assert_matches_snapshot, call

from .conftest import make_policies

SNAPSHOT = pathlib.Path(__file__).resolve().parents[1] / "snapshots" / "go-test-runner.tools.json"


@pytest.fixture
def server(runner: Runner, repos: dict[str, pathlib.Path]) -> Any:
    return build_server(runner.settings, make_policies(repos), runner)


def server_as(identity: str, runner: Runner, repos: dict[str, pathlib.Path]) -> Any:
    settings = runner.settings.model_copy(update={"stdio_identity": identity})
    return build_server(settings, make_policies(repos), runner)


async def test_run_tests_returns_the_structured_report(server: Any) -> None:
    result = await call(server, "run_tests", {"repo": "fail", "ref": "main", "packages": ["./..."], "run": "TestSub"})
    assert not result.is_error
    body = result.structured_content
    assert body["ok"] is False
    assert body["summary"].startswith("1 package(s): 1 failed; 1 test(s) passed. 2 test(s) failed: TestSub/5-3")
    assert [t["name"] for t in body["report"]["tests"]] == ["TestSub", "TestSub/5-3", "TestSub/3-3"]
    assert body["sandbox"]["network_isolated"] is True


async def test_check_build_reports_unknown_imports(server: Any) -> None:
    result = await call(server, "check_build", {"repo": "unknownimport", "ref": "main", "packages": ["./..."]})
    assert not result.is_error
    kinds = {(d["file"], d["kind"]) for d in result.structured_content["diagnostics"]}
    assert kinds == {("hasher/hasher.go", "unknown_import"), ("thirdparty/thirdparty.go", "unknown_import")}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"packages": ["/etc"]}, "packages.0"),
        ({"packages": ["./..."], "flags": ["-exec=/bin/sh"]}, "flags.0"),
        ({"packages": ["./..."], "flags": ["-toolexec", "x"]}, "flags.0"),
        ({"packages": ["./..."], "ref": "--upload-pack=x"}, "ref"),
        ({"packages": ["./..."], "run": "a b"}, "run"),
    ],
)
async def test_hostile_payloads_are_tool_errors(server: Any, args: dict[str, Any], needle: str) -> None:
    result = await call(server, "run_tests", {"repo": "pass", "ref": "main", **args})
    assert result.is_error
    assert needle in result.content[0].text
    assert "Traceback" not in result.content[0].text


async def test_a_refused_patch_is_a_tool_error_with_reasons(server: Any) -> None:
    patch = (
        "--- a/util/util_test.go\n+++ b/util/util_test.go\n@@ -22,3 +22,2 @@\n"
        ' func TestSkipped(t *testing.T) {\n-\tt.Skip("not on this platform")\n }\n'
    )
    result = await call(server, "run_tests", {"repo": "pass", "ref": "main", "packages": ["./..."], "patch": patch})
    assert result.is_error
    assert result.content[0].text == (
        "Error executing tool run_tests: patch refused by policy: "
        'util/util_test.go:23: modified_test_line: changes existing line t.Skip("not on this platform")'
    )


@pytest.mark.parametrize(("identity", "repo"), [("reader", "pass"), ("stranger", "pass"), ("agent", "not-in-policy")])
async def test_callers_without_the_scope_or_the_repo_get_a_protocol_error(
    runner: Runner, repos: dict[str, pathlib.Path], identity: str, repo: str
) -> None:
    """No scope, or a repo outside the caller's grants (existing or not): the same FORBIDDEN."""
    args = {"repo": repo, "ref": "main", "packages": ["./..."]}
    with pytest.raises(MCPError) as err:
        await call(server_as(identity, runner, repos), "run_tests", args)
    assert err.value.error.code == FORBIDDEN


async def test_tool_surface_matches_snapshot(server: Any) -> None:
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        surface = json.loads((await client.read_resource("goresolve://surface")).contents[0].text)
    current = surface_document(tools)
    assert [t.name for t in tools] == ["check_build", "check_patch", "run_tests"]
    assert all(t["annotations"]["readOnlyHint"] and not t["annotations"]["openWorldHint"] for t in current)
    assert surface["tools"] == current
    assert_matches_snapshot(SNAPSHOT, surface)
