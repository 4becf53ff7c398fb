"""The spend alert fires at most once per window when several processes claim it on one ledger file at once."""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.synchronize import Barrier
from pathlib import Path
from queue import Empty
from typing import Any

from agent.ledger import Ledger

PROCESSES = 3
WINDOWS = 40
WAIT_S = 120.0  # only a bound on a broken run: the barrier lines the processes up, whatever the machine's speed


def _claimer(path: str, barrier: Barrier, results: Any) -> None:
    ledger = Ledger(Path(path))
    won: list[bool] = []
    for window in range(WINDOWS):
        barrier.wait(WAIT_S)  # every process claims window n at the same moment
        won.append(ledger.claim_alert(f"kind-{window}", window_s=3600))
    ledger.close()
    results.put(won)


def test_processes_racing_for_one_alert_window_fire_it_once(tmp_path: Path) -> None:
    """Before: the check ran outside the insert's transaction and two processes fired 297 of 300 windows twice."""
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(str(path), barrier, results)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=WAIT_S) for _ in procs]
    except Empty:
        raise AssertionError("a claiming process did not finish") from None
    finally:
        for p in procs:
            p.join(timeout=WAIT_S)
            if p.is_alive():
                p.kill()
    winners = [sum(won[window] for won in outcomes) for window in range(WINDOWS)]
    assert winners == [1] * WINDOWS
    assert Ledger(path).claim_alert("kind-0", window_s=3600) is False  # remembered for the window
