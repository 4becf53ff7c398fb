"""Local mode: each run is the agent command as a subprocess (servers over stdio), under a hard deadline.

The subprocess gets its own process group; on the deadline the whole group is killed, so no
server the agent started outlives its run. The kernel kills the agent when the dispatcher dies
(PR_SET_PDEATHSIG), since nothing would read its result any more.

With a `TicketRuns` (what `goresolve dispatch` gives it) a ticket has at most one run, as a Job name
gives it in Kubernetes mode: a second delivery for a ticket whose run is going ends at once (the run's
own dispatch records it; the same request again follows it), one for a ticket whose run finished within
the TTL adopts its record; only a restart command from another
request replaces a finished run (ticketruns.py). What is left of a run whose dispatcher died (the
agent's own children) is found by the marker in its environment and killed before the ticket runs
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import anyio
import structlog

from agent.dispatch.capacity import Slot, no_slot
from agent.dispatch.results import NO_OUTCOME, RunRecord, cost_of, going, parse_result, pr_url_of, reason_of
from agent.dispatch.ticketruns import MARKER_ENV, Adopt, Follow, TicketRuns
from agent.dispatch.tickets import Ticket

log = structlog.get_logger(__name__)
_PR_SET_PDEATHSIG = 1

_OUTPUT_CAP = 1 << 20  # the last MiB of stdout is enough to find the result line


def command_for(template: Sequence[str], ticket: Ticket) -> list[str]:
    """The agent command with {ticket}, {repo} and {trace_id} filled in (no shell, no other expansion)."""
    values = {"{ticket}": ticket.id, "{repo}": ticket.repo, "{trace_id}": ticket.trace_id}
    out: list[str] = []
    for arg in template:
        for key, value in values.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


class LocalRunner:
    """Runs one ticket as a subprocess and reads its result line."""

    mode = "local"

    def __init__(
        self,
        command: Sequence[str],
        *,
        deadline_s: float,
        env: Mapping[str, str] | None = None,
        runs: TicketRuns | None = None,
    ) -> None:
        self._command = tuple(command)
        self._deadline_s = deadline_s
        self._env = dict(env) if env is not None else None
        self._runs = runs
        self._agents: set[asyncio.subprocess.Process] = set()

    def interrupt(self, signum: int) -> int:
        """Send `signum` (SIGTERM) to every agent this runner is running, the agent alone, not its servers: it
        stops its run inside its event loop, records it as interrupted, shuts its servers down and prints its
        result line, which `run` still reads. How many agents there were."""
        for proc in self._agents:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)
        return len(self._agents)

    async def run(self, ticket: Ticket, slot: Slot = no_slot) -> RunRecord:
        """Run to completion or deadline inside `slot()`, or follow or adopt the ticket's run (with `runs`;
        no slot). Never raises for the agent's own failure: that is a record.

        Raises:
            DispatchError: the per-ticket records cannot be used (the queue retries the event).
            Busy: from `slot()`: no slot is free (nothing was started, the ticket's claim is given up).
        """
        if self._runs is None:
            async with slot():
                return await self._run(ticket, None)
        while True:
            decision = await self._runs.decide(ticket)
            if isinstance(decision, Adopt):
                log.info(
                    "the ticket's run finished recently: adopting its record",
                    ticket=ticket.id,
                    trace_id=ticket.trace_id,
                    run_trace_id=decision.record.trace_id,
                )
                return replace(decision.record, adopted=True)
            if isinstance(decision, Follow):
                if decision.request != ticket.request:  # its own dispatch follows it, records and escalates it
                    log.info(
                        "the ticket's run is going: left to its dispatch", ticket=ticket.id, trace_id=ticket.trace_id
                    )
                    return going(ticket.id, ticket.repo, ticket.trace_id, "local", self.mode)
                log.info("the ticket has a run already: following it", ticket=ticket.id, trace_id=ticket.trace_id)
                followed = await self._runs.follow(ticket, decision.marker)
                if followed is None:
                    continue  # it died with its dispatcher: decide again (it is then ours to run)
                return replace(followed, adopted=True)
            if decision.killed:
                log.warning(
                    "the ticket's previous run died with its dispatcher: its leftover processes were killed",
                    ticket=ticket.id,
                    trace_id=ticket.trace_id,
                    killed=decision.killed,
                )
            try:
                async with slot():
                    record = await self._run(ticket, decision.marker)
            except BaseException:  # no slot, or cancelled (the queue's job timeout, a shutdown): killed
                with anyio.CancelScope(shield=True):
                    await self._runs.drop(ticket, decision.marker)
                raise
            await self._runs.finish(ticket, decision.marker, record)
            return record

    async def _run(self, ticket: Ticket, marker: str | None) -> RunRecord:
        argv = command_for(self._command, ticket)
        env = dict(self._env if self._env is not None else os.environ)
        env["GORESOLVE_TRACE_ID"] = ticket.trace_id
        if marker is not None:
            env[MARKER_ENV] = marker
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        except OSError as exc:
            return self._record(ticket, started, None, reason=f"could not start {argv[0]!r}: {exc.strerror}")
        assert proc.stdout is not None
        self._agents.add(proc)
        chunks = bytearray()

        async def read_all() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                chunks.extend(chunk)
                del chunks[:-_OUTPUT_CAP]
            await proc.wait()

        try:
            await asyncio.wait_for(read_all(), timeout=self._deadline_s)
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return self._record(ticket, started, None, reason=f"killed at the {self._deadline_s:.0f} s deadline")
        finally:
            self._agents.discard(proc)
            if proc.returncode is None:
                _kill_group(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
        result = parse_result(chunks.decode(errors="replace"))
        reason = reason_of(result) if result else f"exited {proc.returncode} without a result line"
        return self._record(ticket, started, result, reason=reason)

    def _record(self, ticket: Ticket, started: float, result: dict[str, object] | None, *, reason: str | None):
        return RunRecord(
            ticket=ticket.id,
            repo=ticket.repo,
            trace_id=ticket.trace_id,
            run=f"pid-group:{ticket.id}",
            mode=self.mode,
            outcome=str(result["outcome"]) if result else NO_OUTCOME,
            duration_s=round(time.monotonic() - started, 3),
            cost_usd=cost_of(result) if result else None,
            pr_url=pr_url_of(result) if result else None,
            reason=reason,
        )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGKILL the child when the dispatcher dies (Linux; elsewhere nothing).

    It runs in the child between fork and exec, so it only makes a system call: if the dispatcher died
    before the call, the child kills itself at once.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec
