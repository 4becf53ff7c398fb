"""Property tests: the policy never crashes, never refuses a pure appended test, never allows tampering."""

from __future__ import annotations

import difflib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers.common import diffs
from servers.common.patch_policy import PatchVerdict, check_patch
from servers.common.policy import ProtectedPolicy

from .conftest import CALC_TEST

POLICY = ProtectedPolicy()
LINES = CALC_TEST.splitlines(keepends=True)
STATES = diffs.line_states(CALC_TEST)
BODY_LINES = [i for i, s in enumerate(STATES[: len(LINES)]) if s.braces > 0]
TOP_BOUNDARIES = [i for i in range(len(LINES) + 1) if STATES[i].braces == 0 and STATES[i].parens == 0]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def udiff(old: list[str], new: list[str], path: str = "calc/calc_test.go") -> str:
    return "".join(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}"))


statements = st.sampled_from(
    [
        '\tif Add(1, 1) != 2 {\n\t\tt.Fatal("x")\n\t}\n',
        '\tt.Log("hello")\n',
        "\tfor i := 0; i < 3; i++ {\n\t\t_ = Add(i, i)\n\t}\n",
        '\tt.Run("sub", func(t *testing.T) {\n\t\tt.Parallel()\n\t})\n',
        "\tvar s = `raw { string`\n\t_ = s\n",
        "\t// a comment with } brace\n",
    ]
)
names = st.from_regex(r"[A-Z][A-Za-z0-9_]{0,20}", fullmatch=True)


@st.composite
def new_test_function(draw: st.DrawFn) -> str:
    body = "".join(draw(st.lists(statements, min_size=0, max_size=4)))
    return f"\nfunc Test{draw(names)}(t *testing.T) {{\n{body}}}\n"


@FAST
@given(st.text(max_size=2000))
def test_arbitrary_text_never_raises(text: str) -> None:
    assert isinstance(check_patch(text, POLICY), PatchVerdict)


diff_lines = st.one_of(
    st.sampled_from(["--- a/x_test.go\n", "+++ b/x_test.go\n", "--- /dev/null\n", "diff --git a/x b/x\n", "\n"]),
    st.builds(lambda a, b, c, d: f"@@ -{a},{b} +{c},{d} @@\n", *[st.integers(-2, 5)] * 4),
    st.builds(lambda p, t: p + t + "\n", st.sampled_from(["+", "-", " ", "\\"]), st.text(max_size=30)),
)


@FAST
@given(st.lists(diff_lines, max_size=30))
def test_diff_shaped_garbage_never_raises(lines: list[str]) -> None:
    verdict = check_patch("".join(lines), POLICY)
    assert verdict.allowed == (not verdict.reasons)


@FAST
@given(st.lists(new_test_function(), min_size=1, max_size=3), st.sampled_from(TOP_BOUNDARIES))
def test_whole_test_functions_added_at_top_level_are_allowed(funcs: list[str], at: int) -> None:
    if at <= 2:  # before `import (`: a Go function cannot precede imports
        at = len(LINES)
    new = LINES[:at] + "".join(funcs).splitlines(keepends=True) + LINES[at:]
    verdict = check_patch(udiff(LINES, new), POLICY)
    assert verdict.allowed, verdict.render()


@FAST
@given(st.sampled_from(BODY_LINES), st.sampled_from(["delete", "skip", "return", "stmt", "literal"]))
def test_any_change_inside_an_existing_test_is_refused(index: int, how: str) -> None:
    new = list(LINES)
    if how == "delete":
        del new[index]
    elif how == "skip":
        new.insert(index, '\tt.Skip("later")\n')
    elif how == "return":
        new.insert(index, "\treturn\n")
    elif how == "stmt":
        new.insert(index, "\t_ = 0\n")
    else:
        _shape, lits = diffs.literal_skeleton(new[index])
        if not lits:
            new[index] = new[index].rstrip("\n") + " // changed\n"
        else:
            new[index] = new[index].replace(lits[0], "7" if lits[0] != "7" else "8", 1)
    verdict = check_patch(udiff(LINES, new), POLICY)
    assert not verdict.allowed
    assert {r.path for r in verdict.reasons} == {"calc/calc_test.go"}


segments = st.from_regex(r"[a-z0-9_.-]{1,12}", fullmatch=True).filter(lambda s: s not in {".", "..", ".git"})


@FAST
@given(st.lists(segments, max_size=3), st.lists(segments, min_size=1, max_size=3))
def test_anything_under_a_testdata_directory_is_protected(prefix: list[str], rest: list[str]) -> None:
    path = "/".join([*prefix, "testdata", *rest])
    diff = udiff([], ["x\n"], path)
    assert [r.rule for r in check_patch(diff, POLICY).reasons] == ["protected_path"]


@FAST
@given(st.lists(segments, min_size=1, max_size=4))
def test_ordinary_go_source_paths_are_not_protected(parts: list[str]) -> None:
    path = "/".join(p for p in parts if p != "testdata") or "x"
    path = f"pkg/{path}.go"
    assert diffs.matching_glob(path, POLICY.paths) is None or "testdata" in path


@FAST
@given(st.lists(st.sampled_from(["{", "}", "(", ")", '"{"', "`", "/*", "*/", "//", "\n", "x", "'}'"]), max_size=60))
def test_line_states_never_go_negative(tokens: list[str]) -> None:
    states = diffs.line_states("".join(tokens))
    assert all(s.braces >= 0 and s.parens >= 0 for s in states)


def test_verdict_round_trips_through_json() -> None:
    new = list(LINES)
    del new[BODY_LINES[3]]
    verdict = check_patch(udiff(LINES, new), POLICY)
    assert PatchVerdict.model_validate_json(verdict.model_dump_json()) == verdict


def test_glob_brackets_hold_literal_characters_ranges_and_negation() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Python warns on `[[`, `&&`, `~~`, `||` inside a set it would read as syntax
        cases = {
            "a[[]b": (["a[b"], ["ab", "a]b"]),
            "x[&&]y": (["x&y"], ["xy", "x&&y"]),
            "x[~~|]y": (["x~y", "x|y"], ["xy"]),
            "v[0-9].go": (["v3.go"], ["vx.go", "v-.go"]),
            "v[!0-9].go": (["vx.go"], ["v3.go"]),
            "v[^0-9].go": (["vx.go"], ["v3.go"]),
            "q[\\]": (["q\\"], ["q"]),
            "gen/[]z]": (["gen/]", "gen/z", "gen/z/deep.go"], ["gen/a", "sub/gen/z"]),
            "a[[-?]": ([], ["a[", "a?", "a-"]),  # a reversed range matches nothing (Python would refuse it)
            "a[z-ab]": (["ab"], ["az", "a-"]),
            "a[-x]": (["a-", "ax"], ["a"]),
            "a[!x]b": (["ayb"], ["axb", "a/b"]),  # like `*` and `?`, a bracket never matches `/`
        }
        for pattern, (matching, other) in cases.items():
            regex = diffs.glob_regex(pattern)
            for path in matching:
                assert regex.fullmatch(path), (pattern, path)
            for path in other:
                assert not regex.fullmatch(path), (pattern, path)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ab[]!^-&~|\\*?/", max_size=12))
def test_any_glob_compiles_without_a_warning(pattern: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diffs.glob_regex.__wrapped__(pattern)  # the uncached function: every example compiles afresh
