"""bench/github_pr_bench.py compares like with like: each round runs every path once, in a rotated order."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "github_pr_bench.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("github_pr_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pairs_are_interleaved_round_by_round() -> None:
    calls: list[tuple[str, int]] = []

    def step(name: str):
        return lambda i: calls.append((name, i))

    times = _bench().interleaved(
        [[("open", step("open")), ("update", step("update"))], [("raw", step("raw"))], [("policy", step("policy"))]],
        runs=4,
    )
    assert {name: len(values) for name, values in times.items()} == {"open": 4, "update": 4, "raw": 4, "policy": 4}
    rounds = [[name for name, i in calls if i == r] for r in range(4)]
    assert [name for name, _i in calls] == [n for r in rounds for n in r]  # round i ends before round i+1
    assert rounds == [
        ["open", "update", "raw", "policy"],
        ["raw", "policy", "open", "update"],
        ["policy", "open", "update", "raw"],
        ["open", "update", "raw", "policy"],
    ]
