"""`goresolve eval` through the agent: a shipped task replayed from its recording (agent/eval/recordings/), judged
by the harness; plus the pure parts (gold patch → edits, localization)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.eval.agent_solver import localized, ticket_key
from agent.eval.record import PatchShapeError, edits_from_patch
from agent.eval.tasks import load_tasks
from goresolve.cli import app
from servers.common.settings import default_data_dir

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "bench" / "data" / "eval" / "tasks.jsonl"
RECORDINGS = ROOT / "agent" / "eval" / "recordings"
REPLAYED = "spf13-pflag-ed81e5b5da02"

PATCH = "\n".join(
    [
        "diff --git a/a.go b/a.go",
        "--- a/a.go",
        "+++ b/a.go",
        "@@ -1,4 +1,5 @@",
        " package a",
        " ",  # a blank context line keeps its one space
        " func F(x int) int {",
        "-\treturn x",
        "+\tx++",
        "+\treturn x",
        " }",
        "diff --git a/b.go b/b.go",
        "new file mode 100644",
        "--- /dev/null",
        "+++ b/b.go",
        "@@ -0,0 +1,2 @@",
        "+package a",
        "+// B is new.",
        "",
    ]
)


def test_each_hunk_becomes_one_edit_and_a_new_file_is_created_from_empty() -> None:
    edits = edits_from_patch(PATCH)
    assert edits == [
        {
            "path": "a.go",
            "search": "package a\n\nfunc F(x int) int {\n\treturn x\n}\n",
            "replace": "package a\n\nfunc F(x int) int {\n\tx++\n\treturn x\n}\n",
        },
        {"path": "b.go", "search": "", "replace": "package a\n// B is new.\n"},
    ]
    base = "package a\n\nfunc F(x int) int {\n\treturn x\n}\n"
    assert base.replace(edits[0]["search"], edits[0]["replace"]).count("x++") == 1


def test_a_deleted_file_cannot_be_an_edit() -> None:
    with pytest.raises(PatchShapeError, match="deletes a file"):
        edits_from_patch("--- a/x.go\n+++ /dev/null\n@@ -1 +0,0 @@\n-package x\n")


def test_every_shipped_gold_patch_of_the_replayed_modules_turns_into_edits() -> None:
    tasks = [t for t in load_tasks(TASKS) if t.module == "github.com/spf13/pflag"]
    assert tasks
    for task in tasks:
        assert edits_from_patch(task.gold_patch), task.instance_id


def test_localization_needs_every_gold_function_in_the_context() -> None:
    units = ["// ip.go:34-44 ipConv (func)", "// ip.go:20-26 ipValue.Type (method)"]
    assert localized(["ip.go:ipConv", "ip.go:ipValue.Type"], units) is True
    assert localized(["ip.go:ipConv", "ip.go:ipValue.Set"], units) is False
    assert localized(["other.go:ipConv"], units) is False
    assert localized([], units) is None


def test_a_task_key_is_a_stable_jira_key() -> None:
    task = next(t for t in load_tasks(TASKS) if t.instance_id == REPLAYED)
    assert ticket_key(task) == ticket_key(task)
    assert ticket_key(task).startswith("EVAL-")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_recorded_task_replays_through_the_agent_to_a_resolved_result_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"  # the run's own data dir, with the embedding model `goresolve model install` put in place
    data.mkdir()
    (data / "models").symlink_to(default_data_dir() / "models", target_is_directory=True)
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(data))
    monkeypatch.setenv("GORESOLVE_CODE_SEARCH_EMBEDDER", "minilm")  # the replay indexes as recorded, whatever is set
    out = tmp_path / "eval"
    args = ["eval", str(TASKS), "--only", REPLAYED, "--recordings", str(RECORDINGS), "--out", str(out)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    (result,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    # a changed prompt or tool makes the replay refuse: re-record with
    #   python -m agent.eval.record bench/data/eval/tasks.jsonl --only <id> --out agent/eval/recordings
    assert (result["mode"], result["outcome"]) == ("model", "resolved"), result["detail"]
    assert result["fail_to_pass_ok"] is True and result["pass_to_pass_ok"] is True
    # localization is judged on the context the model was given: recomputed here from the run's transcript
    transcript = out / "agent" / REPLAYED / "run" / "agent" / "runs" / REPLAYED / "transcript.jsonl"
    entries = [json.loads(line) for line in transcript.read_text().splitlines()]
    (start,) = [e for e in entries if e["kind"] == "start"]
    context = start["context"]
    task = next(t for t in load_tasks(TASKS) if t.instance_id == REPLAYED)
    assert result["localization_hit"] is localized(task.gold_functions, context["units"])
    assert any(u.startswith("// ip.go:") for u in context["units"])  # the fixed file is in the context
    assert result["tool_calls"] >= 3 and result["tokens"] > 0 and result["cost_usd"] > 0
    assert "resolve rate: 1/1 (100%)" in done.stdout and "escalation rate: 0/1 (0%)" in done.stdout
    assert "| spf13-pflag-ed81e5b5da02 | resolved |" in (out / "results.md").read_text()

    again = CliRunner().invoke(app, args)  # resumed: the task is not run again
    assert again.exit_code == 0, again.output
    assert len((out / "results.jsonl").read_text().splitlines()) == 1
