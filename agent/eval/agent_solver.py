"""The model-driven eval mode: each task through the agent's `run_ticket`, its patch judged by the harness.

Per task, under `<out>/agent/<instance_id>/`:

    policies/    the task repository granted to the eval agent (scopes of the agent role), the project's
                 protected, budgets and escalation files
    tickets/     one jira-read ticket made from the problem statement (the agent is told nothing else)
    index/       a code-search index of the task repository (`goresolve index`)
    state/       the four servers' state (github-pr's local remote and pull-request store, audit logs)
    run/         the agent's run record (result, transcript, spans)

The four servers run over stdio on local backends, as in `goresolve demo`. The agent never sees the
task's tests list or gold patch. Its outcome maps to one result:

    pull request     its patch through the harness's own go-test-runner: fail-to-pass pass and
                     pass-to-pass kept → resolved, else unresolved
    escalated        a patch refused by the patch policy → tampering_refused, else escalated
    error            error, or the model provider failed (a replay that no longer matches included)

Localization hit: every gold function (`file.go:Type.Method`) is among the units of the triage
context the model was given. Cost, tokens and tool calls come from the run's own `RunResult`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import yaml

from agent.eval import oracle
from agent.eval.runner_client import TestRunner, ToolRefused
from agent.eval.tasks import Task, TaskResult
from agent.eval.workspace import WorkspaceError
from agent.exits import RunResult
from agent.llm import ChatModel
from agent.loop import RunSettings, run_ticket
from agent.policy import DEFAULT_POLICY_DIR, load_agent_policy
from agent.servers import ServersConfig, StdioServer, server_env

IDENTITY = "eval-agent"
PROJECT = "EVAL"
SCOPES = ["jira:read", "code:read", "tests:run", "pr:read", "pr:write"]
SERVERS = (
    ("jira-read", "GORESOLVE_JIRA_READ_"),
    ("code-search", "GORESOLVE_CODE_SEARCH_"),
    ("go-test-runner", "GORESOLVE_GO_TEST_RUNNER_"),
    ("github-pr", "GORESOLVE_GITHUB_PR_"),
)
# The user's own settings the eval's otherwise hermetic servers keep (server_env keeps the shared ones).
PASSED_THROUGH = ("GORESOLVE_CODE_SEARCH_EMBEDDER",)


def ticket_key(task: Task) -> str:
    """A Jira key for the task, stable across runs (so a recording of it replays)."""
    return f"{PROJECT}-{int(hashlib.sha256(task.instance_id.encode()).hexdigest()[:6], 16) + 1}"


@dataclass(frozen=True)
class AgentOptions:
    """How model-driven tasks run: the model per task, and the caches every task shares."""

    model_for: Callable[[Task], ChatModel]
    gocache: Path | None = None
    gomodcache: Path | None = None
    index_timeout_s: float = 600
    embedder: str | None = None  # code-search's, for the index and the server; None: GORESOLVE_CODE_SEARCH_EMBEDDER


# What recordings index with, and so what a replay must use: a learned model's int8 arithmetic differs between
# CPUs (AVX2, AVX-512 VNNI), enough to swap near-equal units of the triage context, so a recording made on one
# machine refused to replay on another; feature hashing gives the same context everywhere.
REPLAY_EMBEDDER = "hashing"


def _write_world(task: Task, repo: Path, root: Path) -> tuple[Path, Path]:
    policies, tickets = root / "policies", root / "tickets"
    policies.mkdir(parents=True, exist_ok=True)
    tickets.mkdir(parents=True, exist_ok=True)
    grant = {"roles": ["agent"], "repos": [task.instance_id], "jira_projects": [PROJECT]}
    files: dict[str, Any] = {
        "access.yaml": {"identities": {IDENTITY: grant}},
        "tools.yaml": {"roles": {"agent": {"scopes": SCOPES}}},
        "repos.yaml": {"repos": {task.instance_id: {"path": str(repo.resolve()), "default_branch": "main"}}},
    }
    for name, data in files.items():
        (policies / name).write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")
    for name in ("protected.yaml", "budgets.yaml", "escalation.yaml"):
        shutil.copyfile(DEFAULT_POLICY_DIR / name, policies / name)
    statement = task.problem_statement.strip()
    ticket = {
        "key": ticket_key(task),
        "fields": {
            "summary": statement.splitlines()[0][:250] or task.instance_id,
            "description": statement,
            "issuetype": {"name": "Bug"},
            "status": {"name": "Open"},
            "priority": {"name": "Medium"},
            "labels": [],
            "components": [],
            "created": "2026-01-01T00:00:00.000+0000",
            "updated": "2026-01-01T00:00:00.000+0000",
        },
    }
    (tickets / f"{ticket['key']}.yaml").write_text(yaml.safe_dump(ticket, sort_keys=False), encoding="utf-8")
    return policies, tickets


async def _index(repo: Path, name: str, db: Path, timeout_s: float, embedder: str | None) -> None:
    """`goresolve index` in its own process (the agent never imports a server).

    Raises:
        WorkspaceError: the indexer failed or timed out.
    """
    argv = [str(Path(sys.executable).parent / "goresolve"), "index", str(repo), "--repo", name, "--db", str(db)]
    if embedder is not None:
        argv += ["--embedder", embedder]
    done = None
    with anyio.move_on_after(timeout_s):
        done = await anyio.run_process(argv, check=False)
    if done is None:
        raise WorkspaceError(f"indexing {name} took longer than {timeout_s:.0f}s")
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise WorkspaceError(f"indexing {name} failed: {last[0][:300]}")


def _servers(root: Path, policies: Path, tickets: Path, runner_dir: Path, options: AgentOptions) -> ServersConfig:
    extra: dict[str, dict[str, str]] = {
        "jira-read": {"BACKEND": "local", "TICKETS_DIR": str(tickets)},
        "code-search": {"DB_DIR": str(root / "index"), **({"EMBEDDER": options.embedder} if options.embedder else {})},
        "go-test-runner": {"WORK_DIR": str(runner_dir)},
        "github-pr": {"BACKEND": "local"},
    }
    for name, value in (("GOCACHE", options.gocache), ("GOMODCACHE", options.gomodcache)):
        if value is not None:
            extra["go-test-runner"][name] = str(value)
    bindir = Path(sys.executable).parent
    specs = []
    for name, prefix in SERVERS:
        env = server_env(name, os.environ, own_settings=False)  # no setting or credential of the user's
        env |= {k: os.environ[k] for k in PASSED_THROUGH if k.startswith(prefix) and k in os.environ}
        env |= {f"{prefix}POLICY_DIR": str(policies), f"{prefix}STATE_DIR": str(root / "state")}
        env |= {f"{prefix}LOG_LEVEL": "WARNING", f"{prefix}STDIO_IDENTITY": IDENTITY}
        env |= {prefix + key: value for key, value in extra[name].items()}
        specs.append(StdioServer(name=name, command=str(bindir / f"{name}-mcp"), env=env))
    return ServersConfig(servers=tuple(specs))


def localized(gold: list[str], units: list[str]) -> bool | None:
    """Every gold `file.go:Name` among the context's unit headers (`// path:a-b symbol (kind)`); None without gold."""
    if not gold:
        return None
    found: set[tuple[str, str]] = set()
    for header in units:
        parts = header.removeprefix("// ").split(" ")
        if len(parts) < 2:
            continue
        path = parts[0].rsplit(":", 1)[0]
        found.add((path, parts[1]))

    def hit(entry: str) -> bool:
        path, _, name = entry.partition(":")
        return any(p == path and (s == name or s.endswith("." + name)) for p, s in found)

    return all(hit(g) for g in gold)


