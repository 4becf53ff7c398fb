"""Each rule of the patch policy, on diffs produced by real git from a real Go package."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from servers.common.diffs import unquote_path
from servers.common.patch_policy import PatchVerdict, changed_paths, check_patch
from servers.common.policy import ProtectedPolicy

from .conftest import CALC_TEST, Edit

POLICY = ProtectedPolicy()
DiffOf = Callable[[Edit], str]

NEW_TEST = """
func TestAddCommutes(t *testing.T) {
	if Add(2, 5) != Add(5, 2) {
		t.Fatal("Add is not commutative")
	}
}
"""


def write(rel: str, text: str) -> Edit:
    return lambda root: (root / rel).parent.mkdir(parents=True, exist_ok=True) or (root / rel).write_text(text)


def edit_test(old: str, new: str) -> Edit:
    def run(root: pathlib.Path) -> None:
        path = root / "calc" / "calc_test.go"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    return run


def rules(verdict: PatchVerdict) -> set[str]:
    return {r.rule for r in verdict.reasons}


def both(diff: str, repo: pathlib.Path) -> tuple[PatchVerdict, PatchVerdict]:
    """The verdict with and without the checkout; the rules must not depend on having it."""
    return check_patch(diff, POLICY, repo_root=repo), check_patch(diff, POLICY)


def test_a_fix_to_non_test_code_is_allowed(diff_of: DiffOf, repo: pathlib.Path) -> None:
    diff = diff_of(lambda r: (r / "calc" / "calc.go").write_text((r / "calc" / "calc.go").read_text() + "\n// Zero.\n"))
    for verdict in both(diff, repo):
        assert verdict == PatchVerdict(allowed=True, reasons=[])


def test_an_appended_test_function_is_allowed(diff_of: DiffOf, repo: pathlib.Path) -> None:
    diff = diff_of(lambda r: (r / "calc/calc_test.go").write_text(CALC_TEST + NEW_TEST))
    for verdict in both(diff, repo):
        assert verdict.allowed, verdict.render()


def test_a_new_test_function_between_existing_ones_plus_an_import_is_allowed(
    diff_of: DiffOf, repo: pathlib.Path
) -> None:
    edit = edit_test('\t"fmt"\n', '\t"fmt"\n\t"strings"\n')
    diff = diff_of(lambda r: (edit(r), edit_test("func TestDiv(", NEW_TEST.lstrip() + "\nfunc TestDiv(")(r)))
    for verdict in both(diff, repo):
        assert verdict.allowed, verdict.render()


def test_a_new_test_file_is_allowed(diff_of: DiffOf, repo: pathlib.Path) -> None:
    diff = diff_of(write("calc/div_test.go", 'package calc\n\nimport "testing"\n' + NEW_TEST))
    assert check_patch(diff, POLICY, repo_root=repo).allowed


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ('\t\tt.Fatal("Div(1, 0) succeeded")\n', "", "removed_assertion"),
        ('\t\tt.Fatal("Div(1, 0) succeeded")\n', '\t\t// t.Fatal("Div(1, 0) succeeded")\n', "removed_assertion"),
        ("\tif got != 2 {", "\tif got != 3 {", "changed_expected_value"),
        ("\t\t{40, 2, 42},\n", "\t\t{40, 2, 43},\n", "changed_expected_value"),
        ("\tgot, ok := Div(6, 3)\n", '\tt.Skip("flaky")\n\tgot, ok := Div(6, 3)\n', "inserted_skip"),
        ("\tgot, ok := Div(6, 3)\n", "\treturn\n\tgot, ok := Div(6, 3)\n", "inserted_early_return"),
        ("\tgot, ok := Div(6, 3)\n", "\tgot, ok := 2, true\n", "modified_test_line"),
        (
            "func TestDivByZero(t *testing.T) {\n\tif _, ok := Div(1, 0); ok {\n"
            '\t\tt.Fatal("Div(1, 0) succeeded")\n\t}\n}\n',
            "",
            "deleted_test_function",
        ),
        ("\t\tt.Run(fmt.Sprintf", "\t\t_ = t\n\t\tfunc(", "deleted_test_function"),
        ("package calc\n", "//go:build ignore\n\npackage calc\n", "hiding_build_constraint"),
        ("\tif got != 2 {", "\tif got != 2 && false {", "removed_assertion"),
    ],
)
def test_tampering_with_an_existing_test_is_refused_with_a_specific_reason(
    diff_of: DiffOf, repo: pathlib.Path, old: str, new: str, rule: str
) -> None:
    diff = diff_of(edit_test(old, new))
    for verdict in both(diff, repo):
        assert not verdict.allowed
        assert rule in rules(verdict), verdict.render()
        assert all(r.path == "calc/calc_test.go" and r.line is not None for r in verdict.reasons)


def test_an_appended_testmain_that_exits_is_refused(diff_of: DiffOf, repo: pathlib.Path) -> None:
    # The spelling-based rule is the fallback when the Go analyzer is off; with it on, the analyzer
    # judges new code by object (tests/patch_policy/test_tamper_check_patch.py).
    text_only = POLICY.model_copy(update={"static_analysis": False})
    tm = "\nfunc TestMain(m *testing.M) { os.Exit(0) }\n"
    # (the fallback also names it as the analyzer does: new_test_main)
    diff = diff_of(lambda r: (r / "calc/calc_test.go").write_text(CALC_TEST + tm))
    assert rules(check_patch(diff, text_only, repo_root=repo)) == {"hides_tests", "new_test_main"}
    diff = diff_of(write("calc/main_test.go", 'package calc\n\nimport (\n\t"os"\n\t"testing"\n)\n' + tm))
    assert rules(check_patch(diff, text_only, repo_root=repo)) == {"hides_tests", "new_test_main"}
    assert check_patch(diff, POLICY, repo_root=repo).allowed


def test_deleting_or_renaming_a_test_file_is_refused(diff_of: DiffOf, repo: pathlib.Path) -> None:
    diff = diff_of(lambda r: (r / "calc/calc_test.go").unlink())
    assert rules(check_patch(diff, POLICY)) == {"deleted_test_file"}
    diff = diff_of(lambda r: (r / "calc/calc_test.go").rename(r / "calc/calc_windows_test.go"))
    assert rules(check_patch(diff, POLICY)) == {"renamed_test_file", "hiding_build_constraint"}


@pytest.mark.parametrize(
    ("rel", "rule"),
    [
        ("calc/testdata/golden.txt", "protected_path"),
        (".github/workflows/ci.yml", "protected_path"),
        ("go.mod", "go_mod"),
        ("go.sum", "go_mod"),
        ("sub/testdata/new.golden", "protected_path"),
        # before: allowed, so a patch could change a vendored dependency the tests run with
        ("vendor/example.com/dep/dep.go", "protected_path"),
        ("sub/vendor/example.com/dep/dep.go", "protected_path"),
    ],
)
def test_protected_paths_are_refused(diff_of: DiffOf, rel: str, rule: str) -> None:
    diff = diff_of(write(rel, "changed\n"))
    verdict = check_patch(diff, POLICY)
    assert [(r.rule, r.path) for r in verdict.reasons] == [(rule, rel)]


def test_go_mod_is_allowed_when_policy_says_so(diff_of: DiffOf) -> None:
    diff = diff_of(write("go.mod", "module example.com/calc\n\ngo 1.23\n"))
    assert check_patch(diff, ProtectedPolicy(allow_go_mod=True)).allowed


def test_existing_tests_may_change_when_policy_says_so(diff_of: DiffOf) -> None:
    diff = diff_of(edit_test("\tif got != 2 {", "\tif got != 3 {"))
    assert check_patch(diff, ProtectedPolicy(existing_tests_read_only=False)).allowed


def test_a_new_file_with_a_hiding_tag_is_refused_but_a_platform_tag_is_not(diff_of: DiffOf) -> None:
    hidden = diff_of(write("calc/extra_test.go", "//go:build integration\n\npackage calc\n"))
    assert rules(check_patch(hidden, POLICY)) == {"hiding_build_constraint"}
    platform = diff_of(write("calc/extra_linux.go", "//go:build linux && !purego\n\npackage calc\n"))
    assert check_patch(platform, POLICY).allowed


def test_size_limit_and_garbage() -> None:
    assert rules(check_patch("x" * 11, ProtectedPolicy(max_patch_bytes=10))) == {"patch_too_large"}
    assert rules(check_patch("this is not a diff\n", POLICY)) == {"unparseable_patch"}
    assert check_patch("", POLICY).allowed


def test_unsafe_paths_are_refused() -> None:
    diff = "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-root\n+evil\n"
    assert rules(check_patch(diff, POLICY)) == {"unsafe_path"}
    diff = "--- /dev/null\n+++ b/.git/hooks/pre-commit\n@@ -0,0 +1 @@\n+#!/bin/sh\n"
    assert rules(check_patch(diff, POLICY)) == {"unsafe_path"}


def test_a_raw_bidi_control_in_an_added_line_is_refused_and_an_escape_is_not(diff_of: DiffOf) -> None:
    """Trojan Source (CVE-2021-42574): code that displays in another order than it compiles."""
    for char in ("\u202e", "\u2066", "\u2069", "\u200f", "\u061c"):
        trojan = diff_of(write("calc/admin.go", f"package calc\n\n// {char}isAdmin{char}\nvar admin = false\n"))
        verdict = check_patch(trojan, POLICY)
        assert rules(verdict) == {"bidi_control"}, char
        (reason,) = verdict.reasons
        assert (reason.path, reason.line) == ("calc/admin.go", 3)
        assert f"U+{ord(char):04X}" in reason.detail and f"\\u{ord(char):04x} inside a string literal" in reason.detail
    doc = diff_of(write("docs/notes.md", "abc\u202edef\n"))
    assert rules(check_patch(doc, POLICY)) == {"bidi_control"}
    escaped = diff_of(write("calc/rtl.go", 'package calc\n\nconst rlo = "\\u202e"\nconst hebrew = "שלום"\n'))
    assert check_patch(escaped, POLICY).allowed


def test_removing_a_bidi_control_is_allowed() -> None:
    diff = "--- a/calc/x.go\n+++ b/calc/x.go\n@@ -1,2 +1,2 @@\n package calc\n-// \u202eevil\n+// fine\n"
    assert check_patch(diff, POLICY).allowed


@pytest.mark.parametrize(
    "name",
    ["b/docs/a\u202eb.md", "b/docs/a\u2066b.md", "b/docs/a\x9bb.md", "b/docs/a\x7fb.md"],
)
def test_a_file_name_with_a_bidi_or_c1_control_is_an_unsafe_path(name: str) -> None:
    diff = f"--- /dev/null\n+++ {name}\n@@ -0,0 +1 @@\n+x\n"
    assert rules(check_patch(diff, POLICY)) == {"unsafe_path"}


@pytest.mark.parametrize(
    "name",
    ['"b/docs/a\\nb.md"', '"b/docs/\\033[2J\\033[31mREADME.md"', '"b/docs/a\\tb.md"', '"b/docs/a\\302\\233b.md"'],
)
def test_a_quoted_file_name_is_decoded_before_its_characters_are_checked(name: str) -> None:
    """git C-quotes a name with a control character; the policy reads it as git does, newline and ESC included."""
    diff = f"diff --git {name.replace('b/', 'a/', 1)} {name}\nnew file mode 100644\n--- /dev/null\n+++ {name}\n"
    diff += "@@ -0,0 +1 @@\n+x\n"
    verdict = check_patch(diff, POLICY)
    assert rules(verdict) == {"unsafe_path"}
    assert verdict.reasons[0].detail == "control character in path"
    assert verdict.reasons[0].path.isprintable()  # the refusal quotes it as \\u000a, \\u001b: no raw newline or ESC


def test_a_needlessly_quoted_name_is_read_as_git_reads_it() -> None:
    """`.githu\\142` is `.github` to git apply, so it is a protected path; `caf\\303\\251.go` is `café.go`."""
    diff = '--- /dev/null\n+++ "b/.githu\\142/workflows/ci.yml"\n@@ -0,0 +1 @@\n+on: push\n'
    assert rules(check_patch(diff, POLICY)) == {"protected_path"}
    diff = '--- /dev/null\n+++ "b/calc/caf\\303\\251.go"\n@@ -0,0 +1 @@\n+package calc\n'
    assert check_patch(diff, POLICY).allowed
    assert changed_paths(diff) == {"calc/café.go"}
    bidi = '--- /dev/null\n+++ "b/docs/a\\342\\200\\256b.md"\n@@ -0,0 +1 @@\n+x\n'
    assert rules(check_patch(bidi, POLICY)) == {"unsafe_path"}


def test_unquote_path_decodes_as_git_quotes() -> None:
    assert unquote_path('"a/caf\\303\\251.go"') == "a/café.go"
    assert unquote_path('"x\\\\y\\"z\\ta"') == 'x\\y"z\ta'
    assert unquote_path(' "a\\377b" ') == "a\udcffb"  # not UTF-8: kept as a surrogate, as git's bytes
    assert unquote_path("plain name.go") == "plain name.go"
    assert unquote_path('"') == '"'


def test_a_new_file_over_an_existing_test_file_counts_as_a_modification(repo: pathlib.Path) -> None:
    diff = "--- /dev/null\n+++ b/calc/calc_test.go\n@@ -0,0 +1 @@\n+package calc\n"
    assert "modified_test_line" in rules(check_patch(diff, POLICY, repo_root=repo))


def test_render_names_file_line_and_rule(diff_of: DiffOf) -> None:
    diff = diff_of(edit_test("\tif got != 2 {", "\tif got != 3 {"))
    text = check_patch(diff, POLICY).render()
    assert text.startswith("patch refused:")
    assert "calc/calc_test.go:30: changed_expected_value" in text


SHIFTED = "".join(
    line + "\n"
    for line in [
        "--- a/calc/calc_test.go",
        "+++ b/calc/calc_test.go",
        "@@ -44,4 +44,10 @@ func TestDivByZero(t *testing.T) {",
        " \tif _, ok := Div(1, 0); ok {",
        ' \t\tt.Fatal("Div(1, 0) succeeded")',
        " \t}",
        "+}",
        "+",
        "+func TestDivNegative(t *testing.T) {",
        "+\tif got, _ := Div(-6, 3); got != -2 {",
        "+\t\tt.Fatal(got)",
        "+\t}",
        " }",
        "",
    ]
)


def test_an_appended_function_shown_inside_the_previous_closing_brace_is_allowed(repo: pathlib.Path) -> None:
    """git sometimes shows an append as an insertion before the last `}`; it is the same change."""
    for verdict in both(SHIFTED, repo):
        assert verdict.allowed, verdict.render()


def test_a_statement_inserted_before_a_closing_brace_is_refused(repo: pathlib.Path) -> None:
    diff = SHIFTED.replace("@@ -44,4 +44,10 @@", "@@ -44,4 +44,5 @@").split("+}\n")[0] + '+\tt.Log("x")\n }\n'
    for verdict in both(diff, repo):
        assert {r.rule for r in verdict.reasons} == {"inserted_into_existing_test"}, verdict.render()
