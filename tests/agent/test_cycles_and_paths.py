"""The stuck detector sees cycles of up to four calls, and the overlay refuses a path with a control character (a
newline would write its own lines into the diff's headers)."""

from __future__ import annotations

from typing import Any

import pytest

from agent.exits import Stuck
from agent.overlay import EditError, Overlay
from agent.policy import StuckThresholds
from agent.stuck import StuckDetector

Call = tuple[str, dict[str, Any], str]
A: Call = ("view", {"path": "calc.go"}, "calc.go (lines 1-7 of 7)")
B: Call = ("view", {"path": "stats/stats.go"}, "stats/stats.go (lines 1-9 of 9)")
T: Call = ("run_tests", {"packages": ["./stats"], "state": "e3b0c44298fc1c14"}, "1 package(s): 1 ok")
D: Call = ("search_code", {"query": "Sum"}, "stats.Sum")


@pytest.mark.parametrize("cycle", [[A, B], [A, B, T], [A, B, T, D]], ids=["two", "three", "four"])
def test_a_cycle_of_up_to_four_calls_with_unchanged_results_is_stuck_on_its_third_turn(cycle: list[Call]) -> None:
    detector = StuckDetector(StuckThresholds())
    calls = cycle * 3
    for name, args, result in calls[:-1]:
        detector.observe_call(name, args, result)
    name, args, result = calls[-1]
    with pytest.raises(Stuck) as stuck:
        detector.observe_call(name, args, result)
    assert stuck.value.pattern == "alternation"
    what = "two calls alternated" if len(cycle) == 2 else f"a cycle of {len(cycle)} calls repeated"
    assert stuck.value.reason == f"{what} 3 times with unchanged results"


def test_a_cycle_whose_results_change_is_not_stuck() -> None:
    detector = StuckDetector(StuckThresholds())
    for turn in range(6):
        for name, args, result in (A, B, T):
            detector.observe_call(name, args, f"{result} (turn {turn})" if name == "run_tests" else result)
    assert len(detector.calls) == 18


@pytest.mark.parametrize("path", ["zz.go\n--- a/go.mod\n+++ b/go.mod", "a\tb.go", "a\rb.go", "nul\x00.go", "x\x85.go"])
async def test_a_path_with_a_control_character_is_refused_before_anything_is_read(path: str) -> None:
    reads: list[str] = []

    async def read(p: str) -> str | None:
        reads.append(p)
        return None

    overlay = Overlay(read)
    with pytest.raises(EditError, match=r"^path must not contain control characters \(newlines, tabs, \.\.\.\)$"):
        await overlay.edit(path, "", "package calc\n")
    assert reads == [] and overlay.diff() == ""