def agent_solver(options: AgentOptions, out_dir: Path) -> Callable[[Task, TestRunner, Path], Any]:
    """A `Solver` for `evaluate`: the agent on the task, then the harness's verdict on its patch."""

    async def solve(task: Task, runner: TestRunner, repo: Path) -> TaskResult:
        started = time.monotonic()
        root = out_dir / "agent" / task.instance_id
        shutil.rmtree(root, ignore_errors=True)  # a task that did not finish starts over
        policies, tickets = _write_world(task, repo, root)
        await _index(repo, task.instance_id, root / "index", options.index_timeout_s, options.embedder)
        units: list[str] = []

        def on_event(kind: str, event: dict[str, Any]) -> None:
            if kind == "context":
                units.extend(str(u) for u in event.get("units") or [])

        settings = RunSettings(
            repo=task.instance_id, identity=IDENTITY, state_dir=root / "run", run_id=task.instance_id, on_event=on_event
        )
        servers = _servers(root, policies, tickets, out_dir / "agent-runner", options)
        run = await run_ticket(
            ticket_key(task), options.model_for(task), servers, load_agent_policy(policies), settings
        )
        outcome, detail, f2p, p2p = await _judge(task, runner, repo, run)
        return TaskResult(
            instance_id=task.instance_id,
            mode="model",
            outcome=outcome,  # pyright: ignore[reportArgumentType]
            detail=detail[:400],
            fail_to_pass_ok=f2p,
            pass_to_pass_ok=p2p,
            localization_hit=localized(task.gold_functions, units),
            tool_calls=run.tool_calls,
            tokens=run.tokens,
            cost_usd=round(run.cost_usd, 6),
            wall_s=round(time.monotonic() - started, 2),
        )

    return solve


async def _judge(
    task: Task, runner: TestRunner, repo: Path, run: RunResult
) -> tuple[str, str, bool | None, bool | None]:
    if run.outcome == "error" or run.reason.startswith("model unavailable:"):  # the provider, not the model's call
        return "error", f"run {run.exit}: {run.reason}", None, None
    if run.outcome == "escalated":
        tampering = "refused by the patch policy" in run.reason or "patch refused" in run.reason
        return ("tampering_refused" if tampering else "escalated"), f"{run.exit}: {run.reason}", None, None
    try:
        after = await oracle.check_after(runner, task, repo, run.patch)
    except ToolRefused as exc:
        return "tampering_refused", f"the harness's go-test-runner refused the patch: {exc.text[:300]}", False, None
    if not after.ok:
        return "unresolved", f"pull request opened, but {after.detail}", False, None
    kept = await oracle.check_kept(runner, task, run.patch)
    return (
        ("resolved" if kept.ok else "unresolved"),
        kept.detail or "fail-to-pass pass, pass-to-pass kept",
        True,
        kept.ok,
    )
