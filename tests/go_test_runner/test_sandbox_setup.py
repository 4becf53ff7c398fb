"""`sandbox-setup`, the compiled program that mounts the sandboxes' overlays: built once per source
and toolchain, linked into each runner's work directory, and strict about its arguments."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from servers.common.tamper import tool
from servers.go_test_runner.sandbox import host_go_env, setup_program

pytestmark = pytest.mark.slow


def test_it_is_built_once_and_linked_into_every_work_directory(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tool, "installed_dir", lambda: tmp_path / "tools")
    go = pathlib.Path(host_go_env("go")["GOROOT"]) / "bin" / "go"
    first, second = tmp_path / "a" / "sandbox-setup", tmp_path / "b" / "sandbox-setup"
    for dest in (first, second):
        dest.parent.mkdir()
        setup_program(go, dest, gocache=tmp_path / "cache")
    built = list((tmp_path / "tools").iterdir())
    assert len(built) == 1 and built[0].name.startswith("sandbox-setup-")
    assert os.stat(first).st_ino == os.stat(second).st_ino == os.stat(built[0]).st_ino  # one build, linked
    assert [p.name for p in first.parent.iterdir()] == ["sandbox-setup"]  # no temporary file left
    proc = subprocess.run([str(first), "mount-everything"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 125  # an unknown mode or a missing argument mounts nothing
    assert proc.stderr.startswith("go-test-runner sandbox-setup: usage: sandbox-setup build TARGET")
    # `wait` runs the command it reads whole, and refuses one it would have to cut
    ok = subprocess.run([str(first), "wait"], input=b"/bin/echo\0handed\0over\0", capture_output=True, timeout=30)
    assert (ok.returncode, ok.stdout) == (0, b"handed over\n")
    big = subprocess.run([str(first), "wait"], input=b"/bin/echo\0" + b"a" * (1 << 20), capture_output=True, timeout=30)
    assert big.returncode == 125 and b"over 1 MiB" in big.stderr and big.stdout == b""
    nothing = subprocess.run([str(first), "wait"], input=b"", capture_output=True, timeout=30)
    assert (nothing.returncode, nothing.stdout, nothing.stderr) == (0, b"", b"")  # let go: it exits
