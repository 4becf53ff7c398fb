"""`goresolve demo` end to end: the recorded sessions replay against the current tools and servers.

`ReplayModel` refuses any request that differs from the recorded one, and every request carries the
tool definitions, the prompt and every tool result. So a change to a tool's name, description or
schema, to the loop's prompt, to the sample service or to what go-test-runner reports makes this
test fail until the recordings are made again (examples/recordings/record.py).
"""

from __future__ import annotations

import io
import json
import subprocess

import anyio
import pytest
from rich.console import Console

from agent.exits import RunResult
from goresolve.demo import World, demo_pr_db, prepare_world, run_demo, summary_json
from servers.common.locks import LockHeld, take_lock
from servers.common.settings import default_data_dir
from servers.github_pr.store import PullStore


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, list[RunResult], str]:
    data = tmp_path_factory.mktemp("demo-data")
    # the embedding model and the tamper analyzer that `goresolve model install` put there
    for installed in ("models", "tools"):
        (default_data_dir() / installed).mkdir(parents=True, exist_ok=True)
        (data / installed).symlink_to(default_data_dir() / installed, target_is_directory=True)
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    # go-test-runner's cache and tamper analyzer are shared with `goresolve demo` (built once per machine),
    # unless a demo or another test run holds that work directory now: then this run builds its own
    runner_dir = default_data_dir() / "demo-cache" / "go-test-runner"
    try:
        take_lock(runner_dir / "runner.lock").close()
    except LockHeld:
        runner_dir = tmp_path_factory.mktemp("go-test-runner")
    world = prepare_world(data, console, runner_dir=runner_dir)
    results = anyio.run(run_demo, world, console)
    return world, results, out.getvalue()


@pytest.mark.slow
@pytest.mark.timeout(900)  # without `goresolve model install`, the first run builds the analyzer (in the fixture)
def test_the_recordings_replay_to_a_pull_request_and_a_hand_off(replayed: tuple[World, list[RunResult], str]) -> None:
    world, results, screen = replayed
    summary = summary_json(results, world)
    runs = {r["ticket"]: r for r in summary["runs"]}
    assert (runs["SVC-101"]["outcome"], runs["SVC-101"]["exit"]) == ("pr", "submitted"), runs["SVC-101"]["reason"]
    assert (runs["SVC-102"]["outcome"], runs["SVC-102"]["exit"]) == ("escalated", "failed_attempts")
    assert runs["SVC-102"]["attempts"] == 3

    # the screen shows the whole flow: routing, triage context with its size, the failing test, the fix, the PR
    for text in (
        "route",
        "tokens from triage",
        "go test ./internal/auth -run '^TestHandlerUnknownToken$'",
        "nil pointer dereference",
        'unauthorized(w, "unknown token")',
        "pull request opened",
        "go test -race ./internal/session",
        "failed_attempts: 3 failed test-driven attempts",
        "Attempted fixes",
        "Hypothesized root cause",
    ):
        assert text in screen, text

    # the pull request is real: a branch on the local remote whose diff is the guard, recorded in the PR store
    branch = runs["SVC-101"]["pr"]["branch"]
    diff = subprocess.run(
        ["git", "-C", str(world.pr_remote), "diff", "main", branch],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "+\tif sess == nil {" in diff and "internal/auth/handler.go" in diff
    pulls = {p.ticket: p for p in PullStore(world.pr_db).all()}
    assert not pulls["SVC-101"].draft and pulls["SVC-101"].branch == branch
    assert "TestHandlerUnknownToken" in pulls["SVC-101"].body and "trace id" in pulls["SVC-101"].body
    # the escalation's best attempt is a draft for humans, assigned to the owner, with the hand-off as its body
    handoff = pulls["SVC-102"]
    assert handoff.draft and "needs-human" in handoff.labels and handoff.assignees == ["platform-oncall"]
    assert "Attempted fixes" in handoff.body
    # the hypothesis is the recorded model's, not the run log's stand-in (a request that no longer matches the
    # recording falls back to that stand-in without failing the run)
    assert "Take the write lock in Get as ADR 0002 says" in handoff.body
    assert f"goresolve prs --db {world.pr_db}" in summary["next"]
    # plain `goresolve prs` (the user's own database, absent here) points at the demo's
    assert world.pr_db == demo_pr_db(world.data_dir)
    assert any(line.startswith("goresolve trace ") for line in summary["next"])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_each_run_is_saved_where_goresolve_trace_reads_it(replayed: tuple[World, list[RunResult], str]) -> None:
    world, results, _ = replayed
    for result in results:
        run_dir = world.data_dir / "agent" / "runs" / result.run_id
        spans = [json.loads(line) for line in (run_dir / "spans.jsonl").read_text().splitlines()]
        assert {s["trace_id"] for s in spans} == {result.trace_id}
