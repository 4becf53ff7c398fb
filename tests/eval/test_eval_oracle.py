"""`goresolve eval --oracle` end to end: real module from the proxy, real go-test-runner over MCP (stdio).

The oracle proves a task valid only when its tests fail before the fix and pass after it; a
patch that fixes nothing, or one that touches protected paths, is reported as not valid. An
interrupted or repeated run resumes from results.jsonl without running a task twice.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from agent.eval.tasks import load_tasks

TASKS = pathlib.Path(__file__).resolve().parents[2] / "bench" / "data" / "eval" / "tasks.jsonl"
SMALL = "mitchellh-mapstructure-edc56495e150"  # one package, a few seconds of tests


def invoke(*args: str, data_dir: pathlib.Path | None = None) -> tuple[int, str]:
    """The command as a user runs it: its own process, the runner server a child of it."""
    env = {**os.environ, "GORESOLVE_DATA_DIR": str(data_dir)} if data_dir is not None else None
    proc = subprocess.run(
        [sys.executable, "-m", "agent.eval", *args], capture_output=True, text=True, timeout=600, check=False, env=env
    )
    return proc.returncode, proc.stdout + proc.stderr


def lines(path: pathlib.Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_oracle_proves_a_shipped_task_valid_and_a_second_run_resumes(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "data" / "eval"  # the default: the data directory's, wherever the command runs
    code, output = invoke(str(TASKS), "--oracle", "--only", SMALL, data_dir=tmp_path / "data")
    assert code == 0, output
    assert "eval oracle: 1 valid / 1 tasks" in output
    [row] = lines(out / "results.jsonl")
    assert row["outcome"] == "valid" and row["fail_to_pass_ok"] is True and row["pass_to_pass_ok"] is True
    assert f"| {SMALL} | valid | yes | yes |" in (out / "results.md").read_text()

    code, output = invoke(str(TASKS), "--oracle", "--only", SMALL, "--out", str(out))
    assert code == 0 and "eval oracle: 1 valid / 1 tasks" in output
    assert len(lines(out / "results.jsonl")) == 1  # resumed: nothing ran twice


def test_a_fix_that_fixes_nothing_and_a_patch_on_protected_paths_are_not_valid(tmp_path: pathlib.Path) -> None:
    [task] = [t for t in load_tasks(TASKS) if t.instance_id == SMALL]
    package = task.module.rsplit("/", 1)[-1]
    noop = (
        "diff --git a/noop.go b/noop.go\nnew file mode 100644\n--- /dev/null\n+++ b/noop.go\n"
        f"@@ -0,0 +1 @@\n+package {package}\n"
    )
    tamper = (
        "diff --git a/testdata/x.txt b/testdata/x.txt\nnew file mode 100644\n--- /dev/null\n+++ b/testdata/x.txt\n"
        "@@ -0,0 +1 @@\n+x\n"
    )
    variants = [
        task.model_copy(update={"instance_id": f"{SMALL}-noop", "gold_patch": noop}),
        task.model_copy(update={"instance_id": f"{SMALL}-protected", "gold_patch": tamper}),
    ]
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(v.model_dump_json() + "\n" for v in variants))
    code, output = invoke(str(tasks), "--oracle", "--out", str(tmp_path / "out"))
    assert code == 1, output
    assert "eval oracle: 0 valid / 2 tasks" in output
    rows = {r["instance_id"]: r for r in lines(tmp_path / "out" / "results.jsonl")}
    assert rows[f"{SMALL}-noop"]["outcome"] == "invalid"
    assert "still failing" in str(rows[f"{SMALL}-noop"]["detail"])
    assert rows[f"{SMALL}-protected"]["outcome"] == "invalid"
    assert "refused by policy" in str(rows[f"{SMALL}-protected"]["detail"])


def test_an_empty_only_names_no_task_and_runs_none(tmp_path: pathlib.Path) -> None:
    code, output = invoke(str(TASKS), "--oracle", "--only", " , ", "--out", str(tmp_path / "out"))
    assert code == 2 and "--only names no task" in output
    assert not (tmp_path / "out").exists()


def test_the_model_mode_without_a_model_refuses_and_names_what_is_missing(tmp_path: pathlib.Path) -> None:
    code, output = invoke(str(TASKS), "--only", SMALL, "--out", str(tmp_path / "out"))
    assert code == 2
    assert "no model" in output and "--recordings" in output and "--oracle" in output
    assert not (tmp_path / "out").exists()


def test_the_model_mode_with_half_a_model_names_the_missing_variable(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GORESOLVE_AGENT_MODEL", raising=False)
    monkeypatch.setenv("GORESOLVE_AGENT_PROVIDER", "anthropic")
    code, output = invoke(str(TASKS), "--only", SMALL, "--out", str(tmp_path / "out"))
    assert code == 2
    assert "GORESOLVE_AGENT_PROVIDER is anthropic but GORESOLVE_AGENT_MODEL is not set" in output
    assert not (tmp_path / "out").exists()


def test_a_bad_task_file_or_unknown_task_is_one_line_exit_2(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    code, output = invoke(str(bad), "--oracle", "--out", str(tmp_path / "out"))
    assert code == 2 and "bad.jsonl:1: field" in output and "Traceback" not in output
    code, output = invoke(str(TASKS), "--oracle", "--only", "nope", "--out", str(tmp_path / "out"))
    assert code == 2 and "no such task: nope" in output


def test_without_a_task_file_the_shipped_tasks_are_used(tmp_path: pathlib.Path) -> None:
    from agent.eval.cli import SHIPPED_TASKS

    assert SHIPPED_TASKS == TASKS
    code, output = invoke("--oracle", "--only", "nope", "--out", str(tmp_path / "out"))
    assert code == 2 and "no such task: nope" in output  # the shipped file was read: only the id is unknown
    code, output = invoke("--help")
    assert code == 0 and "bench/data/eval/tasks.jsonl" in output
