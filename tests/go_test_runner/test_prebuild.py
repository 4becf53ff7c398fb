"""The go-test-runner image's build step: the tamper analyzer and `sandbox-setup` compiled ahead of
time into GORESOLVE_TOOLS_DIR, and taken from there (never rebuilt) by a server whose data directory
is empty and whose tools directory it cannot write."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from servers.common.tamper import tool
from servers.go_test_runner import prebuild
from servers.go_test_runner.sandbox import host_go_env, installed_setup_program, setup_program

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.skip("no go toolchain")
    return str(Path(go).resolve())


def _run(tools: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GORESOLVE_TOOLS_DIR": str(tools), "GORESOLVE_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "servers.go_test_runner.prebuild"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_prebuild_builds_both_programs_once_and_the_server_takes_them_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = _go()
    tools, data = tmp_path / "opt-tools", tmp_path / "data"
    first = _run(tools, data)
    assert first.returncode == 0, first.stderr
    built = sorted(p.name for p in tools.iterdir())
    assert len(built) == 2 and built[0].startswith("sandbox-setup-") and built[1].startswith("tamper-")
    assert all(os.access(tools / name, os.X_OK) for name in built)
    assert not (data / "tools").exists()  # the data directory is not where they went
    stamps = {name: (tools / name).stat().st_mtime_ns for name in built}
    again = _run(tools, data)
    assert again.returncode == 0 and again.stdout == first.stdout  # idempotent: nothing rebuilt
    assert {name: (tools / name).stat().st_mtime_ns for name in built} == stamps

    # At run time the image's directory is read-only; both programs are copied out of it, not built.
    monkeypatch.setenv("GORESOLVE_TOOLS_DIR", str(tools))
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(data))
    for path in tools.iterdir():
        path.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    tools.chmod(0o555)
    try:
        analyzer = tool.build_analyzer(go, tmp_path / "work" / "bin")
        assert analyzer.read_bytes() == tool.installed_analyzer(go).read_bytes()
        goroot_go = Path(host_go_env(go)["GOROOT"]) / "bin" / "go"
        assert installed_setup_program(goroot_go).parent == tools
        dest = tmp_path / "assets" / "sandbox-setup"
        dest.parent.mkdir()
        setup_program(goroot_go, dest, gocache=tmp_path / "gocache")
        assert dest.read_bytes() == installed_setup_program(goroot_go).read_bytes()
        assert not (tmp_path / "gocache").exists()  # nothing was compiled
    finally:
        tools.chmod(0o755)


def test_the_tools_directory_defaults_to_the_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GORESOLVE_TOOLS_DIR", raising=False)
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "data"))
    assert tool.installed_dir() == tmp_path / "data" / "tools"
    monkeypatch.setenv("GORESOLVE_TOOLS_DIR", str(tmp_path / "image-tools"))
    assert tool.installed_dir() == tmp_path / "image-tools"


def test_prebuild_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert prebuild.main(["--force"]) == 2
    assert capsys.readouterr().err.startswith("usage: python -m servers.go_test_runner.prebuild")
    monkeypatch.setattr(prebuild, "find_go", lambda: None)
    assert prebuild.main([]) == 1
    assert capsys.readouterr().err == "error: no `go` on PATH\n"


def test_prebuild_reports_a_build_failure_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_go = tmp_path / "bin" / "go"
    fake_go.parent.mkdir()
    fake_go.write_text("#!/bin/sh\necho 'go: no toolchain here' >&2\nexit 1\n")
    fake_go.chmod(0o755)
    monkeypatch.setenv("GORESOLVE_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setattr(prebuild, "find_go", lambda: str(fake_go))
    assert prebuild.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot build the tamper analyzer") and err.count("\n") == 1
    assert not any((tmp_path / "tools").glob("tamper-*"))  # no half-written program
