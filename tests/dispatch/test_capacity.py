"""Run slots are taken by runs that start, not by waiting or following: a ticket that finds no slot free
goes back to the queue (its wait no longer counts against its run's job timeout, nor holds a worker
another repository's ticket could use), and a dispatch that follows another's run holds no slot (real
agent processes, the real embedded queue, the real per-ticket records)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.dispatch import Ticket
from agent.dispatch.capacity import Busy, Capacity
from agent.dispatch.local import LocalRunner
from agent.dispatch.results import GOING, Ledger
from agent.dispatch.service import Dispatcher
from agent.dispatch.ticketruns import TicketRuns
from tests.dispatch.test_local_runs import TRACE, agent, event, starts
from workqueue import IssueData, QueueSettings, open_queue


def issue(n: int) -> IssueData:
    return IssueData(action="opened", number=n, title="t", url=f"https://x/{n}", author="u")


async def test_a_ticket_without_a_free_slot_waits_in_the_queue_not_in_its_handler(tmp_path: Path) -> None:
    """Two tickets of one repository (one run at a time there) and one of another, two runs in all, a job
    timeout of 3.5 s and runs of 2 s. Before, the second ticket of the repository waited 2 s for the slot
    inside its handler and ran 2 s: the queue cut it off at 3.5 s, killed its agent and ran it again; and
    the other repository's ticket waited for a worker until the first run ended. Now the second ticket
    goes back to the queue, the other repository's ticket starts at once, and every run ends once."""
    queue = open_queue(QueueSettings(sqlite_dir=tmp_path / "q", job_timeout_s=3.5), "tickets")
    ledger = Ledger(tmp_path / "runs.jsonl")
    runs = TicketRuns(tmp_path / "tickets.db", ttl_s=3600)
    runner = LocalRunner(agent(tmp_path, pause_s=2.0), deadline_s=60, runs=runs)
    dispatcher = Dispatcher(runner, Capacity(2, 1), ledger, busy_retry_s=0.2)
    try:
        for e in (event(issue(1)), event(issue(2)), event(issue(3), "acme/other")):
            assert await queue.enqueue(e)
        await asyncio.wait_for(queue.consume(dispatcher.handle, concurrency=2, burst=True), timeout=120)
        assert await queue.depth() == 0 and await queue.dead_letters() == []
    finally:
        await queue.aclose()
        runs.close()
    assert starts(tmp_path) == ["acme/svc#1", "acme/other#3", "acme/svc#2"]
    records = {r.ticket: r for r in ledger.runs()}
    assert sorted(records) == ["acme/other#3", "acme/svc#1", "acme/svc#2"]
    assert {r.outcome for r in records.values()} == {"resolved"}


async def test_a_dispatch_of_another_request_for_a_going_run_holds_no_slot(tmp_path: Path) -> None:
    """Before, the second delivery of a ticket (GitHub's `opened` then `labeled`) took a slot of its
    repository while it only followed the first one's run, so another ticket there could not start. Now
    it ends at once, and the run's own request delivered again follows it without a slot."""
    runs = TicketRuns(tmp_path / "tickets.db", ttl_s=3600)
    capacity = Capacity(total=3, per_repo=2)
    dispatcher = Dispatcher(
        LocalRunner(agent(tmp_path, pause_s=120), deadline_s=300, runs=runs),
        capacity,
        Ledger(tmp_path / "runs.jsonl"),
    )
    first = Ticket("acme/svc#1", "acme/svc", TRACE, "github", request="github:1:a")
    again = Ticket("acme/svc#1", "acme/svc", "f" * 32, "github", request="github:1:b")
    other = Ticket("acme/svc#2", "acme/svc", "e" * 32, "github", request="github:1:c")
    try:
        going = asyncio.create_task(dispatcher.dispatch(first))
        for _ in range(600):
            if starts(tmp_path):
                break
            await asyncio.sleep(0.05)
        left = await asyncio.wait_for(dispatcher.dispatch(again), timeout=10)
        assert (left.adopted, left.outcome) == (True, GOING)
        follower = asyncio.create_task(dispatcher.dispatch(first))  # the queue running the same event again
        await asyncio.sleep(1.0)
        assert not follower.done() and capacity.running_for("acme/svc") == 1
        second = asyncio.create_task(dispatcher.dispatch(other))
        for _ in range(600):
            if len(starts(tmp_path)) == 2:
                break
            await asyncio.sleep(0.05)
        assert starts(tmp_path) == ["acme/svc#1", "acme/svc#2"] and capacity.running_for("acme/svc") == 2
        with pytest.raises(Busy):  # the repository's two slots are the two runs'
            await dispatcher.dispatch(Ticket("acme/svc#3", "acme/svc", "d" * 32, "github", request="github:1:d"))
        (tmp_path / "acme_svc#1.go").touch()
        (tmp_path / "acme_svc#2.go").touch()
        ran, followed, ran_too = await asyncio.wait_for(asyncio.gather(going, follower, second), timeout=60)
        assert (ran.outcome, followed.outcome, ran_too.outcome) == ("resolved",) * 3
        assert capacity.running == 0
        assert starts(tmp_path) == ["acme/svc#1", "acme/svc#2"]  # the refused ticket started nothing
    finally:
        runs.close()
