"""`goresolve dispatch`: consume ticket events and run the agent, locally or as Kubernetes Jobs.

    goresolve dispatch [--mode local|kubernetes] [--max-concurrent N] [--max-per-repo N] [--burst]
    goresolve dispatch run --ticket T --repo R [--trace-id X] [--result-file F]   (one run; inside a Job)

Settings: GORESOLVE_DISPATCH_* (flags win), the queue's GORESOLVE_QUEUE_*. Bad settings end the
command with exit 2 and one line naming the setting; no traceback.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import anyio
import anyio.to_thread
import typer
from pydantic import ValidationError

from agent.dispatch.capacity import Capacity
from agent.dispatch.errors import DispatchError
from agent.dispatch.local import LocalRunner
from agent.dispatch.results import Ledger, RunRecord, compact_result
from agent.dispatch.service import Dispatcher, Runner
from agent.dispatch.settings import DispatchSettings
from agent.dispatch.ticketruns import TicketRuns
from agent.dispatch.tickets import Ticket

if TYPE_CHECKING:
    from workqueue import QueueSettings

app = typer.Typer(
    invoke_without_command=True,
    add_completion=False,
    help="Consume ticket events and run the agent: subprocesses (local) or one Kubernetes Job per ticket.",
)


def _fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(2)


def _settings(**overrides: Any) -> DispatchSettings:
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return DispatchSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise _fail(f"setting GORESOLVE_DISPATCH_{field.upper()}: {first['msg']}") from None


@app.callback()
def dispatch(
    ctx: typer.Context,
    mode: Annotated[Literal["local", "kubernetes"] | None, typer.Option(help="local or kubernetes")] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Runs at once, in total.")] = None,
    max_per_repo: Annotated[int | None, typer.Option(help="Runs at once per repository.")] = None,
    burst: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
) -> None:
    """Consume the `tickets` queue until stopped."""
    if ctx.invoked_subcommand is not None:
        return
    from workqueue import QueueError

    settings = _settings(mode=mode, max_concurrent=max_concurrent, max_per_repo=max_per_repo)
    try:
        anyio.run(_consume, settings, burst)
    except DispatchError as exc:
        raise _fail(str(exc)) from None
    except QueueError as exc:  # Redis unreachable or stalled past its deadline: the queue's one line, exit 1
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


LEASE_MARGIN_S = 300
"""How much longer than a run's hard deadline the queue lets a ticket's handler run (as the chart sets it)."""


def queue_settings(settings: DispatchSettings) -> QueueSettings:
    """The queue's settings, with a job timeout no shorter than a run can last.

    The queue cuts a handler off at its job timeout and runs the event again: shorter than a run's deadline, it
    would kill every long run and start it again, paid each time, up to the queue's tries. Unset, the timeout is
    the run's deadline plus a margin; set shorter, dispatch refuses to start.
    """
    from workqueue import QueueSettings
    from workqueue.settings import settings_error

    try:
        queue = QueueSettings()
    except ValidationError as exc:
        raise DispatchError(settings_error(exc)) from None
    floor = settings.active_deadline_s + LEASE_MARGIN_S
    if "job_timeout_s" not in queue.model_fields_set:
        return queue.model_copy(update={"job_timeout_s": float(floor)})
    if queue.job_timeout_s < floor:
        raise DispatchError(
            f"setting GORESOLVE_QUEUE_JOB_TIMEOUT_S ({queue.job_timeout_s:g} s) is shorter than a run may last "
            f"({settings.active_deadline_s} s, wall clock and margin) plus {LEASE_MARGIN_S} s: the queue would cut "
            f"runs off and start them again; set it to at least {floor} or leave it unset"
        )
    return queue


async def _consume(settings: DispatchSettings, burst: bool) -> None:
    from workqueue import open_queue

    capacity = Capacity(settings.max_concurrent, settings.max_per_repo)
    queue = open_queue(queue_settings(settings), "tickets")
    try:
        if settings.mode == "kubernetes":
            from agent.dispatch.kubeconnect import kube_runner

            async with kube_runner(settings) as runner, anyio.create_task_group() as group:
                # Jobs from before a restart still count against the caps until they end.
                for ticket, name in await runner.active():
                    capacity.adopt(ticket.repo)
                    group.start_soon(release_when_done, runner, capacity, ticket, name)
                await _serve(queue, runner, capacity, settings, burst)
                group.cancel_scope.cancel()
        else:
            runs = TicketRuns(settings.resolved_ticket_runs(), ttl_s=settings.ttl_after_finished_s)
            try:
                reaped = await anyio.to_thread.run_sync(runs.reap_orphans)
                if reaped:
                    print(f"killed {reaped} processes left of runs whose dispatcher had died", file=sys.stderr)
                runner = LocalRunner(settings.command, deadline_s=settings.active_deadline_s, runs=runs)
                await _serve(queue, runner, capacity, settings, burst)
            finally:
                runs.close()
    finally:
        await queue.aclose()


class Waiter(Protocol):
    async def wait(self, name: str) -> Any: ...


async def release_when_done(runner: Waiter, capacity: Capacity, ticket: Ticket, name: str) -> None:
    """Free an adopted run's slot when its Job (`name`) ends (or cannot be watched any more)."""
    try:
        await runner.wait(name)
    except DispatchError:
        pass  # deleted or unreadable: it no longer runs as far as the caps can tell
    finally:
        capacity.release(ticket.repo)


