"""Stopping a long command on Ctrl-C (SIGINT) or SIGTERM inside its event loop.

The work is cancelled rather than killed: a run gives back its budget hold, records itself as interrupted and
shuts its servers down in order. Kubernetes stops a pod with SIGTERM, a terminal with SIGINT; both are one path.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from anyio.abc import TaskStatus

T = TypeVar("T")


class Stopped(Exception):
    """A signal stopped the work; `exit_code` is the shell's for it (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


async def stop_on_signal(
    work: anyio.CancelScope, stopped: list[int], *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Cancel `work` on SIGINT or SIGTERM, appending the signal to `stopped`; later signals are taken and ignored."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            stopped.append(signum)
            work.cancel()


async def until_signal(work: Callable[..., Awaitable[T]], *args: object) -> T:
    """`await work(*args)`, cancelled by SIGINT or SIGTERM.

    Raises:
        Stopped: a signal stopped it (after the work's own clean-up ran).
    """
    stopped: list[int] = []
    done: list[T] = []
    async with anyio.create_task_group() as group:
        scope = anyio.CancelScope()
        await group.start(stop_on_signal, scope, stopped)
        with scope:
            done.append(await work(*args))
        group.cancel_scope.cancel()  # the signal watcher
    if stopped:
        raise Stopped(stopped[0])
    return done[0]
