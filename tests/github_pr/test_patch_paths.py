"""The paths a patch touches are the ones git reads from it (`git apply`, -p1), not a second parser's."""

from __future__ import annotations

import pytest

from servers.common.errors import Conflict
from servers.github_pr.git import patch_paths
from servers.github_pr.github import unread_paths

NEW_TEST = "@@ -0,0 +1,3 @@\n+package calc\n+\n+// tests removed\n"


@pytest.mark.parametrize(
    ("header", "paths"),
    [
        ("--- /dev/null\n+++ x/calc_test.go\n", {"calc_test.go"}),  # any first component is stripped
        ("--- /dev/null\n+++ w/calc_test.go\n", {"calc_test.go"}),
        ("--- /dev/null\n+++ calc/calc_test.go\n", {"calc_test.go"}),
        ("--- /dev/null\n+++ b/pkg/calc_test.go\n", {"pkg/calc_test.go"}),
        # a traditional diff dated at the epoch is a creation, whatever its `---` name
        ("--- x/other.go\t1970-01-01 00:00:00.000000000 +0000\n+++ y/calc_test.go\n", {"calc_test.go"}),
        ('--- /dev/null\n+++ "b/calc\\137test.go"\n', {"calc_test.go"}),  # C-quoted, decoded
    ],
)
def test_git_names_the_file_a_creation_writes(header: str, paths: set[str]) -> None:
    assert patch_paths(header + NEW_TEST) == paths


def test_a_rename_names_both_files_and_disagreeing_names_the_one_git_edits() -> None:
    rename = "diff --git a/x.go b/y.go\nsimilarity index 90%\nrename from x.go\nrename to y.go\n"
    assert patch_paths(rename + "--- a/x.go\n+++ b/y.go\n@@ -1 +1 @@\n-a\n+b\n") == {"x.go", "y.go"}
    # Without a `diff --git` header git edits the `+++` file; the `---` name is not touched.
    assert patch_paths("--- a/calc.go\n+++ b/calc_test.go\n@@ -1 +1 @@\n-a\n+b\n") == {"calc_test.go"}


def test_a_patch_git_cannot_read_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="patch does not apply"):
        patch_paths("not a diff\n")


def test_unread_paths_name_base_files_directories_and_file_parents_git_was_not_given() -> None:
    base = ["calc.go", "calc_test.go", "pkg/util.go"]
    assert unread_paths(["calc.go", "new.go", "pkg/new.go"], {"calc.go"}, base) == []
    assert unread_paths(["calc_test.go"], set(), base) == ["calc_test.go already exists in the base tree"]
    assert unread_paths(["pkg"], set(), base) == ["pkg is a directory in the base tree"]
    assert unread_paths(["calc.go/x.go"], {"calc.go"}, base) == [
        "calc.go/x.go needs calc.go, a file in the base tree, to be a directory"
    ]
