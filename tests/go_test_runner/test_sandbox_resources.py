"""Resources test code can take from the host, against the real sandbox with lowered limits: scratch files
in its memory-backed /tmp and layers count in the memory limit and the run's scratch limit; a fork bomb
is stopped at the process ceiling, not far past it; a line without end is cut before it reaches go; the
host's /usr/local is hidden while the toolchain in it works. Sizes are a few hundred MiB at most."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import pytest

from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.results import RunResult
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.sandbox import Outcome

from .conftest import commit_all, git, make_runner_for, processes_with

pytestmark = pytest.mark.slow

_BOMB_MARK = "20.4242"  # the bomb's sleep argument: no process with it may outlive the run

_SOURCES = {
    "go.mod": "module example.com/resources\n\ngo 1.22\n",
    "fill/fill_test.go": """package fill

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestFill writes 256 MiB into its /tmp and 256 MiB into the worktree (its writable layer), then waits.
func TestFill(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for i, dir := range []string{"/tmp", "."} {
		f, err := os.Create(fmt.Sprintf("%s/fill%d", dir, i))
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 256; j++ {
			if _, err := f.Write(chunk); err != nil {
				t.Fatalf("%s after %d MiB: %v", dir, j, err)
			}
		}
		f.Close()
	}
	time.Sleep(60 * time.Second)
	t.Error("ESCAPED: 512 MiB of scratch files were not stopped")
}
""",
    "bomb/bomb_test.go": f"""package bomb

import (
	"os/exec"
	"testing"
)

// TestBomb starts a bounded exponential fork bomb: up to 2^10 shells, each sleeping 20 s.
func TestBomb(t *testing.T) {{
	script := `b(){{ if [ $1 -gt 0 ]; then b $(($1-1)) & b $(($1-1)) & fi; sleep {_BOMB_MARK}; }}; b 9; wait`
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	t.Errorf("ESCAPED: the bomb ran to its end: %v %.200s", err, out)
}}
""",
    "flood/flood_test.go": """package flood

import (
	"bytes"
	"os"
	"testing"
)

