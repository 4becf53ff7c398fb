"""The chunker cuts Go along the syntax tree: checked on fixtures and against go/parser on a real module."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

from servers.code_search.chunker import GoChunker, GoOptions
from servers.code_search.indexer import chunk_file
from servers.code_search.markdown import line_windows, markdown_sections
from servers.code_search.source import SkipRules, snapshot

HERE = Path(__file__).parent


def _units(path: Path, rel: str, options: GoOptions | None = None) -> dict[str, object]:
    units = GoChunker(options).chunk(rel, path.read_bytes())
    assert units is not None
    return {u.symbol: u for u in units}


def test_each_declaration_is_one_unit_with_its_doc_and_kind(shapes: Path) -> None:
    units = GoChunker().chunk("shapes.go", (shapes / "shapes.go").read_bytes())
    assert units is not None
    got = {(u.symbol, u.kind, u.start_line, u.end_line, u.parent) for u in units}
    assert got == {
        ("shapes.ErrNegative", "var", 8, 9, ""),
        ("shapes.Metres", "const", 11, 15, ""),
        ("shapes.Unit", "type", 17, 18, ""),
        ("shapes.Shape", "type", 20, 24, ""),
        ("shapes.Circle", "type", 26, 29, ""),
        ("shapes.Circle.Area", "method", 31, 34, "shapes.Circle"),
        ("shapes.NewCircle", "func", 36, 42, ""),
        ("shapes.Max", "func", 44, 50, ""),
        ("shapes.Point", "type", 53, 54, ""),
        ("shapes.Polygon", "type", 55, 56, ""),
        ("shapes.parseHTTPHeader", "func", 59, 66, ""),
    }
    by_symbol = {u.symbol: u for u in units}
    area = by_symbol["shapes.Circle.Area"]
    assert area.doc == "// Area returns the area of the circle."
    assert area.signature == "func (c *Circle) Area() float64"
    assert area.content.startswith("// Area returns") and area.content.endswith("}")
    assert by_symbol["shapes.Max"].signature == "func Max[T int | float64](a, b T) T"
    assert by_symbol["shapes.Point"].doc == "\t// Point is a position in the plane."


def test_value_receiver_in_another_file_knows_its_type(shapes: Path) -> None:
    units = GoChunker().chunk("circle_perimeter.go", (shapes / "circle_perimeter.go").read_bytes())
    assert units is not None
    assert [(u.symbol, u.parent) for u in units] == [("shapes.Circle.Perimeter", "shapes.Circle")]


def test_package_doc_is_a_unit(shapes: Path) -> None:
    units = GoChunker().chunk("doc.go", (shapes / "doc.go").read_bytes())
    assert units is not None
    assert [(u.symbol, u.kind, u.start_line, u.end_line) for u in units] == [("shapes", "package", 1, 4)]


def test_oversize_unit_splits_between_statements_repeating_the_signature(shapes: Path) -> None:
    path = shapes / "internal/geom/big.go"
    units = GoChunker(GoOptions(max_tokens=300)).chunk("internal/geom/big.go", path.read_bytes())
    assert units is not None and len(units) > 3
    lines = path.read_text().split("\n")
    assert [u.part for u in units] == list(range(1, len(units) + 1))
    assert units[0].start_line == 3 and units[-1].end_line == 367
    for prev, cur in itertools.pairwise(units):
        assert cur.start_line == prev.end_line + 1  # contiguous, nothing lost
    for unit in units:
        assert unit.symbol == "geom.Classify"
        code = [line for line in unit.content.split("\n") if not line.startswith("//")]
        assert code[0].startswith("func Classify(code int) string {  // part")
        assert unit.tokens <= 300 + 40
        last = lines[unit.end_line - 1].strip()
        assert last in ("}", "return result") or last.startswith("result :=")  # ends on a statement boundary


def test_unparsable_file_falls_back_to_line_windows(shapes: Path) -> None:
    text = (shapes / "broken.go").read_text()
    assert GoChunker().chunk("broken.go", text.encode()) is None
    units, status = chunk_file(GoChunker(), "broken.go", text)
    assert status == "windows"
    assert [(u.kind, u.start_line, u.end_line) for u in units] == [("window", 1, 5)]
    long = "\n".join(f"line {i}" for i in range(130))
    assert [(u.start_line, u.end_line) for u in line_windows("x.go", long)] == [(1, 60), (51, 110), (101, 130)]


def test_markdown_is_cut_by_heading_ignoring_fenced_code(shapes: Path) -> None:
    units = markdown_sections("docs/adr-001-units.md", (shapes / "docs/adr-001-units.md").read_text())
    assert [(u.symbol, u.start_line, u.end_line) for u in units] == [
        ("ADR 1: Units of length", 1, 3),
        ("ADR 1: Units of length > Context", 5, 11),
        ("ADR 1: Units of length > Decision", 13, 15),
        ("ADR 1: Units of length > Decision > Consequences", 17, 19),
    ]


def test_skip_rules_leave_out_vendor_testdata_generated_and_binary(shapes: Path) -> None:
    rules = SkipRules()
    snap = snapshot(shapes, None, rules)
    assert "vendor/github.com/x/y/y.go" not in snap.files
    assert "testdata/fixture.go" not in snap.files
    kept = {p for p, data in snap.read(sorted(snap.files)) if rules.wants_content(data)}
    assert kept == {
        "doc.go",
        "shapes.go",
        "circle_perimeter.go",
        "broken.go",
        "shapes_test.go",
        "internal/geom/big.go",
        "docs/adr-001-units.md",
    }
    no_tests = snapshot(shapes, None, SkipRules(include_tests=False, skip_dirs=("vendor",)))
    assert "shapes_test.go" not in no_tests.files and "testdata/fixture.go" in no_tests.files


def test_every_func_and_method_of_a_real_module_matches_go_parser(mux_dir: Path, tmp_path: Path) -> None:
    files = sorted(p.name for p in mux_dir.glob("*.go"))
    tool = tmp_path / "goast"
    subprocess.run(["go", "build", "-o", str(tool), str(HERE / "goast" / "main.go")], cwd=tmp_path, check=True)
    done = subprocess.run([str(tool), *files], cwd=mux_dir, capture_output=True, text=True, check=True)
    truth = set()
    for line in done.stdout.splitlines():
        path, symbol, start, end = line.split(" ")
        truth.add((Path(path).name, symbol, int(start), int(end)))
    chunker = GoChunker(GoOptions(max_tokens=10**9))
    got = set()
    for name in files:
        units = chunker.chunk(name, (mux_dir / name).read_bytes())
        assert units is not None, name
        got |= {
            (u.path, u.symbol, u.start_line + u.doc.count("\n") + (1 if u.doc else 0), u.end_line)
            for u in units
            if u.kind in ("func", "method")
        }
    assert got == truth
    assert len(truth) > 200


def test_a_large_real_module_parses_cleanly_into_contiguous_units(tmp_path: Path) -> None:
    done = subprocess.run(["go", "mod", "download", "-json", "golang.org/x/tools@v0.28.0"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    root = Path(json.loads(done.stdout)["Dir"])
    snap = snapshot(root, None, SkipRules(extensions=(".go",)))
    chunker = GoChunker()
    units = 0
    parts: list[int] = []
    for path, data in snap.read(sorted(snap.files)):
        if not SkipRules().wants_content(data):
            continue
        got = chunker.chunk(path, data)
        assert got is not None, path
        lines = data.count(b"\n") + 1
        for unit in got:
            assert 1 <= unit.start_line <= unit.end_line <= lines, (path, unit.symbol)
        parts += [u.tokens for u in got if u.part]
        units += len(got)
    assert len(snap.files) > 800 and units > 8000
    # a part exceeds the budget only when one statement alone does (never cut mid-statement)
    # (what stays over: single elements such as multi-line raw-string test inputs)
    assert sum(t <= 512 + 10 for t in parts) / len(parts) > 0.85
