"""New cases of a table test are allowed; anything else inside an existing test function is not."""

from __future__ import annotations

import difflib
import pathlib

import pytest

from servers.common.patch_policy import check_patch
from servers.common.policy import ProtectedPolicy

SOURCE = """package calc

import "testing"

var skipped = map[string]bool{
	"TestOld": true,
}

func TestTable(t *testing.T) {
	tests := []struct {
		name string
		in   int
		want int
	}{
		{
			name: "one",
			in:   1,
			want: 2,
		},
		{name: "two", in: 2, want: 4},
	}
	for _, tt := range tests {
		if got := Double(tt.in); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name,
				got,
				tt.want)
		}
	}
	want := `{
	"a": 1,
}`
	_ = want
}
"""
LINES = SOURCE.splitlines(keepends=True)


def insert_after(marker: str, text: str) -> str:
    i = next(n for n, line in enumerate(LINES) if line.rstrip("\n") == marker) + 1
    new = LINES[:i] + text.splitlines(keepends=True) + LINES[i:]
    return "".join(difflib.unified_diff(LINES, new, "a/calc_test.go", "b/calc_test.go"))


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "calc_test.go").write_text(SOURCE)
    return tmp_path


@pytest.mark.parametrize(
    ("marker", "text"),
    [
        ('\t\t{name: "two", in: 2, want: 4},', '\t\t{name: "three", in: 3, want: 6},\n'),
        ("\t\t},", '\t\t{\n\t\t\tname: "neg",\n\t\t\tin:   -1,\n\t\t\twant: -2,\n\t\t},\n'),
        ("\t\t},", '\t\t{name: "call", in: len("ab"), want: Double(2)},\n'),
    ],
)
def test_new_table_rows_are_allowed(root: pathlib.Path, marker: str, text: str) -> None:
    diff = insert_after(marker, text)
    assert check_patch(diff, ProtectedPolicy(), repo_root=root).allowed
    assert check_patch(diff, ProtectedPolicy()).allowed or "call" in text  # without the file: rows of {..} only


@pytest.mark.parametrize(
    ("marker", "text"),
    [
        # a row whose closure runs while the table is built and skips the whole test
        ("\t\t},", '\t\t{name: "x", in: func() int { t.SkipNow(); return 0 }(), want: 0},\n'),
        # an entry in a list named like a skip list
        ('\t"TestOld": true,', '\t"TestTable": true,\n'),
        # extra arguments to an assertion call spread over lines
        ('\t\t\tt.Errorf("%s: got %d, want %d", tt.name,', "\t\t\t\t0, 0,\n"),
        # a key inside an expected raw string
        ('\t"a": 1,', '\t"b": 2,\n'),
        # a statement that looks like an element
        ("\t\t},", "\t\tt.Skip(),\n"),
    ],
)
def test_other_insertions_into_existing_code_are_refused(root: pathlib.Path, marker: str, text: str) -> None:
    diff = insert_after(marker, text)
    assert not check_patch(diff, ProtectedPolicy(), repo_root=root).allowed
