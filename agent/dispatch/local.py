"""Local mode: each run is the agent command as a subprocess (servers over stdio), under a hard deadline.

The subprocess gets its own process group; on the deadline the whole group is killed, so no
server the agent started outlives its run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence

from agent.dispatch.results import NO_OUTCOME, RunRecord, cost_of, parse_result, pr_url_of, reason_of
from agent.dispatch.tickets import Ticket

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

    def __init__(self, command: Sequence[str], *, deadline_s: float, env: Mapping[str, str] | None = None) -> None:
        self._command = tuple(command)
        self._deadline_s = deadline_s
        self._env = dict(env) if env is not None else None

    async def run(self, ticket: Ticket) -> RunRecord:
        """Run to completion or deadline. Never raises for the agent's own failure: that is a record."""
        argv = command_for(self._command, ticket)
        env = dict(self._env if self._env is not None else os.environ)
        env["GORESOLVE_TRACE_ID"] = ticket.trace_id
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return self._record(ticket, started, None, reason=f"could not start {argv[0]!r}: {exc.strerror}")
        assert proc.stdout is not None
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
