"""Test binaries handed to TEST sandboxes started ahead (`sandbox-setup serve-tests` next to go, and
`sandbox-setup exec` as go's -exec program): a binary gets its arguments, environment, working
directory, standard streams and exit code as in a sandbox started for it; when none can be handed
over, `exec` starts one itself; a host where the hand-over fails its probe does not use it."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from servers.common.tamper import tool
from servers.go_test_runner import bwrap
from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.sandbox import host_go_env, setup_program

from .conftest import MakeRunner, commit_all, git, make_runner_for

pytestmark = pytest.mark.slow

_VIEW_TEST = """package view

import (
	"os"
	"strings"
	"testing"
)

func TestView(t *testing.T) {
	info, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, line := range strings.Split(string(info), "\\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], "/tmp/go") {
			mounts = append(mounts, f[4])
		}
	}
	wd, _ := os.Getwd()
	temp := t.TempDir() // under GOTMPDIR when set: it must be writable for test code
	if err := os.WriteFile(temp+"/f", []byte("x"), 0o600); err != nil {
		t.Errorf("TempDir %s: %v", temp, err)
	}
	t.Errorf("VIEW mounts=%v wd=%s home=%s short=%v gotmpdir=%s", mounts, wd, os.Getenv("HOME"), testing.Short(),
		os.Getenv("GOTMPDIR"))
}
"""


@pytest.fixture
def view_repo(tmp_path: pathlib.Path) -> pathlib.Path:
    repo = tmp_path / "view-src"
    (repo / "view").mkdir(parents=True)
    (repo / "go.mod").write_text("module example.com/view\n\ngo 1.22\n")
    (repo / "view" / "view_test.go").write_text(_VIEW_TEST)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "view")
    return repo


async def test_a_binary_runs_in_a_sandbox_started_ahead_as_in_its_own(
    view_repo: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    runner: Runner = make_runner_for({"view": view_repo}, tmp_path)
    assert runner.sandbox.strong and runner.sandbox.serve_tests, runner.sandbox.protections.problems
    for attempt in range(2):  # the first run starts its sandbox with the command; the second one was started ahead
        result = await runner.run_tests(
            RunTestsRequest.model_validate(
                {"repo": "view", "ref": "main", "packages": ["./..."], "flags": ["-count=1", "-short"]}
            )
        )
        by_name = {t.name: t for t in result.report.tests}
        view = "".join(by_name["TestView"].output) if "TestView" in by_name else result.summary
        # all of go's work directory, read-only: only a sandbox started ahead binds it whole
        expected = "VIEW mounts=[/tmp/go] wd=/src/view/view home=/tmp/home short=true gotmpdir=/tmp"
        assert expected in view, (attempt, view)
        assert "TempDir" not in view, view
        assert by_name["TestView"].status == "fail"  # it reports by failing: a failure's output is kept
        assert not result.ok and result.exit_code == 1  # the binary's exit code came back through the hand-over
        await runner.drain()


async def test_a_host_where_the_hand_over_fails_starts_each_sandbox_itself(
    make_runner: MakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bwrap.Layout.serve_tests

    def elsewhere(self: bwrap.Layout, inside: str) -> list[str]:  # a server no binary can reach
        return ["/nonexistent/tests.sock", *real(self, inside)[1:]]

    monkeypatch.setattr(bwrap.Layout, "serve_tests", elsewhere)
    runner = make_runner()
    assert runner.sandbox.strong, runner.sandbox.protections.problems  # the sandbox itself is as strong
    assert not runner.sandbox.serve_tests
    result = await runner.run_tests(
        RunTestsRequest.model_validate({"repo": "pass", "ref": "main", "packages": ["./..."], "flags": ["-count=1"]})
    )
    assert result.ok, result.summary


def test_exec_starts_its_own_sandbox_when_none_is_handed_over(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tool, "installed_dir", lambda: tmp_path / "tools")
    setup = tmp_path / "sandbox-setup"
    setup_program(pathlib.Path(host_go_env("go")["GOROOT"]) / "bin" / "go", setup, gocache=tmp_path / "cache")
    bins = tmp_path / "bins"

    def exec_(binary: pathlib.Path, *fallback: str) -> subprocess.CompletedProcess[str]:
        argv = [str(setup), "exec", str(tmp_path / "none.sock"), str(bins), "4096", str(len(fallback)), *fallback]
        return subprocess.run([*argv, str(binary), "-test.v"], capture_output=True, text=True, timeout=30)

    # no server listening: the fallback command runs, with the binary and its arguments appended
    assert exec_(bins / "x.test", "/bin/echo", "own").stdout == f"own {bins}/x.test -test.v\n"
    # a binary outside go's work directory is never handed over (a sandbox started ahead cannot see it)
    assert exec_(tmp_path / "x.test", "/bin/echo", "own").stdout == f"own {tmp_path}/x.test -test.v\n"
    bad = exec_(bins / "x.test")  # no fallback given
    assert bad.returncode == 125 and "usage" in bad.stderr
