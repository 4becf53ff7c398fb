"""The census's static listing (`go list` + the test files' syntax trees) names what `go test -list` names.

Compared with `go test -vet=off -json -list`: vet is not part of a listing (a vet failure fails the
package at the base and after the patch alike), and the fixture's near-miss names are vet findings.
"""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.go_test_runner import census, listing, testfuncs

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "census_listing"
MODULES = ("github.com/gorilla/mux@v1.8.1", "go.uber.org/zap@v1.27.0")


def _go(root: pathlib.Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["go", *args], cwd=root, capture_output=True, text=True, timeout=600, check=check)


def _static(root: pathlib.Path, pattern: str = ".", *, race: bool = False) -> census.BaseTests:
    compiled = listing.name_filter(pattern)
    assert compiled is not None
    out = _go(root, *listing.go_list_args(["./..."], race=race)).stdout
    return listing.read_listing(out, root, str(root), compiled)


def _go_test_list(root: pathlib.Path, pattern: str = ".", *flags: str) -> census.BaseTests:
    proc = _go(root, "test", "-vet=off", *flags, *census.list_args(pattern, ["./..."]), check=False)
    return census.parse_list(proc.stdout.splitlines())


@pytest.fixture(scope="module")
def module_dirs() -> dict[str, pathlib.Path]:
    """The pinned modules from the module proxy, their dependencies downloaded."""
    out: dict[str, pathlib.Path] = {}
    for spec in MODULES:
        root = pathlib.Path(json.loads(_go(FIXTURE, "mod", "download", "-json", spec).stdout)["Dir"])
        _go(root, "mod", "download")
        out[spec] = root
    return out


@pytest.mark.slow
@pytest.mark.parametrize("spec", MODULES)
def test_the_static_listing_of_a_real_module_is_go_test_list(spec: str, module_dirs: dict[str, pathlib.Path]) -> None:
    root = module_dirs[spec]
    static = _static(root)
    assert static.tests  # something was listed
    assert static == _go_test_list(root)


@pytest.mark.slow
@pytest.mark.parametrize("race", [False, True], ids=["plain", "race"])
def test_the_static_listing_of_the_fixture_is_go_test_list(race: bool) -> None:
    """Build tags (a GOOS suffix, `never`, `ignore`, `race`/`!race`), an external test package with a
    name the internal one also has, near-miss names, examples with and without output comments,
    and packages go refuses (wrong signature, type parameters, two TestMains): left out by both."""
    static = _static(FIXTURE, race=race)
    assert static == _go_test_list(FIXTURE, ".", *(["-race"] if race else []))
    names = static.tests["example.com/listing"]
    assert ("TestRaceOnly" in names, "TestNoRace" in names) == (race, not race)
    assert names.count("TestA") == 2  # internal and external: one binary reports both
    assert not {"Testing", "Testfoo", "Testé", "TestMethod", "TestInCode", "TestWindowsOnly", "TestNever"} & set(names)
    assert not {"ExampleNoOutput", "ExampleNotLast", "ExampleDirective", "ExampleGrouped", "ExampleParams"} & set(names)
    assert {"ExampleTrailing", "ExampleAfterCode", "ExampleRaw", "ExampleSeparated", "TestMain"} <= set(names)
    assert set(static.tests) == {"example.com/listing", "example.com/listing/mainpkg", "example.com/listing/testonly"}


@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["^TestA$", "TestA|Fuzz", "Example", "^Test[_Σ1]", r"\d$", "Only$", "x.*l$", "^$"])
def test_a_pattern_filters_as_go_test_list_filters(pattern: str) -> None:
    assert _static(FIXTURE, pattern) == _go_test_list(FIXTURE, pattern)


def test_patterns_python_reads_otherwise_are_left_to_go() -> None:
    for pattern in ("(?i)testa", "Test{2}", "Test{,2}", "[[:upper:]]", r"[\d]", r"\pL", r"\Qa.b\E", "a*+", "a[b"):
        assert listing.name_filter(pattern) is None, pattern
    for pattern in (".", "^TestA$", "A|B", r"Test\.x", "[]a]", "[^]a-]", "a*?", "(A|B)+"):
        assert listing.name_filter(pattern) is not None, pattern


