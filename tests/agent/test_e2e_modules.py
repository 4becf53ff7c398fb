"""The loop on the four real stdio servers, on a repository with an importer and a module below the root:
a fix that passes its own package's tests but breaks a package importing it is not opened as a pull
request (submit's last run tests the dependents), and a fix in the nested module is tested there and
opened."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.ledger import Ledger
from agent.llm import ScriptedModel
from agent.loop import RunResult, RunSettings
from agent.policy import load_agent_policy

from .workspace import FILES as WORLD_FILES
from .workspace import TICKET, Workspace, World, make_workspace, pulls, run_scripted, served

FILES = {
    **WORLD_FILES,  # the calc module of the other end-to-end tests, with a Mul that shapes imports
    "calc.go": WORLD_FILES["calc.go"] + "\n// Mul returns a * b.\nfunc Mul(a, b int) int {\n\treturn a * b\n}\n",
    "shapes/shapes.go": textwrap.dedent(
        """\
        // Package shapes measures rectangles with calc.
        package shapes

        import "example.com/calc"

        // Area of a w x h rectangle.
        func Area(w, h int) int { return calc.Mul(w, h) }
        """
    ),
    "shapes/shapes_test.go": textwrap.dedent(
        """\
        package shapes

        import "testing"

        func TestArea(t *testing.T) {
        \tif got := Area(2, 4); got != 8 {
        \t\tt.Fatalf("Area(2, 4) = %d, want 8", got)
        \t}
        }
        """
    ),
    "tools/go.mod": "module example.com/calc/tools\n\ngo 1.21\n",
    "tools/fmtx/fmtx.go": textwrap.dedent(
        """\
        // Package fmtx formats amounts for the invoices.
        package fmtx

        import "strconv"

        // Amount prints cents as units with two decimals.
        func Amount(cents int) string {
        \treturn strconv.Itoa(cents/100) + "," + strconv.Itoa(cents%100)
        }
        """
    ),
    "tools/fmtx/fmtx_test.go": textwrap.dedent(
        """\
        package fmtx

        import "testing"

        func TestAmount(t *testing.T) {
        \tif got := Amount(1205); got != "12.05" {
        \t\tt.Fatalf("Amount(1205) = %q, want 12.05", got)
        \t}
        }
        """
    ),
}

AMOUNT_TICKET = (
    TICKET.replace("CALC-1", "CALC-5")
    .replace("Add returns the difference instead of the sum", "Invoice amounts print with a comma")
    .replace(
        "Invoices are wrong: calc.Add(2, 3) returns -1. TestAdd fails on main.\n    Expected: Add returns a + b.",
        "fmtx.Amount(1205) prints 12,5; TestAmount fails. Expected: 12.05.",
    )
)


@pytest.fixture(scope="module")
def modules_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    tickets = {"CALC-1": TICKET, "CALC-5": AMOUNT_TICKET, "CALC-6": TICKET.replace("CALC-1", "CALC-6")}
    return make_workspace(tmp_path_factory.mktemp("modules-world"), FILES, tickets=tickets)


@pytest.fixture(scope="module")
def world(modules_workspace: Workspace) -> Iterator[World]:
    with served(modules_workspace) as w:
        yield w


def run(world: World, ws: Workspace, ticket: str, calls: list[Any], tmp_path: Path) -> tuple[RunResult, ScriptedModel]:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    settings = RunSettings(repo="calc", state_dir=tmp_path / "agent", ledger=ledger, test_timeout_s=120)
    try:
        return run_scripted(world, ticket, calls, load_agent_policy(ws.policy_dir), settings)
    finally:
        ledger.close()


def test_a_fix_that_breaks_an_importer_is_not_opened(
    world: World, modules_workspace: Workspace, tmp_path: Path
) -> None:
    """The edit fixes Add and, by a slip, breaks Mul: calc's own tests pass, shapes' TestArea does not."""
    slip = {"path": "calc.go", "search": "return a - b", "replace": "return a + b"}
    also = {"path": "calc.go", "search": "return a * b", "replace": "return a * a"}
    calls = [
        ("edit", slip),
        ("edit", also),
        ("run_tests", {}),  # the model's own run: the package it edited, `.`, passes
        ("submit", {"title": "Add returns the sum", "summary": "Add now adds b."}),
        ("escalate", {"reason": "the fix breaks shapes"}),
    ]
    result, model = run(world, modules_workspace, "CALC-1", calls, tmp_path)
    shown = [m.content for m in model.requests[-1].messages if m.role == "tool"]
    assert shown[2].startswith("1 package(s): 1 ok"), shown[2]
    assert shown[3].startswith("not submitted: tests newly broken by the patch: TestArea"), shown[3]
    assert (result.outcome, result.exit) == ("escalated", "escalated"), result.reason
    store = pulls(modules_workspace)
    pull = store.by_ticket("calc", "CALC-1")
    assert pull is None or pull.draft  # at most the hand-off's draft


def test_the_model_can_test_the_importers_itself_before_it_submits(
    world: World, modules_workspace: Workspace, tmp_path: Path
) -> None:
    """The same slip, caught by the model's own run with `dependents`: it sees shapes' TestArea fail, undoes
    the slip, and the pull request opens."""
    calls = [
        ("edit", {"path": "calc.go", "search": "return a - b", "replace": "return a + b"}),
        ("edit", {"path": "calc.go", "search": "return a * b", "replace": "return a * a"}),
        ("run_tests", {"dependents": True}),
        ("edit", {"path": "calc.go", "search": "return a * a", "replace": "return a * b"}),
        ("run_tests", {"dependents": True}),
        ("submit", {"title": "Add returns the sum", "summary": "Add now adds b."}),
    ]
    result, model = run(world, modules_workspace, "CALC-6", calls, tmp_path)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    shown = [m.content for m in model.requests[-1].messages if m.role == "tool"]
    assert "TestArea" in shown[2] and "1 failed" in shown[2], shown[2]  # shapes imports calc: tested too
    assert shown[4].startswith("2 package(s): 2 ok"), shown[4]


def test_a_fix_in_the_nested_module_is_tested_there_and_opened(
    world: World, modules_workspace: Workspace, tmp_path: Path
) -> None:
    fix = {"path": "tools/fmtx/fmtx.go", "search": '"," + strconv.Itoa(cents%100)', "replace": ""}
    fix["replace"] = '"." + fmt.Sprintf("%02d", cents%100)'
    imports = {
        "path": "tools/fmtx/fmtx.go",
        "search": 'import "strconv"',
        "replace": 'import (\n\t"fmt"\n\t"strconv"\n)',
    }
    calls = [
        ("edit", fix),
        ("edit", imports),
        ("run_tests", {}),
        ("submit", {"title": "Amounts print with a dot", "summary": "Amount pads cents to two digits."}),
    ]
    result, model = run(world, modules_workspace, "CALC-5", calls, tmp_path)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    tested = [m.content for m in model.requests[-1].messages if m.role == "tool"][2]
    assert tested.startswith("1 package(s): 1 ok; 1 test(s) passed."), tested
    pull = pulls(modules_workspace).by_ticket("calc", "CALC-5")
    assert pull is not None and not pull.draft
    assert "Ran `TestAmount` and every test in `./tools/fmtx` on this patch: all pass" in pull.body
