"""The tamper analyzer is built once, at install time, and every cache takes it from there."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
import typer
from rich.console import Console

from goresolve.install import install_tamper_analyzer
from servers.common.errors import UpstreamFailure
from servers.common.tamper import tool


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.skip("no go toolchain")
    return str(Path(go).resolve())


def _fake_go(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fakego" / "go"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_an_installed_analyzer_is_linked_into_a_cache_instead_of_built(data_dir: Path, tmp_path: Path) -> None:
    go = _go()
    installed = tool.installed_analyzer(go)
    installed.parent.mkdir(parents=True)
    installed.write_bytes(b"the installed build")  # a build would write a Go binary instead

    got = tool.build_analyzer(go, tmp_path / "runner" / "bin")

    assert got == tmp_path / "runner" / "bin" / installed.name
    assert got.read_bytes() == b"the installed build"
    assert sorted(p.name for p in got.parent.iterdir()) == [installed.name]  # no partial file left behind


def test_install_compiles_with_progress_once_then_says_ready(data_dir: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)

    first = install_tamper_analyzer(console)
    second = install_tamper_analyzer(console)

    assert first == second == tool.installed_analyzer(_go()) and first.is_file()
    assert first.parent == data_dir / "tools"
    screen = out.getvalue()
    done = re.search(r"(\d+)/(\d+) packages", screen)
    assert done is not None and done.group(1) == done.group(2) and int(done.group(2)) > 50, screen
    assert screen.count("compiling servers/common/tamper/analyzer") == 1
    assert "(already built)" in screen.splitlines()[-1]


def test_install_without_go_says_what_to_install(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(data_dir))  # no go there
    out = io.StringIO()
    with pytest.raises(typer.Exit) as exited:
        install_tamper_analyzer(Console(file=out, width=200))
    assert exited.value.exit_code == 1
    assert "no `go` on PATH: install Go 1.22 or newer" in out.getvalue()


def test_a_failed_build_raises_with_gos_last_lines_and_leaves_nothing(data_dir: Path, tmp_path: Path) -> None:
    go = _fake_go(tmp_path, 'echo "main.go:1: cannot find package" >&2; exit 1')
    cache = tmp_path / "cache"
    with pytest.raises(
        UpstreamFailure, match=re.escape("cannot build the tamper analyzer: main.go:1: cannot find package")
    ):
        tool.build_analyzer(go, cache)
    with pytest.raises(UpstreamFailure, match="cannot find package"):
        tool.install_analyzer(go, on_progress=lambda done, total, package: None)  # fails at `go list`
    assert list(cache.iterdir()) == []
    assert not tool.installed_analyzer(go).exists()


def test_a_build_that_hangs_is_killed_at_its_deadline(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tool, "BUILD_TIMEOUT_S", 1)
    go = _fake_go(tmp_path, 'if [ "$1" = env ]; then exit 0; fi; exec sleep 60')
    with pytest.raises(UpstreamFailure, match="`go build` took over 1 s"):
        tool.build_analyzer(go, tmp_path / "cache")
