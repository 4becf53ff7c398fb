"""A real git repository with a small Go package and its tests; diffs come from real `git diff`."""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Callable

import pytest

CALC = """package calc

// Add returns a+b.
func Add(a, b int) int { return a + b }

// Div divides, reporting division by zero.
func Div(a, b int) (int, bool) {
	if b == 0 {
		return 0, false
	}
	return a / b, true
}
"""

CALC_TEST = """package calc

import (
	"fmt"
	"testing"
)

func TestAdd(t *testing.T) {
	cases := []struct {
		a, b, want int
	}{
		{1, 2, 3},
		{-1, 1, 0},
		{40, 2, 42},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d+%d", c.a, c.b), func(t *testing.T) {
			if got := Add(c.a, c.b); got != c.want {
				t.Errorf("Add(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
			}
		})
	}
}

func TestDiv(t *testing.T) {
	got, ok := Div(6, 3)
	if !ok {
		t.Fatal("Div(6, 3) reported failure")
	}
	if got != 2 {
		t.Errorf("Div(6, 3) = %d, want 2", got)
	}
}

func TestDivByZero(t *testing.T) {
	if _, ok := Div(1, 0); ok {
		t.Fatal("Div(1, 0) succeeded")
	}
}
"""


def git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout


@pytest.fixture
def repo(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "repo"
    (root / "calc" / "testdata").mkdir(parents=True)
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/calc\n\ngo 1.22\n")
    (root / "calc" / "calc.go").write_text(CALC)
    (root / "calc" / "calc_test.go").write_text(CALC_TEST)
    (root / "calc" / "testdata" / "golden.txt").write_text("42\n")
    (root / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")
    return root


Edit = Callable[[pathlib.Path], None]


@pytest.fixture
def diff_of(repo: pathlib.Path) -> Callable[[Edit], str]:
    """Apply an edit to the work tree, return `git diff` of it (new files included), then restore the tree."""

    def run(edit: Edit) -> str:
        edit(repo)
        git(repo, "add", "-A")
        try:
            return git(repo, "diff", "--cached", "-M")
        finally:
            git(repo, "reset", "-q", "--hard")
            git(repo, "clean", "-qfd")

    return run
