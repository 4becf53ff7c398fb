"""Local mode keeps one run per ticket, as the Job name does in Kubernetes mode: duplicate deliveries
adopt the ticket's run, a restart command replaces a finished one, and a dispatcher that dies takes
its agent with it (real processes, the real embedded queue, the real per-ticket records)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.dispatch import Ticket
from agent.dispatch.capacity import Capacity
from agent.dispatch.local import LocalRunner
from agent.dispatch.results import GOING, Ledger
from agent.dispatch.service import Dispatcher
from agent.dispatch.ticketruns import TicketRuns
from workqueue import Event, IssueData, JiraIssueData, QueueSettings, open_queue

TRACE = "0123456789abcdef0123456789abcdef"


def event(data: Any, repo: str | None = "acme/svc") -> Event:
    return Event(
        id=f"github:1:{uuid.uuid4()}",
        source="jira" if isinstance(data, JiraIssueData) else "github",
        delivery=str(uuid.uuid4()),
        hook_id="1",
        trace_id=uuid.uuid4().hex,
        received_at=datetime.now(UTC),
        repo=repo,
        data=data,
    )


def agent(tmp_path: Path, pause_s: float = 0.0) -> list[str]:
    """An agent that logs its start and end (with its pid) and pauses in between until `<ticket>.go` exists."""
    script = tmp_path / "agent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, os, sys, time
            from pathlib import Path
            log = Path({str(tmp_path / "agent.log")!r})
            def note(ev):
                with log.open("a") as f:
                    f.write(json.dumps({{"ev": ev, "ticket": sys.argv[1], "pid": os.getpid()}}) + "\\n")
            note("start")
            gate = Path({str(tmp_path)!r}) / (sys.argv[1].replace("/", "_") + ".go")
            end = time.monotonic() + {pause_s}
            while time.monotonic() < end and not gate.exists():
                time.sleep(0.05)
            note("end")
            print(json.dumps({{"outcome": "resolved", "cost_usd": 0.5}}))
            """
        )
    )
    return [sys.executable, str(script), "{ticket}", "{repo}", "{trace_id}"]


def starts(tmp_path: Path) -> list[str]:
    log = tmp_path / "agent.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line)["ticket"] for line in lines if json.loads(line)["ev"] == "start"]


async def test_duplicate_deliveries_of_a_ticket_start_one_run(tmp_path: Path) -> None:
    """GitHub sends `issues opened` and `issues labeled` for an issue created with a label, Jira
    `issue_created` then `issue_updated`: four deliveries, four queue ids, two tickets. Before, each
    delivery was a full run (overlapping with max_per_repo 2) and a ledger line; now the second of each
    follows the first and only the first is recorded."""
    queue = open_queue(QueueSettings(sqlite_dir=tmp_path / "q"), "tickets")
    ledger = Ledger(tmp_path / "runs.jsonl")
    runs = TicketRuns(tmp_path / "tickets.db", ttl_s=3600)
    runner = LocalRunner(agent(tmp_path, pause_s=1.0), deadline_s=60, runs=runs)
    dispatcher = Dispatcher(runner, Capacity(4, 2), ledger, jira_repos={"SVC": "acme/svc"})
    opened = IssueData(action="opened", number=9, title="t", url="https://x/9", author="u")
    labeled = IssueData(action="labeled", number=9, title="t", url="https://x/9", author="u")
    created = JiraIssueData(action="created", key="SVC-12", project="SVC", summary="s", url="https://j/SVC-12")
    updated = JiraIssueData(action="updated", key="SVC-12", project="SVC", summary="s", url="https://j/SVC-12")
    try:
        for e in (event(opened), event(labeled), event(created, None), event(updated, None)):
            assert await queue.enqueue(e)
        await asyncio.wait_for(queue.consume(dispatcher.handle, concurrency=4, burst=True), timeout=120)
        assert await queue.depth() == 0 and await queue.dead_letters() == []
    finally:
        await queue.aclose()
        runs.close()
    assert sorted(starts(tmp_path)) == ["SVC-12", "acme/svc#9"]
    assert sorted(r.ticket for r in ledger.runs()) == ["SVC-12", "acme/svc#9"]


async def test_only_a_restart_command_of_another_request_runs_a_finished_ticket_again(tmp_path: Path) -> None:
    runs = TicketRuns(tmp_path / "tickets.db", ttl_s=3600)
    runner = LocalRunner(agent(tmp_path), deadline_s=60, runs=runs)
    try:
        first = await runner.run(Ticket("acme/svc#1", "acme/svc", TRACE, "github", request="github:1:a"))
        assert not first.adopted and first.outcome == "resolved"
        again = await runner.run(Ticket("acme/svc#1", "acme/svc", "f" * 32, "github", request="github:1:b"))
        assert again.adopted and again.trace_id == TRACE  # the first run's record
        same = Ticket("acme/svc#1", "acme/svc", "e" * 32, "github", request="github:1:r", restart=True)
        assert not (await runner.run(same)).adopted  # `/goresolve retry`: a new run
        assert (await runner.run(same)).adopted  # the same command delivered again: no third run
        assert starts(tmp_path) == ["acme/svc#1", "acme/svc#1"]
    finally:
        runs.close()

    expired = TicketRuns(tmp_path / "tickets.db", ttl_s=0)  # past the TTL a new report starts a run
    try:
        later = LocalRunner(agent(tmp_path), deadline_s=60, runs=expired)
        assert not (await later.run(Ticket("acme/svc#1", "acme/svc", TRACE, "github", request="github:1:c"))).adopted
        assert len(starts(tmp_path)) == 3
    finally:
        expired.close()


