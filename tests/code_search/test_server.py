"""Contract tests: code-search through the public MCP client, in memory, over an index built in the test."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.server import build_server
from servers.code_search.settings import CodeSearchSettings
from servers.common.policy import Policies, load_policies
from tests.conftest import write_policies
from tests.support import assert_matches_snapshot, call

from .conftest import GOSRC, commit_all, git

SNAPSHOT = Path(__file__).parent / "snapshots" / "code-search.tools.json"
REPOS = ("alpha", "beta", "gamma", "delta")
IDENTITIES = {  # identity -> repos it may read
    "dev-all": REPOS,
    "dev-alpha": ("alpha",),
    "dev-beta-gamma": ("beta", "gamma"),
    "dev-delta": ("delta",),
    "dev-none": (),
    "dev-alpha-delta": ("alpha", "delta"),
}
SHARED = "package {p}\n\n// Fetch loads the widget from the store.\nfunc Fetch(id int) error {{ return nil }}\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Policies]:
    """An index of four repos with overlapping code, and a policy granting each identity some of them."""
    root = tmp_path_factory.mktemp("world")
    embedder = HashingEmbedder()
    index = CodeIndex(root / "db", embedder.model_id, embedder.dim, create=True)
    for name in REPOS:
        repo = root / name
        shutil.copytree(GOSRC / "shapes", repo)
        (repo / "fetch.go").write_text(SHARED.format(p=name))
        (repo / "outside.go").symlink_to(root / "secret.go")
        (root / "secret.go").write_text("package secret\n")
        git(repo, "init", "-q", "-b", "main")
        commit_all(repo, "init")
        index_repo(index, embedder, repo, name)
    access = "identities:\n" + "".join(
        f"  {n}: {{roles: [coder], repos: [{', '.join(r)}]}}\n" for n, r in IDENTITIES.items()
    )
    access += "  triage: {roles: [triage], repos: [alpha]}\n"
    files = {
        "access.yaml": access,
        "tools.yaml": "roles:\n  coder: {scopes: [code:read]}\n  triage: {scopes: [jira:read]}\n",
        "repos.yaml": "repos:\n" + "".join(f"  {n}: {{path: /nowhere/{n}}}\n" for n in REPOS),
    }
    return root, load_policies(write_policies(root / "policies", files))


def make_server(world: tuple[Path, Policies], identity: str = "dev-all", db: str = "db") -> Any:
    root, policies = world
    settings = CodeSearchSettings(
        state_dir=root / "state", db_dir=root / db, stdio_identity=identity, embedder="hashing", read_consistency_s=0
    )
    return build_server(settings, policies, HashingEmbedder())


async def ok(server: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await call(server, tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def err(server: Any, tool: str, args: dict[str, Any]) -> str:
    result = await call(server, tool, args)
    assert result.is_error
    text: str = result.content[0].text
    assert "Traceback" not in text
    return text


async def test_search_code_returns_whole_ranked_units(world: tuple[Path, Policies]) -> None:
    found = await ok(
        make_server(world), "search_code", {"query": "NewCircle rejects a negative radius", "repos": ["alpha"], "k": 3}
    )
    top = found["units"][0]
    assert {k: top[k] for k in ("repo", "path", "start_line", "end_line", "symbol", "kind")} == {
        "repo": "alpha",
        "path": "shapes.go",
        "start_line": 36,
        "end_line": 42,
        "symbol": "shapes.NewCircle",
        "kind": "func",
    }
    assert top["code"].startswith("// NewCircle validates r") and top["code"].endswith("}")
    assert top["tokens"] > 0 and found["tokens"] == sum(u["tokens"] for u in found["units"])


async def test_token_budget_is_filled_with_whole_units(world: tuple[Path, Policies]) -> None:
    found = await ok(make_server(world), "search_code", {"query": "circle area", "k": 20, "token_budget": 100})
    assert 0 < found["tokens"] <= 100 and found["omitted"] > 0


async def test_get_symbol_gives_a_type_with_its_methods(world: tuple[Path, Policies]) -> None:
    found = await ok(make_server(world), "get_symbol", {"repo": "alpha", "symbol": "shapes.Circle"})
    assert [u["symbol"] for u in found["units"]] == ["shapes.Circle"]
    assert [(m["symbol"], m["signature"]) for m in found["methods"]] == [
        ("shapes.Circle.Area", "func (c *Circle) Area() float64"),
        ("shapes.Circle.Perimeter", "func (c Circle) Perimeter() float64"),
    ]
    by_name = await ok(make_server(world), "get_symbol", {"repo": "alpha", "symbol": "parseHTTPHeader"})
    assert [u["symbol"] for u in by_name["units"]] == ["shapes.parseHTTPHeader"]
    assert "no symbol" in await err(make_server(world), "get_symbol", {"repo": "alpha", "symbol": "shapes.Nope"})


async def test_read_file_reads_indexed_lines_at_the_indexed_commit(world: tuple[Path, Policies]) -> None:
    server = make_server(world)
    part = await ok(server, "read_file", {"repo": "alpha", "path": "./shapes.go", "start_line": 31, "end_line": 34})
    assert part["text"].split("\n") == [
        "// Area returns the area of the circle.",
        "func (c *Circle) Area() float64 {",
        "\treturn math.Pi * c.Radius * c.Radius",
        "}",
    ]
    assert (part["path"], part["total_lines"], len(part["commit"])) == ("shapes.go", 66, 40)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"path": "../secret.go"}, "'..'"),
        ({"path": "/etc/passwd"}, "not absolute"),
        ({"path": "shapes.go\0.md"}, "NUL"),
        ({"path": "outside.go"}, "no indexed file"),  # a symlink out of the repo is never indexed
        ({"path": "zz_generated.go"}, "no indexed file"),
        ({"path": "shapes.go", "start_line": 67}, "out of range"),
        ({"path": "shapes.go", "start_line": 10, "end_line": 5}, "before start_line"),
    ],
)
async def test_read_file_bad_input_is_a_clear_tool_error(
    world: tuple[Path, Policies], args: dict[str, Any], message: str
) -> None:
    assert message in await err(make_server(world), "read_file", {"repo": "alpha", **args})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"query": "   "}, "empty"),
        ({"query": "x" * 10_001}, "10000"),
        ({"query": "a\0b"}, "NUL"),
        ({"query": "circle", "kinds": ["struct"]}, "unknown kind"),
        ({"query": "circle", "path_prefix": "../"}, "'..'"),
        ({"query": "circle", "k": 0}, "k"),
    ],
)
async def test_search_bad_input_is_a_clear_tool_error(
    world: tuple[Path, Policies], args: dict[str, Any], message: str
) -> None:
    assert message in await err(make_server(world), "search_code", args)


async def test_regex_and_sql_metacharacters_are_just_text(world: tuple[Path, Policies]) -> None:
    for query in ["(*Circle).Area[", "'; DROP TABLE chunks; --", "a|b.*c+?{2}\\d", "repo = 'beta' OR 1=1"]:
        found = await ok(make_server(world, "dev-alpha"), "search_code", {"query": query})
        assert {u["repo"] for u in found["units"]} <= {"alpha"}


async def test_forbidden_repo_looks_exactly_like_a_missing_one(world: tuple[Path, Policies]) -> None:
    server = make_server(world, "dev-alpha")
    for tool, extra in (
        ("search_code", {"query": "x"}),
        ("get_symbol", {"symbol": "shapes.Circle"}),
        ("read_file", {"path": "shapes.go"}),
    ):
        repos_arg = (lambda r: {"repos": [r]}) if tool == "search_code" else (lambda r: {"repo": r})
        forbidden = await err(server, tool, {**extra, **repos_arg("beta")})
        missing = await err(server, tool, {**extra, **repos_arg("zzzz")})
        assert forbidden.replace("beta", "NAME") == missing.replace("zzzz", "NAME")
    assert (await ok(server, "list_repos", {}))["repos"][0]["name"] == "alpha"
    assert [r["name"] for r in (await ok(server, "list_repos", {}))["repos"]] == ["alpha"]


async def test_missing_index_is_reported_not_empty(world: tuple[Path, Policies]) -> None:
    assert "code index is missing" in await err(make_server(world, db="no-db"), "search_code", {"query": "circle"})
    root, _ = world
    broken = root / "broken-db"
    shutil.copytree(root / "db", broken)
    for data in broken.glob("*__chunks.lance/data/*"):
        data.write_bytes(b"garbage")
    assert "missing or corrupt" in await err(make_server(world, db="broken-db"), "search_code", {"query": "circle"})


async def test_caller_without_code_scope_sees_no_tools(world: tuple[Path, Policies]) -> None:
    async with Client(make_server(world, "triage")) as client:
        assert (await client.list_tools()).tools == []


async def test_access_control_property_no_forbidden_hit_for_any_identity_or_query(world: tuple[Path, Policies]) -> None:
    words = [
        "fetch",
        "widget",
        "store",
        "circle",
        "area",
        "Perimeter",
        "NewCircle",
        "parse http header",
        "units",
        "panic: shapes: negative dimension",
        "shapes.go:33",
        "Polygon",
        "metres",
        "(*Circle).Area",
        "max",
    ]
    rng = random.Random(7)
    queries = [" ".join(rng.sample(words, rng.randint(1, 4))) for _ in range(25)]
    for identity, allowed in IDENTITIES.items():
        async with Client(make_server(world, identity)) as client:
            for query in queries:
                result = await client.call_tool("search_code", {"query": query, "k": 10})
                assert not result.is_error
                units = result.structured_content["units"]
                assert {u["repo"] for u in units} <= set(allowed), (identity, query)
                if allowed:
                    assert units, (identity, query)  # top-k is filled from the allowed repos
                for repo in set(REPOS) - set(allowed):
                    denied = await client.call_tool("search_code", {"query": query, "repos": [repo]})
                    assert denied.is_error and "no repository named" in denied.content[0].text


async def test_tool_surface_matches_snapshot(world: tuple[Path, Policies]) -> None:
    async with Client(make_server(world)) as client:
        surface = json.loads((await client.read_resource("goresolve://surface")).contents[0].text)
    names = [t["name"] for t in surface["tools"]]
    assert names == ["get_symbol", "list_repos", "read_file", "search_code"]
    assert all(t["annotations"]["readOnlyHint"] and not t["annotations"]["destructiveHint"] for t in surface["tools"])
    assert_matches_snapshot(SNAPSHOT, surface)
