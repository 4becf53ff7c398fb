"""`goresolve index` / `goresolve search` (mounted here on a bare typer app, as the umbrella CLI mounts them)."""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from servers.code_search import warm
from servers.code_search.cli import index_command, search_command
from servers.code_search.settings import CodeSearchSettings

from .conftest import commit_all

app = typer.Typer()
app.command("index")(index_command)
app.command("search")(search_command)
runner = CliRunner()


def test_index_then_search_single_and_batch(make_repo: Callable[[str, dict[str, str]], Path], tmp_path: Path) -> None:
    repo = make_repo(
        "svc", {"a.go": "package a\n\n// ParseHTTPHeader splits a header line.\nfunc ParseHTTPHeader() {}\n"}
    )
    db = str(tmp_path / "db")
    common = ["--db", db, "--embedder", "hashing"]
    done = runner.invoke(app, ["index", str(repo), "--repo", "svc", *common])
    assert done.exit_code == 0, done.output
    assert "1 changed" in done.output and "1 chunks, 1 embedded" in done.output
    (repo / "b.go").write_text("package a\n\nfunc Other() {}\n")
    commit_all(repo, "b")
    again = runner.invoke(app, ["index", str(repo), "--repo", "svc", "--commit", "HEAD", *common])
    assert "1 changed" in again.output and "generation 2" in again.output

    single = runner.invoke(app, ["search", "parse http header", "--repo", "svc", "--json", "--k", "1", *common])
    assert json.loads(single.stdout) == {
        "query": "parse http header",
        "hits": [
            {
                "repo": "svc",
                "path": "a.go",
                "start_line": 3,
                "end_line": 4,
                "symbol": "a.ParseHTTPHeader",
                "kind": "func",
                "score": json.loads(single.stdout)["hits"][0]["score"],
            }
        ],
    }

    stdin = '{"id": 1, "query": "ParseHTTPHeader"}\n\n{"id": "b", "query": "Other"}\nnot json\n{"id": 2}\n'
    batch = runner.invoke(app, ["search", "-", "--repo", "svc", "--k", "2", *common], input=stdin)
    lines = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [line["id"] for line in lines] == [1, "b", None, 2]
    assert (lines[3]["line"], lines[3]["error"]) == (5, 'expected {"id":..., "query":...}')
    assert lines[0]["hits"][0]["symbol"] == "a.ParseHTTPHeader" and lines[1]["hits"][0]["symbol"] == "a.Other"
    assert set(lines[0]["hits"][0]) == {"repo", "path", "start_line", "end_line", "symbol", "kind", "score"}
    assert "error" in lines[2]


def test_errors_are_one_line_with_exit_codes(make_repo: Callable[[str, dict[str, str]], Path], tmp_path: Path) -> None:
    repo = make_repo("svc", {"a.go": "package a\n"})
    common = ["--db", str(tmp_path / "db"), "--embedder", "hashing"]
    bad_rev = runner.invoke(app, ["index", str(repo), "--repo", "svc", "--commit", "nope", *common])
    assert bad_rev.exit_code == 1 and "failed" in bad_rev.output
    no_index = runner.invoke(
        app, ["search", "x", "--repo", "svc", "--db", str(tmp_path / "none"), "--embedder", "hashing"]
    )
    assert no_index.exit_code == 1 and "no code index at" in no_index.output and "goresolve index" in no_index.output
    runner.invoke(app, ["index", str(repo), "--repo", "svc", *common])
    unknown = runner.invoke(app, ["search", "x", "--repo", "other", *common])
    assert unknown.exit_code == 1 and "not indexed: other" in unknown.output


def test_a_warm_process_answers_the_same_as_a_search_in_process(
    make_repo: Callable[[str, dict[str, str]], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tempfile.mkdtemp(prefix="gr-", dir="/tmp")  # AF_UNIX paths are short: not under pytest's tmp_path
    monkeypatch.setattr(tempfile, "tempdir", run)
    repo = make_repo(
        "svc", {"a.go": "package a\n\n// ParseHTTPHeader splits a header line.\nfunc ParseHTTPHeader() {}\n"}
    )
    common = ["--db", str(tmp_path / "db"), "--embedder", "hashing"]
    assert runner.invoke(app, ["index", str(repo), "--repo", "svc", *common]).exit_code == 0
    here = runner.invoke(app, ["search", "parse http header", "--repo", "svc", "--json", *common])
    settings = CodeSearchSettings(db_dir=tmp_path / "db", embedder="hashing", state_dir=tmp_path / "state")
    sock = warm.socket_path(settings)
    assert warm.ask(sock, {"query": "x", "repos": ["svc"]}) is None  # nobody listening: the CLI searches itself
    serving = threading.Thread(target=warm.serve, args=(settings, 1), daemon=True)
    serving.start()
    deadline = time.monotonic() + 30
    while warm.ask(sock, {"query": "parse http header", "repos": ["svc"]}) is None and time.monotonic() < deadline:
        serving.join(0.05)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600 and stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    asked = runner.invoke(app, ["search", "parse http header", "--repo", "svc", "--json", *common])
    assert asked.exit_code == 0 and json.loads(asked.stdout) == json.loads(here.stdout)
    missing = runner.invoke(app, ["search", "x", "--repo", "nope", *common])
    assert missing.exit_code == 1 and "not indexed: nope" in missing.output
    assert warm.ask(sock, {"repos": "svc"}) == {"error": "malformed request", "exit": 2}
    serving.join(30)  # idle for a second: it stops and removes its socket
    assert not serving.is_alive() and not sock.exists()
    shutil.rmtree(run)


def test_repository_text_is_printed_as_text_not_markup_or_terminal_controls(
    make_repo: Callable[[str, dict[str, str]], Path], tmp_path: Path
) -> None:
    # Paths and headings are the repository's: `[/y]` closes no Rich tag here, an ESC sequence clears no screen.
    escape_name = "evil\x1b]0;pwned\x07\x1b[2Jname.go"
    heading = "# Title [/bold] :warning: \x1b[31mred\x1b[0m \u202etxt"
    repo = make_repo(
        "svc",
        {
            "x[/y].go": "package x\nfunc {\n",  # does not parse: listed in the index report
            escape_name: "package x\nfunc {\n",
            "ok[/y].go": "package x\n\n// Listed is found by the search below.\nfunc Listed() {}\n",
            "README.md": f"{heading}\n\nListed words here.\n",
        },
    )
    common = ["--db", str(tmp_path / "db"), "--embedder", "hashing"]
    indexed = runner.invoke(app, ["index", str(repo), "--repo", "svc", *common])
    assert indexed.exit_code == 0, indexed.output
    assert "x[/y].go" in indexed.output and "evil]0;pwned[2Jname.go" in indexed.output
    found = runner.invoke(app, ["search", "Listed", "--repo", "svc", "--k", "20", *common], env={"COLUMNS": "400"})
    assert found.exit_code == 0, found.output
    assert "ok[/y].go" in found.output and "Title [/bold] :warning: [31mred[0m txt" in found.output
    for output in (indexed.output, found.output):
        assert not any(c in output for c in "\x1b\x07\u202e"), output
