"""pathglob: the one gitignore-like glob syntax of every policy file, in its deny (prefix) and allow (whole) modes."""

from __future__ import annotations

import pytest

import pathglob
from servers.common import diffs


@pytest.mark.parametrize(
    ("pattern", "matching", "other"),
    [
        (".github/**", [".github/workflows/release.yml"], ["github/workflows/release.yml", "x/.github/a"]),
        ("**/auth/**", ["auth/session.go", "internal/auth/session.go"], ["authx/a.go", "internal/oauth/a.go"]),
        ("docs/*", ["docs/intro.md", "docs/gen"], ["docs", "x/docs/intro.md"]),
        ("*.md", ["README.md", "a/b/notes.md"], ["README.mdx"]),
        ("go.mod", ["go.mod", "sub/go.mod"], ["go.mod.bak"]),
    ],
)
def test_a_glob_means_one_thing_in_both_modes(pattern: str, matching: list[str], other: list[str]) -> None:
    for path in matching:
        assert pathglob.matches(path, [pattern]) and pathglob.matches(path, [pattern], whole=True), path
    for path in other:
        assert not pathglob.matches(path, [pattern]) and not pathglob.matches(path, [pattern], whole=True), path


def test_a_deny_list_also_matches_below_a_match_and_an_allow_list_does_not() -> None:
    assert pathglob.matches("docs/gen/main.go", ["docs/*"])
    assert not pathglob.matches("docs/gen/main.go", ["docs/*"], whole=True)
    assert pathglob.matching_glob("scripts.md/release.sh", ["**/*.md"]) == "**/*.md"
    assert pathglob.matching_glob("scripts.md/release.sh", ["**/*.md"], whole=True) is None
    # a trailing slash names a directory: everything under it, in both modes
    assert pathglob.matches("site/a/b.html", ["site/"], whole=True)
    assert not pathglob.matches("site", ["site/"], whole=True)


def test_the_servers_diffs_helpers_are_the_shared_ones() -> None:
    assert diffs.glob_regex is pathglob.glob_regex
    assert diffs.matching_glob is pathglob.matching_glob


@pytest.mark.parametrize(
    ("pattern", "normal"),
    [
        ("./go.mod", "/go.mod"),
        ("internal//auth/keys.go", "internal/auth/keys.go"),
        (".//a/./b//c", "/a/b/c"),
        ("x/./", "x/"),
        (".github/**", ".github/**"),
        ("./.github/**", "/.github/**"),
    ],
)
def test_dot_slash_and_doubled_slashes_are_read_as_git_writes_paths(pattern: str, normal: str) -> None:
    assert pathglob.normalise(pattern) == normal
    assert pathglob.problem(pattern) is None
    assert pathglob.glob_regex(pattern).pattern == pathglob.glob_regex(normal).pattern


@pytest.mark.parametrize("pattern", ["./", "//", " ", "../x", "a/../b", ".."])
def test_a_pattern_that_can_match_no_repository_path_is_a_problem(pattern: str) -> None:
    assert pathglob.problem(pattern) is not None