// TestFlood writes one line of 192 MiB (go would hold all of it, several times over, until its end),
// then fails: the report keeps a failed test's output.
func TestFlood(t *testing.T) {
	chunk := bytes.Repeat([]byte("B"), 1<<20)
	for i := 0; i < 192; i++ {
		os.Stdout.Write(chunk)
	}
	os.Stdout.WriteString("\\nafter the flood\\n")
	t.Error("flooded")
}
""",
    "order/order_test.go": """package order

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// TestOrder checks that stdout and stderr are one pipe, as go test gives them to a test binary (test2json
// reads the order of the writes from it), and writes to both in turn.
func TestOrder(t *testing.T) {
	var out, err syscall.Stat_t
	if syscall.Fstat(1, &out) != nil || syscall.Fstat(2, &err) != nil || out.Dev != err.Dev || out.Ino != err.Ino {
		t.Errorf("stdout and stderr are two files: inodes %d and %d", out.Ino, err.Ino)
	}
	for i := 0; i < 300; i++ {
		fmt.Fprintf(os.Stdout, "order-line out %d\\n", i)
		fmt.Fprintf(os.Stderr, "order-line err %d\\n", i)
	}
}
""",
    "view/view_test.go": """package view

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestUsrLocal(t *testing.T) {
	if _, err := os.Stat("/usr/local/etc"); err == nil {
		t.Error("ESCAPED: /usr/local/etc is visible")
	}
	entries, _ := os.ReadDir("/usr/local")
	goroot := runtime.GOROOT()
	for _, e := range entries {
		if p := filepath.Join("/usr/local", e.Name()); !strings.HasPrefix(goroot+"/", p+"/") {
			t.Errorf("ESCAPED: %s is visible", p)
		}
	}
	out, err := exec.Command(filepath.Join(goroot, "bin", "go"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "go version") {
		t.Errorf("the toolchain does not work: %v %s", err, out)
	}
}
""",
}


@pytest.fixture(scope="module")
def resources_repo(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    repo = tmp_path_factory.mktemp("resources") / "resources"
    for name, text in _SOURCES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "resources")
    return repo


def _runner(repo: pathlib.Path, tmp_path: pathlib.Path, **overrides: Any) -> Runner:
    runner = make_runner_for({"resources": repo}, tmp_path, **overrides)
    assert runner.sandbox.strong, runner.sandbox.protections.problems
    return runner


_SEEN = ("line cut at", "after the flood", "order-line")  # stream lines `_run` keeps


async def _run(
    runner: Runner, package: str, monkeypatch: pytest.MonkeyPatch, seen: list[str] | None = None
) -> tuple[RunResult, list[Outcome]]:
    """The package's run, and the sandbox's outcome of each command it ran; stream lines with one of
    `_SEEN` in them go to `seen` as well."""
    outcomes: list[Outcome] = []
    sandbox_run = runner.sandbox.run

    async def recording(*args: Any, **kwargs: Any) -> Outcome:
        on_line = kwargs["on_line"]

        def keep(line: str) -> None:
            if seen is not None and any(s in line for s in _SEEN):
                seen.append(line)
            on_line(line)

        outcome = await sandbox_run(*args, **(kwargs | {"on_line": keep}))
        outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(runner.sandbox, "run", recording)
    req = {"repo": "resources", "ref": "main", "packages": [package], "flags": ["-count=1"], "timeout_s": 120}
    return await runner.run_tests(RunTestsRequest.model_validate(req)), outcomes


def _output(result: RunResult) -> str:
    return "\n".join(line for t in result.report.tests for line in t.output)


async def test_scratch_files_count_in_the_memory_limit(
    resources_repo: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = _runner(resources_repo, tmp_path, memory_limit_mb=448)
    result, outcomes = await _run(runner, "./fill", monkeypatch)
    assert not result.ok and "ESCAPED" not in _output(result)
    limit = next(o.limit for o in outcomes if o.limit)
    found = re.search(r"^memory limit: over 448 MiB .* including (\d+) MiB of scratch files$", limit or "")
    assert found is not None, limit
    assert int(found.group(1)) > 256, limit  # the writable layer's files counted with the /tmp ones
    assert outcomes[-1].elapsed_s < 60


async def test_the_runs_scratch_files_together_are_limited(
    resources_repo: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = _runner(resources_repo, tmp_path, scratch_mb=320)
    result, _outcomes = await _run(runner, "./fill", monkeypatch)
    assert not result.ok and "ESCAPED" not in _output(result)
    assert "Killed by the sandbox's watchdog: scratch limit: over 320 MiB of scratch files" in result.summary


async def test_a_fork_bomb_is_stopped_at_the_process_ceiling(
    resources_repo: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = _runner(resources_repo, tmp_path, max_tasks=256, rlimit_nproc=256)
    ceiling = runner.sandbox.process_limit
    if ceiling is None:
        pytest.skip("no process ceiling at fork time on this host (root without a writable pids cgroup)")
    assert ceiling in " ".join(runner.report(race=False).protections)
    result, outcomes = await _run(runner, "./bomb", monkeypatch)
    assert not result.ok and "ESCAPED" not in _output(result)
    assert "Killed by the sandbox's watchdog: process limit: over 256 tasks" in result.summary
    [killed] = [o for o in outcomes if o.limit]
    if runner.sandbox.cgroups is not None:
        assert 0 < killed.peak_tasks <= 256  # the cgroup's pids.peak: no fork past pids.max
    else:
        assert 0 < killed.peak_tasks <= 256 + 64  # RLIMIT_NPROC counts the uid's other processes as well
    assert killed.elapsed_s < 60
    assert processes_with(_BOMB_MARK.encode()) == []


async def test_a_line_without_end_is_cut_before_it_reaches_go(
    resources_repo: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = _runner(resources_repo, tmp_path, memory_limit_mb=384, max_line_bytes=4096)
    seen: list[str] = []
    result, outcomes = await _run(runner, "./flood", monkeypatch, seen)
    assert [o.limit for o in outcomes] == [None] * len(outcomes), result.summary
    assert [(t.name, t.status) for t in result.report.tests] == [("TestFlood", "fail")], result.summary
    assert result.report.output_truncated
    [cut, after] = seen
    assert "line cut at 4096 bytes: 201322497 bytes dropped" in cut  # 192 MiB less the 4096 kept, and its end
    assert "after the flood" in after
    assert len(result.model_dump_json()) < 100_000


async def test_stdout_and_stderr_reach_go_in_the_order_the_test_wrote_them(
    resources_repo: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay that cuts long lines gives the binary one pipe for both streams, as go does: with two, a data
    race report on stderr was attributed to whichever test's output happened to come before it."""
    runner = _runner(resources_repo, tmp_path)
    seen: list[str] = []
    result, _outcomes = await _run(runner, "./order", monkeypatch, seen)
    assert result.ok, (result.summary, _output(result))
    written = [json.loads(line).get("Output", "").strip() for line in seen]
    assert written == [f"order-line {stream} {i}" for i in range(300) for stream in ("out", "err")]


async def test_usr_local_is_hidden_and_the_toolchain_works(
    resources_repo: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = _runner(resources_repo, tmp_path)
    result, _outcomes = await _run(runner, "./view", monkeypatch)
    assert result.ok, (result.summary, _output(result))
    assert [(p.name, p.passed) for p in result.report.packages] == [("example.com/resources/view", 1)]
