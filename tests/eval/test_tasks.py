"""The shipped eval tasks and the task-file format: real fixes, tests split from code, clear errors."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.eval.oracle import run_patterns
from agent.eval.tasks import TaskFileError, load_tasks

TASKS = pathlib.Path(__file__).resolve().parents[2] / "bench" / "data" / "eval" / "tasks.jsonl"
RESERVED = ("grpc/grpc-go", "google.golang.org/grpc", "zeromicro/go-zero", "spf13/cobra", "gin-gonic/gin",
            "go-chi/chi", "hashicorp/raft", "labstack/echo", "urfave/cli", "prometheus/client_golang")  # fmt: skip


def _paths(patch: str) -> list[str]:
    return re.findall(r"^diff --git a/\S+ b/(\S+)$", patch, re.MULTILINE)


def test_at_least_thirty_tasks_from_several_public_modules_none_reserved() -> None:
    tasks = load_tasks(TASKS)
    assert len(tasks) >= 30
    modules = {t.module for t in tasks}
    assert len(modules) >= 5
    assert not [m for m in modules if any(r in m for r in RESERVED)]


def test_each_task_is_a_release_plus_a_split_upstream_fix() -> None:
    for task in load_tasks(TASKS):
        assert re.fullmatch(r"v\d+\.\d+\.\d+", task.version), task.instance_id
        tests, fix = _paths(task.test_patch), _paths(task.gold_patch)
        assert tests and all(p.endswith("_test.go") or "testdata/" in p for p in tests), task.instance_id
        assert fix and all(p.endswith(".go") and not p.endswith("_test.go") for p in fix), task.instance_id
        assert task.gold_functions, task.instance_id
        assert task.fix_commit[:12] in task.instance_id


def test_a_bad_task_file_names_the_line(tmp_path: pathlib.Path) -> None:
    good = TASKS.read_text().splitlines()[0]
    cases = {
        "not json": (f"{good}\n{{oops\n", r":2: not JSON"),
        "bad field": (json.dumps(json.loads(good) | {"base_commit": "main"}) + "\n", r":1: field 'base_commit'"),
        "duplicate": (f"{good}\n\n{good}\n", r":3: duplicate instance_id"),
        # before, an empty file ran: "0 valid / 0 tasks", exit 0, results.md overwritten beside the last results
        "empty": ("\n\n", r"empty\.jsonl: no tasks"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(text)
        with pytest.raises(TaskFileError, match=message):
            load_tasks(path)
    with pytest.raises(TaskFileError, match="No such file"):
        load_tasks(tmp_path / "missing.jsonl")


@given(st.lists(st.from_regex(r"Test[A-Za-z0-9_]{1,60}", fullmatch=True), min_size=1, max_size=40))
def test_run_patterns_cover_every_name_within_the_runner_limit(names: list[str]) -> None:
    patterns = run_patterns(names)
    assert all(len(p) <= 200 for p in patterns)
    assert all(any(re.fullmatch(p, n) for p in patterns) for n in names)
    assert not any(re.fullmatch(p, "TestNotInTheList_" * 3) for p in patterns)
