"""No answer grows with the size of one declaration or one line.

Before the bounds: 20 one-line ~900 KB declarations named Big made one `get_symbol` answer 17.6 MB (11.8 s), and
`read_file` of a 2-line file returned 880 KB (max_read_lines bounds lines, not characters). Now a unit
with a line far over the token budget is cut into windows when it is chunked, `get_symbol` packs its units
into the token budget `search_code` uses (a unit that does not fit is a stub saying where to read it),
and `read_file` stops at `max_read_chars` (a longer single line is cut and marked).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from servers.code_search import chunker as chunker_module
from servers.code_search.chunker import MAX_DOC_WINDOWS, MAX_WINDOWS, OVERSIZE, UNIT_WINDOWS, GoChunker
from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import chunk_file, index_repo
from servers.code_search.model import count_tokens
from servers.code_search.service import CodeSearchService
from servers.code_search.settings import CodeSearchSettings

BIG_LINE = "var Big = []int{" + ",".join(["1"] * 100_000) + "}"  # 200 KB, 200,000 tokens on one line
BIG = f"package p\n\n// Big is a table.\n{BIG_LINE}\n"


def test_a_unit_with_a_huge_line_is_cut_into_windows_within_the_budget() -> None:
    units = GoChunker().chunk("p/big.go", BIG.encode())
    # 200,000 tokens would be ~400 windows: only the first MAX_WINDOWS are indexed (read_file reads the rest)
    assert units is not None and len(units) == MAX_WINDOWS
    assert [u.part for u in units] == list(range(1, len(units) + 1))
    assert all(u.symbol == "p.Big" and u.kind == "var" for u in units)
    assert all(u.tokens <= 512 and len(u.content) <= 512 * 8 for u in units)
    assert all(len(u.signature) <= 500 and u.signature.startswith("var Big = []int{1,1") for u in units)
    assert f"// Big is a table.\n{BIG_LINE}".startswith("".join(u.content for u in units))
    assert (units[0].start_line, units[0].end_line) == (3, 4)  # the doc line, then the huge line
    assert all((u.start_line, u.end_line) == (4, 4) for u in units[1:])


def test_markdown_and_unparsed_files_with_a_huge_line_are_cut_too() -> None:
    huge = "word " * 100_000
    md, _ = chunk_file(GoChunker(), "README.md", f"# Title\n\n{huge}\n\n## Next\n\nshort\n")
    assert max(len(u.content) for u in md) <= 512 * 8 and md[-1].content == "## Next\n\nshort"
    assert len(md) == MAX_DOC_WINDOWS + 1  # prose: more of a section is indexed than of a generated literal
    windows, status = chunk_file(GoChunker(), "broken.go", f"package p\nfunc {{\n{huge}\n")
    assert status == "windows" and max(u.tokens for u in windows) <= 512
    assert len({(u.start_line, u.part) for u in windows}) == len(windows)  # distinct keys in the index


def test_an_ordinary_large_unit_is_not_cut() -> None:
    # Thousands of tokens over many short lines, in one statement the chunker cannot split: left whole.
    args = ",\n".join(f"\targ{i} + arg{i} * arg{i}" for i in range(1200))
    source = f"package p\n\nfunc Wide() int {{\n\treturn f(\n{args},\n\t)\n}}\n"
    units = GoChunker().chunk("p/wide.go", source.encode())
    assert units is not None
    assert [(u.symbol, u.part) for u in units] == [("p.Wide", 0)]
    assert units[0].tokens > OVERSIZE * 512


def test_a_table_of_many_short_lines_is_cut_into_windows() -> None:
    """Before: a 778 KB table over short lines in one declaration was one unit (no line far over the budget),
    held and read whole by every search that touched it."""
    rows = "\n".join(f'\t"key{i:06d}": "value number {i:06d}",' for i in range(20_000))  # ~820 KB
    source = f"package p\n\n// Table maps keys.\nvar Table = map[string]string{{\n{rows}\n}}\n"
    units = GoChunker().chunk("p/table.go", source.encode())
    assert units is not None and len(units) == MAX_WINDOWS
    assert all(u.symbol == "p.Table" and u.kind == "var" and len(u.content) <= 512 * 8 for u in units)
    assert [u.part for u in units] == list(range(1, MAX_WINDOWS + 1))
    assert source.split("\n", 2)[2].startswith("".join(u.content for u in units))
    assert units[1].start_line == units[0].end_line or units[1].start_line == units[0].end_line + 1


def test_a_long_markdown_section_is_indexed_in_windows_all_of_it() -> None:
    """Before: a Markdown file without headings was one unit however long (here 120 KB)."""
    prose = "\n".join(f"Line {i} of the operations notes says something worth finding." for i in range(2_000))
    md, status = chunk_file(GoChunker(), "NOTES.md", prose + "\n")
    assert status == "ok" and len(prose) > UNIT_WINDOWS * 512 * 8
    assert 1 < len(md) <= MAX_DOC_WINDOWS and max(len(u.content) for u in md) <= 512 * 8
    assert "".join(u.content for u in md) == prose  # none of it is left out
    assert md[-1].end_line == 2_000 and all(u.symbol == "NOTES.md" for u in md)


@pytest.fixture
def service(
    tmp_path: Path, make_repo: Callable[[str, dict[str, str]], Path], monkeypatch: pytest.MonkeyPatch
) -> CodeSearchService:
    """An index built as before the fix (no windows): huge units reach the service as they are."""
    files = {f"p{i}/big.go": BIG.replace("package p", f"package p{i}") for i in range(5)}
    files["p0/small.go"] = "package p0\n\n// Small is small.\nfunc Small() int { return 1 }\n"
    repo = make_repo("huge", files)
    embedder = HashingEmbedder(dim=64)
    index = CodeIndex(tmp_path / "db", embedder.model_id, embedder.dim, create=True)
    with monkeypatch.context() as patch:
        patch.setattr(chunker_module, "OVERSIZE", 10**9)
        index_repo(index, embedder, repo, "huge")
    settings = CodeSearchSettings(state_dir=tmp_path / "state", db_dir=tmp_path / "db", embedder="hashing")
    return CodeSearchService(settings, embedder, lambda: index)


def test_get_symbol_packs_its_units_into_the_token_budget(service: CodeSearchService) -> None:
    got = service.get_symbol(["huge"], "huge", "Big")
    assert len(got.units) == 5  # every declaration is named, each one that does not fit as a stub
    assert sum(len(u.code) for u in got.units) < 1_000  # was 5 x 200 KB
    stub = got.units[0]
    assert stub.code == (
        "// omitted: 200014 tokens do not fit the 4000-token budget; read_file path=p0/big.go start_line=3 end_line=4"
    )
    assert stub.tokens == count_tokens(stub.code) < 50
    small = service.get_symbol(["huge"], "huge", "p0.Small")
    assert small.units[0].code == "// Small is small.\nfunc Small() int { return 1 }"


def test_read_file_stops_at_max_read_chars(service: CodeSearchService) -> None:
    cap = service.settings.max_read_chars
    whole = service.read_file(["huge"], "huge", "p0/big.go", None, None)
    assert (whole.start_line, whole.end_line, whole.total_lines) == (1, 3, 4)  # line 4 would pass the cap
    assert whole.text == "package p0\n\n// Big is a table."
    line = service.read_file(["huge"], "huge", "p0/big.go", 4, None)
    assert (line.start_line, line.end_line) == (4, 4)
    assert len(line.text) < cap + 100
    assert line.text.startswith(BIG_LINE[:cap]) and line.text.endswith(
        f"[... {len(BIG_LINE) - cap:,} more characters of line 4 not shown]"
    )
    small = service.read_file(["huge"], "huge", "p0/small.go", None, None)
    assert small.text.endswith("func Small() int { return 1 }") and small.end_line == small.total_lines
