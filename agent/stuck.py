"""The stuck detector: it watches tool calls and their results, never the model's prose.

Four patterns (thresholds from policies/budgets.yaml `stuck:`):
- repeated_call: the same call with the same result N times in a row;
- alternation: a cycle of two to four calls (A, B, A, B or A, B, C, A, B, C ...) N times with unchanged results
  (a `run_tests` call is keyed on the overlay's state, so tests re-run on unchanged code repeat);
- same_failure: the same failing-test signature after N different patches in a row;
- undo: an edit that exactly reverts an earlier edit and lands on a patch already tested, so the
  model is going back to something it has already seen fail (a plain revert to try another idea is fine).
An edit → test → edit cycle with changing patches and changing results never matches any of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from agent.exits import Stuck
from agent.policy import StuckThresholds

MAX_CYCLE = 4  # the longest cycle of calls `alternation` looks for


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class StuckDetector:
    thresholds: StuckThresholds
    calls: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    tests: list[tuple[str, str | None]] = field(default_factory=list[tuple[str, str | None]])
    edits: list[tuple[str, str, str]] = field(default_factory=list[tuple[str, str, str]])
    tested_states: set[str] = field(default_factory=set[str])

    def observe_call(self, name: str, arguments: Any, result: str) -> None:
        """Raises Stuck on a repeated call or a cycle of two to four calls."""
        self.calls.append((f"{name}:{digest(arguments)}", digest(result)))
        n = self.thresholds.repeated_call
        tail = self.calls[-n:]
        if len(tail) == n and len(set(tail)) == 1:
            raise Stuck("repeated_call", f"the same {name} call returned the same result {n} times in a row")
        for period in range(2, MAX_CYCLE + 1):
            k = period * self.thresholds.alternation
            tail = self.calls[-k:]
            if len(tail) == k and len(set(tail[:period])) > 1 and all(tail[i] == tail[i % period] for i in range(k)):
                what = "two calls alternated" if period == 2 else f"a cycle of {period} calls repeated"
                raise Stuck("alternation", f"{what} {self.thresholds.alternation} times with unchanged results")

    def observe_test(self, patch_state: str, failure_signature: str | None) -> None:
        """Raises Stuck when different patches keep failing the same way."""
        self.tested_states.add(patch_state)
        self.tests.append((patch_state, failure_signature))
        n = self.thresholds.same_failure
        tail = self.tests[-n:]
        if (
            len(tail) == n
            and tail[0][1] is not None
            and all(sig == tail[0][1] for _, sig in tail)
            and len({state for state, _ in tail}) == n
        ):
            raise Stuck("same_failure", f"{n} different patches failed with the same tests and the same first lines")

    def observe_edit(self, path: str, search: str, replace: str, state_after: str) -> None:
        """Raises Stuck when an edit undoes an earlier one and returns to an already-tested patch."""
        undoes = (path, replace, search) in self.edits
        self.edits.append((path, search, replace))
        if undoes and state_after in self.tested_states:
            raise Stuck("undo", f"an edit of {path} undid an earlier edit, back to a patch already tested")
