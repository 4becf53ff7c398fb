"""How `goresolve trace` finds a run by its id or a prefix, and how `goresolve runs` lays them out."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from agent.ledger import RunRow
from agent.runstore import RunLookupError, find_run_dir, runs_view

IDS = ("20261205-010916-ee1484", "20261205-010930-229023", "20261206-120000-abcdef")


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    for run_id in IDS:
        (tmp_path / run_id).mkdir()
    (tmp_path / "20261205-stray-file").write_text("not a run")
    return tmp_path


def test_a_whole_id_or_a_unique_prefix_finds_its_run(runs_dir: Path) -> None:
    assert find_run_dir(runs_dir, IDS[0]) == runs_dir / IDS[0]
    assert find_run_dir(runs_dir, "20261206") == runs_dir / IDS[2]
    assert find_run_dir(runs_dir, f" {IDS[1]}\n") == runs_dir / IDS[1]  # pasted with its newline


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_id_is_refused_not_matched_against_every_run(runs_dir: Path, empty: str) -> None:
    with pytest.raises(RunLookupError) as refused:
        find_run_dir(runs_dir, empty)
    assert refused.value.message == "give a run id (or a unique prefix of one), as `goresolve runs` lists them"


def test_an_ambiguous_prefix_lists_the_runs_it_matches(runs_dir: Path) -> None:
    with pytest.raises(RunLookupError) as ambiguous:
        find_run_dir(runs_dir, "20261205")
    assert ambiguous.value.message == (f"'20261205' matches 2 runs: {IDS[0]}, {IDS[1]}; give more of the id")


def test_many_matches_are_listed_in_part(tmp_path: Path) -> None:
    for i in range(13):
        (tmp_path / f"20261205-0000{i:02d}-aaaaaa").mkdir()
    with pytest.raises(RunLookupError) as ambiguous:
        find_run_dir(tmp_path, "2026")
    assert ambiguous.value.message.count("20261205-") == 10 and "and 3 more; give more of the id" in (
        ambiguous.value.message
    )


@pytest.mark.parametrize("bad", ["nope", "../etc", "a/b", ".", ".."])
def test_no_such_run_or_a_path_is_one_message(runs_dir: Path, bad: str) -> None:
    with pytest.raises(RunLookupError, match="no run"):
        find_run_dir(runs_dir, bad)


def test_no_runs_directory_yet(tmp_path: Path) -> None:
    with pytest.raises(RunLookupError, match="no run 'x'"):
        find_run_dir(tmp_path / "none", "x")


def _row(run_id: str, exit_: str = "failed_attempts") -> RunRow:
    return RunRow(
        run_id, "SVC-102", "sample-service", "strong", "m", "escalated", exit_, "r", 0.0078, 50380, 9.4, 0.0, "t", "d"
    )


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_the_runs_view_never_cuts_the_run_id_nor_breaks_a_word(width: int) -> None:
    out = io.StringIO()
    rows = [_row(IDS[0]), _row(IDS[1], "submitted")]
    Console(file=out, width=width).print(runs_view(rows, width))
    text = out.getvalue()
    assert IDS[0] in text and IDS[1] in text and "…" not in text
    assert "$0.0078" in text and "50380" in text and "strong" in text
    assert all(len(line.rstrip()) <= width for line in text.splitlines())
    words = {w for r in rows for w in (r.ticket, r.exit, r.outcome, r.tier)}
    assert all(w in text for w in words), "a word was broken across lines"
    one_line_a_run = sum(IDS[0] in line and r"$0.0078" in line for line in text.splitlines()) == 1
    assert one_line_a_run is (width >= 120)