def test_near_miss_names_and_signatures() -> None:
    source = b"""package p
import "testing"
func Testing(t *testing.T) {}
func Testfoo(t *testing.T) {}
func TestMain(m *testing.M) {}
func (s S) TestM(t *testing.T) {}
func Fuzzy(x int) {}
func Benchmarked() {}
func Test_x(t *testing.T) {}
func FuzzF(f *testing.F) {}
"""
    found = testfuncs.read_file(source)
    assert (found.tests, found.fuzz, found.examples, found.mains) == (["Test_x"], ["FuzzF"], [], 1)
    for wrong in (
        "func TestFoo(t *testing.B) {}",
        "func TestFoo(a, b *testing.T) {}",
        "func TestFoo(t *testing.T) int { return 0 }",
        "func TestFoo(t ...*testing.T) {}",
        "func TestFoo(t (*testing.T)) {}",
        "func TestFoo[T any](t *testing.T) {}",
        "func FuzzFoo(t *testing.T) {}",
        "func BenchmarkFoo(t *testing.T) {}",
        "func TestMain(t int) {}",
    ):
        with pytest.raises(testfuncs.NotListable):
            testfuncs.read_file(b'package p\nimport "testing"\n' + wrong.encode())
    with pytest.raises(testfuncs.NotListable):
        testfuncs.read_file(b"package p\nfunc TestBroken(t *testing.T) {")


_GO_MATCHER = """package main

import (
	"encoding/json"
	"os"
	"regexp"
)

func main() {
	var cases []struct{ Pattern string; Names []string }
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	out := make([]any, len(cases))
	for i, c := range cases {
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			continue
		}
		matched := make([]bool, len(c.Names))
		for j, name := range c.Names {
			matched[j] = re.MatchString(name)
		}
		out[i] = matched
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
"""


@pytest.fixture(scope="module")
def go_matcher(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A small Go program: which names each pattern matches with Go's own regexp (null: no pattern)."""
    src = tmp_path_factory.mktemp("matcher")
    (src / "go.mod").write_text("module matcher\n\ngo 1.22\n")
    (src / "main.go").write_text(_GO_MATCHER)
    _go(src, "build", "-o", "matcher", ".")
    return src / "matcher"


_ATOMS = st.sampled_from(
    ["T", "e", "s", "t", "A", "x", "_", "1", "Σ", "é", ".", "^", "$", "|", "(", ")", "*", "+", "?", "[", "]", "-",
     r"\d", r"\w", r"\b", r"\.", "[^", "Test", "Example"]
)  # fmt: skip
_NAMES = st.lists(
    st.one_of(
        st.sampled_from(["TestA", "Test", "Test_x", "TestΣ", "Example", "ExampleA_b", "FuzzX", "Test1", "Testé"]),
        st.text(alphabet="TestAxΣé_1.", max_size=8),
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.slow
@settings(max_examples=5, deadline=None)
@given(st.lists(st.tuples(st.lists(_ATOMS, max_size=8).map("".join), _NAMES), min_size=50, max_size=50))
def test_an_accepted_pattern_matches_as_go_regexp_matches(
    go_matcher: pathlib.Path, cases: list[tuple[str, list[str]]]
) -> None:
    """Where `name_filter` accepts a pattern, Python matches exactly the names Go's regexp matches.

    (A pattern Go rejects fails the run itself in `go test`: nothing is held to its listing.)"""
    payload = json.dumps([{"Pattern": p, "Names": names} for p, names in cases])
    proc = subprocess.run([go_matcher], input=payload, capture_output=True, text=True, timeout=60, check=True)
    compared = 0
    for (pattern, names), go_matched in zip(cases, json.loads(proc.stdout), strict=True):
        compiled = listing.name_filter(pattern)
        if compiled is None or go_matched is None:
            continue
        assert [compiled.search(n) is not None for n in names] == go_matched, pattern
        compared += 1
    assert compared  # about half of the generated patterns are accepted


@given(st.one_of(st.binary(max_size=400), st.lists(_ATOMS, max_size=30).map(lambda xs: "func ".join(xs).encode())))
def test_any_bytes_are_a_listing_or_not_listable(source: bytes) -> None:
    try:
        found = testfuncs.read_file(source)
    except testfuncs.NotListable:
        return
    assert all(testfuncs.is_test(n, "Test") for n in found.tests)
    assert all(testfuncs.is_test(n, "Fuzz") for n in found.fuzz)
    assert all(testfuncs.is_test(n, "Example") for n in found.examples)


@given(st.text(max_size=200))
def test_any_text_is_read_as_go_list_output_or_a_pattern(text: str) -> None:
    listing.parse_go_list(text)
    listing.name_filter(text)