async def test_another_requests_delivery_while_the_run_goes_ends_at_once_and_the_same_request_follows(
    tmp_path: Path,
) -> None:
    """A restart command (or an `issues labeled`) while the ticket's run goes: before, its dispatch followed
    the run to its end, holding a queue worker all that time for a record it does not write. Now it ends at
    once; the run's own request, delivered again, still follows it to its record."""
    runs = TicketRuns(tmp_path / "tickets.db", ttl_s=3600)
    runner = LocalRunner(agent(tmp_path, pause_s=120), deadline_s=300, runs=runs)
    try:
        going = asyncio.create_task(runner.run(Ticket("SVC-3", "acme/svc", TRACE, "jira", request="jira:a")))
        for _ in range(600):
            if starts(tmp_path):
                break
            await asyncio.sleep(0.05)
        retry = Ticket("SVC-3", "acme/svc", "f" * 32, "jira", "jira:b", restart=True)
        left = await asyncio.wait_for(runner.run(retry), timeout=10)
        assert (left.adopted, left.outcome, left.trace_id) == (True, GOING, "f" * 32)
        again = asyncio.create_task(runner.run(Ticket("SVC-3", "acme/svc", TRACE, "jira", request="jira:a")))
        await asyncio.sleep(0.5)
        assert not again.done()
        (tmp_path / "SVC-3.go").touch()
        first, followed = await asyncio.wait_for(asyncio.gather(going, again), timeout=60)
        # its owner lives and records it: the follower returns the same record, adopted
        assert not first.adopted and followed.outcome == "resolved" and followed.adopted
        assert starts(tmp_path) == ["SVC-3"]
    finally:
        runs.close()


DISPATCHER = """
import sys, anyio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from agent.dispatch import Ticket
from agent.dispatch.local import LocalRunner
from agent.dispatch.ticketruns import TicketRuns
runs = TicketRuns(Path(sys.argv[1]), ttl_s=3600)
command = [sys.executable, sys.argv[2]]
anyio.run(LocalRunner(command, deadline_s=600, runs=runs).run, Ticket("SVC-7", "acme/svc", "0" * 32, "jira", "jira:a"))
"""

ORPHANING_AGENT = """
import json, os, subprocess, sys, time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
Path(sys.argv[0]).with_name("pids.json").write_text(json.dumps({"agent": os.getpid(), "child": child.pid}))
time.sleep(600)
"""


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


async def wait_for(check: Any, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.05)


@asynccontextmanager
async def orphaned_run(tmp_path: Path) -> AsyncIterator[dict[str, int]]:
    """A dispatcher running SVC-7 on an agent that started a child in a session of its own, SIGKILLed: yields
    the pids of the agent (dead with its dispatcher, checked) and of the child (left running, checked)."""
    (tmp_path / "orphaning.py").write_text(ORPHANING_AGENT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    dispatcher = subprocess.Popen(
        [sys.executable, "-c", DISPATCHER, str(tmp_path / "tickets.db"), str(tmp_path / "orphaning.py")],
        env=env,
    )
    pids_file = tmp_path / "pids.json"
    try:
        await wait_for(pids_file.exists, "the agent never started", timeout_s=60)
        pids = json.loads(pids_file.read_text())
        dispatcher.send_signal(signal.SIGKILL)
        dispatcher.wait(timeout=30)
        await wait_for(lambda: gone(pids["agent"]), "the agent outlived its dispatcher")
        assert not gone(pids["child"])  # out of reach of the kernel's rule: the next dispatcher's business
        yield pids
    finally:
        dispatcher.kill()
        dispatcher.wait()
        for pid in json.loads(pids_file.read_text()).values() if pids_file.exists() else ():
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


async def test_a_killed_dispatcher_takes_its_run_along_and_the_next_leaves_nothing_of_it(tmp_path: Path) -> None:
    """Before, a SIGKILLed dispatcher left its agent running; the restarted one ran the ticket again beside
    it (two agents for one ticket, the orphan's outcome lost). Now the kernel kills the agent with its
    dispatcher, and what the agent had started in a session of its own is killed before the ticket runs again."""
    async with orphaned_run(tmp_path) as pids:
        runs = TicketRuns(tmp_path / "tickets.db", ttl_s=3600)
        try:
            record = await LocalRunner(agent(tmp_path), deadline_s=60, runs=runs).run(
                Ticket("SVC-7", "acme/svc", TRACE, "jira", request="jira:a")
            )
        finally:
            runs.close()
        assert record.outcome == "resolved" and not record.adopted
        await wait_for(lambda: gone(pids["child"]), "the dead run's leftover process was not killed")


async def test_a_starting_dispatcher_kills_what_is_left_of_its_dead_predecessors_runs(tmp_path: Path) -> None:
    """Before, what a SIGKILLed dispatcher's run had started kept running until its ticket came again (with
    default settings, after the run's lease: about 41 minutes). Now the next dispatcher kills it as it starts."""
    async with orphaned_run(tmp_path) as pids:
        runs = TicketRuns(tmp_path / "tickets.db", ttl_s=3600)
        try:
            assert runs.reap_orphans() == 1  # what a starting dispatcher does first
            assert runs.reap_orphans() == 0
        finally:
            runs.close()
        await wait_for(lambda: gone(pids["child"]), "the dead run's leftover process was not killed")
