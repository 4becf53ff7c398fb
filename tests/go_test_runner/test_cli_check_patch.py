"""goresolve check-patch: exit codes, text and JSON output."""

from __future__ import annotations

import json
import pathlib

import pytest
import typer
from typer.testing import CliRunner

from servers.go_test_runner.cli_check_patch import check_patch_command, command

REFUSED = """--- a/calc/calc_test.go
+++ b/calc/calc_test.go
@@ -1,3 +1,3 @@
 func TestX(t *testing.T) {
-\tif got != 2 {
+\tif got != 3 {
 \t\tt.Fatal(got)
"""
ALLOWED = """--- a/calc/calc.go
+++ b/calc/calc.go
@@ -1 +1 @@
-package calc
+package calc // fixed
"""


@pytest.fixture
def files(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    # The allowed patch is applied to a copy of the checkout and analyzed, so the checkout is a module.
    (tmp_path / "go.mod").write_text("module example.com/calc\n\ngo 1.22\n")
    (tmp_path / "calc").mkdir()
    (tmp_path / "calc" / "calc.go").write_text("package calc\n")
    test = "func TestX(t *testing.T) {\n\tif got != 2 {\n\t\tt.Fatal(got)\n\t}\n}\n"
    (tmp_path / "calc" / "calc_test.go").write_text(test)
    (tmp_path / "refused.diff").write_text(REFUSED)
    (tmp_path / "allowed.diff").write_text(ALLOWED)
    return {"refused": tmp_path / "refused.diff", "allowed": tmp_path / "allowed.diff", "repo": tmp_path}


def test_allowed_patch_exits_zero(
    files: dict[str, pathlib.Path], tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the patch is applied to a copy and the compiled analyzer cached under --cache-dir
    assert check_patch_command(files["allowed"], files["repo"], False, cache_dir=tmp_path / "cache") == 0
    assert capsys.readouterr().out == "patch allowed\n"


def test_refused_patch_exits_one_and_names_file_line_rule(
    files: dict[str, pathlib.Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_patch_command(files["refused"], files["repo"], False) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "patch refused:"
    assert out[1].startswith("  calc/calc_test.go:2: changed_expected_value: changes 2 -> 3")


def test_json_output(files: dict[str, pathlib.Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert check_patch_command(files["refused"], files["repo"], True) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["allowed"] is False
    assert set(data["reasons"][0]) == {"rule", "path", "line", "detail"}
    assert (data["reasons"][0]["rule"], data["reasons"][0]["line"]) == ("changed_expected_value", 2)


def test_a_relative_repo_is_analyzed_where_it_is(
    files: dict[str, pathlib.Path], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the analyzer runs in the module's directory: a relative --repo was read from there (chdir .../repo/repo)
    monkeypatch.chdir(tmp_path.parent)
    relative = pathlib.Path(tmp_path.name)
    assert check_patch_command(files["allowed"], relative, False, cache_dir=tmp_path / "cache") == 0


def test_policy_dir_and_errors(files: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    lax = tmp_path / "lax"
    lax.mkdir()
    (lax / "protected.yaml").write_text("existing_tests_read_only: false\n")
    assert check_patch_command(files["refused"], files["repo"], False, policy_dir=lax, cache_dir=tmp_path / "c") == 0
    (lax / "protected.yaml").write_text("existing_tests_read_only: maybe\n")
    assert check_patch_command(files["refused"], files["repo"], False, policy_dir=lax) == 2
    assert check_patch_command(tmp_path / "missing.diff", files["repo"], False) == 2
    assert check_patch_command(files["allowed"], tmp_path / "missing-dir", False) == 2


def test_typer_command(files: dict[str, pathlib.Path]) -> None:
    app = typer.Typer()
    app.command()(command)
    result = CliRunner().invoke(app, [str(files["refused"]), "--repo", str(files["repo"]), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["allowed"] is False


def test_go_code_of_a_nested_module_is_analyzed_in_that_module(
    files: dict[str, pathlib.Path], tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A nested module (its own go.mod) is analyzed in its own directory, as go-test-runner does: a good patch
    to it is allowed, a hook at package initialization refused; a go.mod under testdata is a fixture."""
    repo = files["repo"]
    for directory in ("tools/fmtx", "calc/testdata/mod"):
        (repo / directory).mkdir(parents=True)
    (repo / "tools" / "go.mod").write_text("module example.com/calc/tools\n\ngo 1.22\n")
    (repo / "tools" / "fmtx" / "fmtx.go").write_text("package fmtx\n")
    (repo / "calc" / "testdata" / "mod" / "go.mod").write_text("module example.com/fixture\n\ngo 1.22\n")
    good = tmp_path / "nested.diff"
    good.write_text(ALLOWED.replace("calc/calc.go", "tools/fmtx/fmtx.go").replace("package calc", "package fmtx"))
    assert check_patch_command(good, repo, False, cache_dir=tmp_path / "cache") == 0
    assert capsys.readouterr().out == "patch allowed\n"
    hook = tmp_path / "hook.diff"
    hook.write_text(
        '--- a/tools/fmtx/fmtx.go\n+++ b/tools/fmtx/fmtx.go\n@@ -1 +1,5 @@\n package fmtx\n+\n+import "os"\n'
        "+\n+func init() { os.Exit(0) }\n"
    )
    assert check_patch_command(hook, repo, True, cache_dir=tmp_path / "cache") == 1
    verdict = json.loads(capsys.readouterr().out)
    assert [(r["rule"], r["path"]) for r in verdict["reasons"]] == [("exit_at_init", "tools/fmtx/fmtx.go")]
    assert check_patch_command(files["allowed"], repo, False, cache_dir=tmp_path / "cache") == 0


def test_without_the_analyzer_a_fixture_tests_read_is_still_protected(
    files: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    # static_analysis: false skipped the test_fixture rule: a change to golden.md, which the test reads, passed
    repo = files["repo"]
    (repo / "calc" / "golden.md").write_text("# Title\n")
    (repo / "calc" / "golden_test.go").write_text('package calc\n\nvar golden = "golden.md"\n')
    patch = tmp_path / "golden.diff"
    patch.write_text("--- a/calc/golden.md\n+++ b/calc/golden.md\n@@ -1 +1 @@\n-# Title\n+# Wrong\n")
    off = tmp_path / "off"
    off.mkdir()
    (off / "protected.yaml").write_text("static_analysis: false\n")
    assert check_patch_command(patch, repo, True, policy_dir=off) == 1
