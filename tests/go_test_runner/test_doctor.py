"""`go-test-runner-mcp --check`: one line per protection, the verdict, exit 0 only with the real sandbox."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest


def check(tmp_path: pathlib.Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "GORESOLVE_GO_TEST_RUNNER_WORK_DIR": str(tmp_path / "work"), **env}
    code = (
        "import sys; sys.argv = ['go-test-runner-mcp', '--check']\n"
        "from servers.go_test_runner.__main__ import main\nmain()"
    )
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_check_lists_every_protection_and_passes_here(tmp_path: pathlib.Path) -> None:
    proc = check(tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "go-test-runner sandbox on this host:"
    assert any(line.strip().startswith("[on ] bubblewrap ") for line in lines)
    assert any("[on ] seccomp (libseccomp): test code denied mount, umount2, pivot_root, unshare, setns, ptrace, bpf, "
               "keyctl" in line for line in lines)  # fmt: skip
    assert lines[-1].strip() == "verdict: strong: test code runs in the bubblewrap sandbox"
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_check_fails_closed_without_bubblewrap(tmp_path: pathlib.Path) -> None:
    proc = check(tmp_path, GORESOLVE_GO_TEST_RUNNER_BWRAP_BINARY="/nonexistent/bwrap")
    assert proc.returncode == 1
    assert "[off] bubblewrap (not installed)" in proc.stdout
    assert "problem: bubblewrap (bwrap) is not installed" in proc.stdout
    assert proc.stdout.splitlines()[-1].strip().startswith("verdict: refused: the server will not run tests here")


@pytest.mark.slow
def test_check_fails_closed_when_the_set_up_program_cannot_be_built(tmp_path: pathlib.Path) -> None:
    """The overlays of both sandboxes are mounted by a compiled program: no program, no strong sandbox."""
    fake = tmp_path / "go" / "bin" / "go"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'go: cannot build anything here' >&2\nexit 1\n")
    fake.chmod(0o755)
    proc = check(tmp_path, GORESOLVE_GO_TEST_RUNNER_GO_BINARY=str(fake), GORESOLVE_DATA_DIR=str(tmp_path / "data"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "problem: cannot build the sandbox's set-up program: go: cannot build anything here" in proc.stdout
    assert proc.stdout.splitlines()[-1].strip().startswith("verdict: refused: the server will not run tests here")
    assert "Traceback" not in proc.stderr