async def _serve(queue: Any, runner: Runner, capacity: Capacity, settings: DispatchSettings, burst: bool) -> None:
    dispatcher = Dispatcher(
        runner,
        capacity,
        Ledger(settings.resolved_ledger()),
        jira_repos=settings.jira_repos,
        default_repo=settings.default_repo,
        policy_dir=settings.policy_dir,
        identity=settings.identity,
        busy_retry_s=settings.busy_retry_s,
    )
    await queue.consume(dispatcher.handle, concurrency=settings.max_concurrent, burst=burst)


async def _run_passing_signals(runner: LocalRunner, ticket: Ticket) -> RunRecord:
    """`runner.run(ticket)`, passing SIGTERM and SIGINT on to the agent rather than dying of them: Kubernetes
    stops a Job's pod with SIGTERM, and the agent then records its run as interrupted and prints its result
    line (the pod's grace period is its time to), which this run reads as usual."""
    records: list[RunRecord] = []
    async with anyio.create_task_group() as group:

        async def pass_on() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    runner.interrupt(signum)

        group.start_soon(pass_on)
        records.append(await runner.run(ticket))
        group.cancel_scope.cancel()
    return records[0]


@app.command("run")
def run_one(
    ticket: Annotated[str, typer.Option(help="Ticket id, e.g. SVC-7 or acme/svc#42.")],
    repo: Annotated[str, typer.Option(help="Repository the ticket is about.")],
    trace_id: Annotated[str, typer.Option(help="Trace id born at the webhook.")] = "0" * 32,
    result_file: Annotated[Path | None, typer.Option(help="Also write the result line here.")] = None,
) -> None:
    """Run the agent for one ticket (what each Job's agent container does) and print its result line.

    Exit 0 when the run gave a result, whatever its outcome (pull request, hand-off or error: the line says which,
    and the Job is not retried for it); 1 when it gave none (it could not start, or died)."""
    settings = _settings()
    runner = LocalRunner(settings.command, deadline_s=settings.wall_clock_s + settings.deadline_margin_s)
    record = anyio.run(_run_passing_signals, runner, Ticket(id=ticket, repo=repo, trace_id=trace_id, source="cli"))
    result: dict[str, Any] = {"outcome": record.outcome}
    if record.cost_usd is not None:
        result["cost_usd"] = record.cost_usd
    if record.pr_url:
        result["pr_url"] = record.pr_url
    if record.reason:
        result["reason"] = record.reason
    line = compact_result(result)
    print(line)  # first: the result is never lost to a result file that cannot be written
    if result_file is not None:
        try:
            result_file.write_text(line + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"error: --result-file {result_file}: {exc.strerror or exc}", file=sys.stderr)
            raise typer.Exit(1) from None
    raise typer.Exit(0 if record.has_outcome else 1)
