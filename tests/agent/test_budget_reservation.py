"""The daily cap holds when runs overlap: each model call reserves its worst case in the ledger before it is made
(one write transaction across processes) and settles it to its cost after; a failed or cancelled call gives its
hold back, and a dead process's hold stops counting after the run's deadline."""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.synchronize import Barrier
from pathlib import Path
from queue import Empty
from typing import Any

import anyio
import pytest

from agent.exits import BudgetExceeded, RunExit
from agent.ledger import DailyCapReached, Ledger
from agent.llm import ChatRequest, ChatResponse, Fallback, MalformedResponse, Message, ProviderError, Retrying, Usage
from agent.llm.usage import checked_usage
from agent.loop import Run, RunSettings
from agent.policy import DEFAULT_POLICY_DIR, AgentPolicy, load_agent_policy
from agent.testing import FakeWorld

NOW = 1_767_268_800.0  # 2026-01-01T12:00:00Z
WAIT_S = 120.0  # only a bound on a broken run


def test_a_hold_counts_against_the_cap_until_settled_or_released(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    first = ledger.reserve("r1", 0.004, cap=0.008, ttl_s=600, now=NOW)
    second = ledger.reserve("r2", 0.004, cap=0.008, ttl_s=600, now=NOW)
    with pytest.raises(DailyCapReached) as refused:
        ledger.reserve("r3", 0.0001, cap=0.008, ttl_s=600, now=NOW)
    assert (refused.value.spent, refused.value.held) == (0.0, pytest.approx(0.008))
    ledger.settle(first, "r1", "gpt-4o-mini", "small", (100, 10, 0), 0.001, at=NOW)
    ledger.release(second)
    assert ledger.day_spend("2026-01-01") == pytest.approx(0.001)
    assert ledger.held("2026-01-01", now=NOW) == 0
    ledger.reserve("r3", 0.007, cap=0.008, ttl_s=600, now=NOW)  # the settled cost counts, not the worst case


def test_a_dead_process_hold_expires(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.reserve("dead", 0.008, cap=0.008, ttl_s=600, now=NOW)  # never settled: its process died mid-call
    with pytest.raises(DailyCapReached):
        ledger.reserve("r2", 0.004, cap=0.008, ttl_s=600, now=NOW + 599)
    ledger.reserve("r2", 0.004, cap=0.008, ttl_s=600, now=NOW + 600)
    assert ledger.held("2026-01-01", now=NOW + 600) == pytest.approx(0.004)


def _reserver(path: str, barrier: Barrier, results: Any) -> None:
    ledger = Ledger(Path(path))
    barrier.wait(WAIT_S)  # every process reserves at the same moment
    try:
        hold = ledger.reserve("r", 0.003, cap=0.008, ttl_s=600)
    except DailyCapReached:
        results.put(False)
    else:
        ledger.settle(hold, "r", "gpt-4o-mini", "small", (1, 1, 0), 0.003)
        results.put(True)
    ledger.close()


def test_processes_reserving_at_once_stay_within_the_cap(tmp_path: Path) -> None:
    """Before: each run read the day's spend and spent; two overlapping runs recorded $0.00955 of $0.008."""
    path = tmp_path / "l.sqlite"
    Ledger(path).close()
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_reserver, args=(str(path), barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    try:
        granted = [results.get(timeout=WAIT_S) for _ in procs]
    except Empty:
        raise AssertionError("a reserving process did not finish") from None
    finally:
        for p in procs:
            p.join(timeout=WAIT_S)
            if p.is_alive():
                p.kill()
    assert sorted(granted) == [False, False, True, True]  # 2 x $0.003 fit in $0.008; a third would not
    assert Ledger(path).day_spend() == pytest.approx(0.006)


# --- the run's model calls ---------------------------------------------------------------------------------


class GatedModel:
    """Answers once `gate` is set; `entered` is set when a call is in flight."""

    name = "gpt-4o-mini"

    def __init__(self, fail: bool = False) -> None:
        self.entered = anyio.Event()
        self.gate = anyio.Event()
        self.fail = fail

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.entered.set()
        await self.gate.wait()
        if self.fail:
            raise ProviderError("overloaded", status=503)
        return ChatResponse(Message("assistant", "done"), Usage(1000, 100, 0), self.name, "stop")


REQUEST = ChatRequest((Message("user", "fix CALC-1"),), (), 500)


def _policy(daily_cap: float) -> AgentPolicy:
    policy = load_agent_policy(DEFAULT_POLICY_DIR)
    budgets = policy.budgets.model_copy(
        update={"daily": policy.budgets.daily.model_copy(update={"max_cost_usd": daily_cap})}
    )
    return policy.model_copy(update={"budgets": budgets})


def _run(model: Any, policy: AgentPolicy, ledger: Ledger, tmp_path: Path, run_id: str) -> Run:
    settings = RunSettings(repo="calc", state_dir=tmp_path, ledger=ledger, run_id=run_id)
    return Run("CALC-1", model, FakeWorld().servers(), policy, settings)


def _worst(tmp_path: Path) -> float:
    return _run(GatedModel(), _policy(50), Ledger(tmp_path / "probe.sqlite"), tmp_path, "probe").check_budget(REQUEST)


async def test_a_run_overlapping_another_is_refused_what_the_other_holds(tmp_path: Path) -> None:
    worst = _worst(tmp_path)
    cap = worst * 1.5  # one call's worst case fits, two do not
    path = tmp_path / "ledger.sqlite"
    first_model, second_model = GatedModel(), GatedModel()
    first = _run(first_model, _policy(cap), Ledger(path), tmp_path, "first")  # a ledger each, as two processes
    second = _run(second_model, _policy(cap), Ledger(path), tmp_path, "second")
    reason = ""
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.query, REQUEST)
        await first_model.entered.wait()
        with pytest.raises(BudgetExceeded) as refused:
            await second.query(REQUEST)
        reason = refused.value.reason
        first_model.gate.set()
    assert not second_model.entered.is_set()
    assert reason == (
        f"daily budget: $0.0000 spent today + ${worst:.4f} held by calls in flight + up to ${worst:.4f} next "
        f"> ${cap:.4f}"
    )
    ledger = Ledger(path)
    assert ledger.day_spend() == pytest.approx(first.cost) and first.cost <= cap
    assert ledger.held() == 0  # settled to the call's cost
    assert ledger.by("run_id") == pytest.approx({"first": first.cost})


async def test_a_failed_or_cancelled_call_gives_its_hold_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    failing = GatedModel(fail=True)
    failing.gate.set()
    with pytest.raises(RunExit):
        await _run(failing, _policy(50), ledger, tmp_path, "failed").query(REQUEST)
    assert ledger.held() == 0

    stuck = GatedModel()
    run = _run(stuck, _policy(50), ledger, tmp_path, "cancelled")
    async with anyio.create_task_group() as tg:
        tg.start_soon(run.query, REQUEST)
        await stuck.entered.wait()
        assert ledger.held() > 0
        tg.cancel_scope.cancel()
    assert ledger.held() == 0 and ledger.day_spend() == 0


def test_the_refusal_shows_sub_cent_amounts() -> None:
    from agent.loop import _usd  # pyright: ignore[reportPrivateUsage]

    assert (_usd(0.008), _usd(50), _usd(0.25), _usd(3.12345)) == ("$0.0080", "$50.00", "$0.25", "$3.1235")


def test_a_hold_grows_only_within_the_cap(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    mine = ledger.reserve("r1", 0.002, cap=0.008, ttl_s=600, now=NOW)
    ledger.reserve("r2", 0.003, cap=0.008, ttl_s=600, now=NOW)
    ledger.resize(mine, 0.005, cap=0.008, now=NOW)  # its own old amount does not count against it
    assert ledger.held("2026-01-01", now=NOW) == pytest.approx(0.008)
    with pytest.raises(DailyCapReached) as refused:
        ledger.resize(mine, 0.0051, cap=0.008, now=NOW)
    assert (refused.value.held, refused.value.asked) == (pytest.approx(0.003), 0.0051)
    assert ledger.held("2026-01-01", now=NOW) == pytest.approx(0.008)  # a refused resize changes nothing
    ledger.resize(mine, 0.004, cap=0.008, now=NOW + 600)  # expired: not revived
    assert ledger.held("2026-01-01", now=NOW + 600) == 0


class BilledGarbage:
    """A provider whose every reply is garbled and billed `usage`."""

    name = "gpt-4o-mini"

    def __init__(self, usage: Usage) -> None:
        self.usage = usage
        self.calls = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        raise MalformedResponse("not a chat completion", billed=self.usage)


async def test_a_retry_after_billed_garbage_must_fit_in_the_daily_cap(tmp_path: Path) -> None:
    """The day's hold was one worst case; billed retries were charged past it. Each further attempt now grows the
    hold to what the earlier ones cost plus its own worst case, and stops when the day's cap cannot take it."""
    worst = _worst(tmp_path)
    billed = Usage(int(worst / 0.15e-6), 0, 0)  # gpt-4o-mini's input price: each garbled reply costs `worst`
    cap = worst * 2.5  # two billed attempts and the next worst case do not fit
    ledger = Ledger(tmp_path / "ledger.sqlite")
    model = BilledGarbage(billed)
    chain = Fallback([Retrying(model, attempts=4), Retrying(model, attempts=4)])
    run = _run(chain, _policy(cap), ledger, tmp_path, "r")
    with pytest.raises(BudgetExceeded) as refused:
        await run.query(REQUEST)
    assert refused.value.reason.startswith("no attempt after the billed ones: daily budget: $0.0000 spent today")
    assert model.calls == 2  # before: 6 (each model tried 3 times under stamina's test mode), each one charged
    assert ledger.day_spend() == pytest.approx(2 * worst, rel=1e-3) and ledger.day_spend() <= cap
    assert ledger.held() == 0


def test_the_worst_case_covers_the_most_a_provider_can_be_charged_for_a_call(tmp_path: Path) -> None:
    """Before, the worst case counted the prompt's bytes, while a provider's usage is taken up to the bytes plus
    TEMPLATE_TOKENS: each call could pass a cap by 4,096 input tokens."""
    run = _run(GatedModel(), _policy(50), Ledger(tmp_path / "l.sqlite"), tmp_path, "r")
    most = checked_usage(
        REQUEST, Message("assistant", ""), provider="p", model="gpt-4o-mini", input_tokens=10**12, output_tokens=10**12
    )
    assert most.input_tokens > REQUEST.size_bytes()  # the provider's template is allowed for
    charged = run.prices.charge("gpt-4o-mini", ["gpt-4o-mini"], most)
    assert charged == pytest.approx(run.check_budget(REQUEST))


def test_a_hold_taken_before_midnight_counts_after_it(tmp_path: Path) -> None:
    """Before, holds were counted by the day they were taken: a call in flight at midnight was invisible to the new
    day's reservations, and both settled into the new day ($0.08 spent against a $0.05 cap)."""
    ledger = Ledger(tmp_path / "l.sqlite")
    midnight = 1_767_312_000.0  # 2026-01-02T00:00:00Z
    late = ledger.reserve("r1", 0.04, cap=0.05, ttl_s=600, now=midnight - 10)
    with pytest.raises(DailyCapReached) as refused:
        ledger.reserve("r2", 0.04, cap=0.05, ttl_s=600, now=midnight + 10)
    assert refused.value.held == pytest.approx(0.04)
    mine = ledger.reserve("r2", 0.01, cap=0.05, ttl_s=600, now=midnight + 10)
    with pytest.raises(DailyCapReached):
        ledger.resize(mine, 0.02, cap=0.05, now=midnight + 20)
    ledger.settle(late, "r1", "gpt-4o-mini", "small", (1, 1, 0), 0.04, at=midnight + 30)
    assert ledger.day_spend("2026-01-02") == pytest.approx(0.04)


def test_sigterm_stops_a_model_call_as_ctrl_c_does(tmp_path: Path) -> None:
    """Before, `goresolve resolve` ran without a SIGTERM handler (Kubernetes stops a pod with it): the process died
    at once and its daily hold stayed until it expired. Now SIGTERM cancels the run inside its event loop, as
    Ctrl-C does: the call in flight gives its hold back (and a whole run records itself as interrupted)."""
    import os
    import signal

    from goresolve.stopping import Stopped, until_signal

    ledger = Ledger(tmp_path / "ledger.sqlite")
    model = GatedModel()
    run = _run(model, _policy(50), ledger, tmp_path, "stopped")
    held: list[float] = []

    async def term_when_called() -> None:
        await model.entered.wait()
        held.append(ledger.held())
        os.kill(os.getpid(), signal.SIGTERM)

    async def main() -> Stopped:
        with anyio.fail_after(WAIT_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(term_when_called)
                try:
                    await until_signal(run.query, REQUEST)
                except Stopped as stopped:
                    return stopped
        raise AssertionError("the call ended before the signal")

    assert anyio.run(main).exit_code == 143 and held and held[0] > 0
    assert ledger.held() == 0 and ledger.day_spend() == 0
