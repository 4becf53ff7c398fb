"""Property tests for the pure parts of the static guard: any input gives a verdict, never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from servers.common.policy import ProtectedPolicy
from servers.common.tamper.facts import (
    DeclaredTest,
    Facts,
    compare,
    non_go_reasons,
    read_by_tests,
    read_test_sources,
    text_facts,
)
from servers.common.tamper.guard import check_applied

_PATH = st.from_regex(r"[a-z]{1,6}(/[a-z_]{1,6}){0,3}\.(go|md|txt|json)", fullmatch=True)


@given(st.text(max_size=400))
def test_check_applied_takes_any_text(text: str) -> None:
    verdict = check_applied(text, ProtectedPolicy(), base_files=None, base=None, patched=None)
    if text.strip():
        # without the analyzer's facts the static guard cannot vouch for the patch: it refuses
        assert not verdict.allowed


@example("fixtures/a.txt", ["[1-0]", "x[", "**/*.txt"])
@given(_PATH, st.lists(st.text(alphabet="ab[]-*?/.!^\\0123", max_size=30) | st.text(max_size=30), max_size=10))
def test_read_by_tests_takes_any_literal(path: str, literals: list[str]) -> None:
    facts = Facts(
        test_literals=literals, tests=[DeclaredTest(package="p", dir=".", name="TestX", file="x_test.go", line=1)]
    )
    found = read_by_tests(path, facts)
    assert found is None or found in literals
    reasons = non_go_reasons(frozenset({path}), ProtectedPolicy(), facts)
    assert all(r.rule in ("test_fixture", "non_go_file") for r in reasons)
    assert not path.endswith(".go") or reasons == []


@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=6), st.lists(st.sampled_from(["a", "b", "c"]), max_size=6))
def test_findings_are_compared_as_multisets(base_keys: list[str], patched_keys: list[str]) -> None:
    def facts(keys: list[str]) -> Facts:
        return Facts.model_validate(
            {"findings": [{"rule": "exit_at_init", "key": k, "file": "f.go", "line": 1, "detail": k} for k in keys]}
        )

    new = compare(facts(base_keys), facts(patched_keys), frozenset())
    expected = sum(max(patched_keys.count(k) - base_keys.count(k), 0) for k in "abc")
    assert len(new) == expected


def test_allow_non_go_matches_whole_paths_not_what_lies_under_a_match() -> None:
    # glob_regex's deny-list suffix `(?:/.*)?` let `**/*.md` allow scripts.md/release.sh and `LICENSE*`
    # allow LICENSE-tools/Makefile
    policy = ProtectedPolicy()
    allowed = frozenset({"README.md", "docs/a/b.txt", "LICENSE", "sub/LICENSE.txt", "CHANGELOG.md"})
    assert non_go_reasons(allowed, policy, Facts()) == []
    refused = frozenset({"scripts.md/release.sh", "LICENSE-tools/Makefile", "CHANGELOG.d/x.sh"})
    reasons = non_go_reasons(refused, policy, Facts())
    assert [(r.rule, r.path) for r in reasons] == [("non_go_file", p) for p in sorted(refused)]
    # a pattern ending in / names a directory and allows everything under it
    assert non_go_reasons(frozenset({"site/a/b.html"}), ProtectedPolicy(allow_non_go=("site/",)), Facts()) == []


def test_without_the_analyzer_a_file_named_in_test_text_stays_protected(tmp_path: Path) -> None:
    # non_go_reasons skipped the test_fixture rule when facts was None (static_analysis off): a change to
    # report/golden.md, which report_test.go reads, was allowed
    (tmp_path / "report").mkdir()
    test = 'func TestRender(t *testing.T) {\n\twant, _ := os.ReadFile("golden.md")\n\t_ = `raw/fixture.json`\n}\n'
    (tmp_path / "report" / "report_test.go").write_text(test)
    (tmp_path / "report" / "testdata").mkdir()
    (tmp_path / "report" / "testdata" / "x_test.go").write_text('var s = "notes.md"\n')  # not a test the go tool runs
    sources = read_test_sources(tmp_path)
    assert list(sources) == ["report/report_test.go"]
    facts = text_facts(sources)
    policy = ProtectedPolicy(static_analysis=False)
    paths = frozenset({"report/golden.md", "report/raw/fixture.json", "report/notes.md"})
    reasons = non_go_reasons(paths, policy, facts)
    assert [(r.rule, r.path) for r in reasons] == [
        ("test_fixture", "report/golden.md"),  # allowed by **/*.md, but report_test.go names it
        ("test_fixture", "report/raw/fixture.json"),  # a raw string names it
    ]  # report/notes.md is named only under testdata, which holds no test the go tool runs
