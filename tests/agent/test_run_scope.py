"""A run reads its own repository and its own ticket's Jira project only, however much more its identity may read
(one identity serves every repository in a cluster): the model's server calls are scoped by the run, not by what the
model sent. Against the four real servers over stdio, with an identity granted two repositories and two projects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.llm import reply
from agent.loop import Run, RunSettings
from agent.policy import AgentPolicy, load_agent_policy
from agent.tools import jql_in_project

from .workspace import TICKET, Workspace, World, _git, make_workspace, served  # pyright: ignore[reportPrivateUsage]
from .workspace import run_scripted as run

PAYROLL = "PRIVATE-PAYROLL-MARKER"
EMBARGO = "EMBARGOED-VULN-MARKER"


@pytest.fixture(scope="module")
def two_repos(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    from servers.code_search.embed import HashingEmbedder
    from servers.code_search.indexer import index_repo
    from servers.code_search.settings import CodeSearchSettings, open_index

    root = tmp_path_factory.mktemp("scope")
    embargoed = TICKET.replace("CALC-1", "SEC-1").replace("Add returns the difference", f"{EMBARGO} Add returns")
    ws = make_workspace(root, tickets={"CALC-1": TICKET, "CALC-2": TICKET.replace("CALC-1", "CALC-2")})
    (ws.tickets_dir / "SEC-1.yaml").write_text(embargoed)
    other = root / "src" / "payroll"
    other.mkdir(parents=True)
    (other / "go.mod").write_text("module example.com/payroll\n\ngo 1.21\n")
    (other / "salaries.go").write_text(
        f"package payroll\n\n// {PAYROLL}: salaries.\nfunc Add(a, b int) int {{ return a + b }}\n"
    )
    _git(other, "init", "-q", "-b", "main")
    _git(other, "add", "-A")
    _git(other, "commit", "-q", "-m", "init")
    (ws.policy_dir / "access.yaml").write_text(
        "identities:\n  local-dev: {roles: [agent], repos: [calc, payroll], jira_projects: [CALC, SEC]}\n"
    )
    (ws.policy_dir / "repos.yaml").write_text(
        f"repos:\n  calc: {{path: {ws.repo}, default_branch: main}}\n"
        f"  payroll: {{path: {other}, default_branch: main}}\n"
    )
    settings = CodeSearchSettings(
        db_dir=ws.index_dir, embedder="hashing", policy_dir=ws.policy_dir, state_dir=root / "cs"
    )
    embedder = HashingEmbedder()
    index_repo(open_index(settings, embedder), embedder, other, "payroll", None)
    return ws


@pytest.fixture(scope="module")
def world(two_repos: Workspace) -> Iterator[World]:
    with served(two_repos) as w:
        yield w


@pytest.fixture
def policy(two_repos: Workspace) -> AgentPolicy:
    return load_agent_policy(two_repos.policy_dir)


def tool_results(messages: tuple[object, ...]) -> list[str]:
    return [m.content for m in messages if getattr(m, "role", "") == "tool"]  # type: ignore[attr-defined]


def test_the_models_server_calls_reach_no_other_repository_or_project(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    probes = [
        ("search_code", {"query": f"{PAYROLL} salaries Add"}),  # no repos: every repository the identity reads
        ("search_code", {"query": f"{PAYROLL} salaries", "repos": []}),
        ("search_code", {"query": "salaries", "repos": ["payroll"]}),
        ("get_symbol", {"repo": "payroll", "symbol": "payroll.Add"}),
        ("get_issue", {"key": "SEC-1"}),
        ("get_comments", {"key": "sec-1"}),
        ("search_issues", {"jql": "status = Open ORDER BY key"}),
        ("search_issues", {"jql": "status = Open) OR (project = SEC"}),  # steps out of a naive wrapping
    ]
    # a test run between the two halves: the episode's limit on calls without one stays out of the way
    calls = [reply("", *probes[:4], ("run_tests", {})), reply("", *probes[4:]), ("escalate", {"reason": "probing"})]
    result, model = run(world, "CALC-2", [*calls, reply("hyp")], policy, settings)
    assert result.outcome == "escalated", result.reason
    results = tool_results(model.requests[2].messages)
    del results[4]  # the test run's
    assert len(results) == len(probes)
    assert not [
        r for r in results if PAYROLL in r or EMBARGO in r or "SEC-1" in r or "payroll" in r.split("refused")[0]
    ]
    searched, empty_list, named, symbol, issue, comments, search, escape = results
    assert "calc.go" in searched and "calc.go" in empty_list  # its own repository, searched as before
    assert named.startswith("refused: this run works on repository calc only")
    assert symbol.startswith("refused: this run works on repository calc only")
    assert issue.startswith("refused: this run reads its own ticket's Jira project CALC only")
    assert comments.startswith("refused: this run reads its own ticket's Jira project CALC only")
    assert "CALC-1" in search and "CALC-2" in search
    assert escape.startswith("error: JQL has an unmatched ')'")


def test_a_github_issue_run_reads_nothing_in_jira(policy: AgentPolicy, tmp_path: Path) -> None:
    from agent.llm import ScriptedModel

    settings = RunSettings(repo="calc", state_dir=tmp_path)
    issue_run = Run("acme/calc#12", ScriptedModel([]), None, policy, settings)  # type: ignore[arg-type]
    issue_run.schemas = {"get_issue": {"properties": {"key": {}}}, "search_issues": {"properties": {"jql": {}}}}
    assert str(issue_run.scoped("get_issue", {"key": "CALC-1"})).startswith("refused: this run's ticket")
    assert str(issue_run.scoped("search_issues", {"jql": "status = Open"})).startswith("refused: this run's ticket")
    jira_run = Run("CALC-3", ScriptedModel([]), None, policy, settings)  # type: ignore[arg-type]
    jira_run.schemas = {"search_code": {"properties": {"repos": {}}}, "get_symbol": {"properties": {"repo": {}}}}
    assert jira_run.scoped("search_code", {"query": "x"}) == {"query": "x", "repos": ["calc"]}
    assert jira_run.scoped("get_symbol", {"symbol": "calc.Add"}) == {"symbol": "calc.Add", "repo": "calc"}


@pytest.mark.parametrize(
    ("jql", "scoped"),
    [
        ("status = Open", 'project in ("CALC") AND (status = Open)'),
        ("", 'project in ("CALC")'),
        ("ORDER BY key", 'project in ("CALC") ORDER BY key'),
        (
            'summary ~ "a) OR (b" order by created DESC',
            'project in ("CALC") AND (summary ~ "a) OR (b") ORDER BY created DESC',
        ),
    ],
)
def test_jql_is_wrapped_in_the_tickets_project(jql: str, scoped: str) -> None:
    assert jql_in_project(jql, "CALC") == scoped


@pytest.mark.parametrize(
    "jql", ["a) OR (project = SEC", "(a", 'a = "b', "a = \\x", "(a ORDER BY key)", "a ORDER BY key ORDER BY id"]
)
def test_jql_that_could_leave_the_wrapping_is_refused(jql: str) -> None:
    with pytest.raises(ValueError, match=r"JQL|ORDER BY"):
        jql_in_project(jql, "CALC")


def test_a_project_that_is_no_jira_key_is_refused_not_quoted_into_the_query() -> None:
    """The project comes from the ticket's key; one holding a quote would have closed the scope's string."""
    with pytest.raises(ValueError, match="not a Jira project key"):
        jql_in_project("status = Open", 'X") OR (project = "SEC')
