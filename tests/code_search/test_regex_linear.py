"""The patterns that read headings and traceback frames run in linear time and find what the old ones found.

The old patterns (kept here as the reference) backtracked in cubic or quadratic time: a heading line ending
in 2,000 spaces took 15 s to match (every line of a ticket-like query, every line of a .md file at index
time), and a `panic:` query followed by 10,000 newlines took 7 s to read for frames. The new code must give
the same results on ordinary input, since ticket reading feeds the ranking.
"""

# pyright: reportPrivateUsage=false
from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from servers.code_search.markdown import heading, markdown_sections
from servers.code_search.query import _FRAME_FUNC, _frame_files, parse_query
from servers.code_search.ticket import _heading, read_ticket

OLD_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
OLD_TICKET_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s+(.*?)\s*#*\s*|\*\*([^*\n]{2,120})\*\*:?\s*|__([^_\n]{2,120})__:?\s*)$"
)
OLD_FRAME_FUNC = re.compile(r"^\s*(?:created by )?([\w.\-/]+?)\.(?:\(\*?(\w+)\)\.)?(\w+)\((?:[^()]*)\)?", re.MULTILINE)
OLD_FRAME_FILE = re.compile(r"^\s+(\S+?\.go):(\d+)", re.MULTILINE)

# Lines built of what matters to the patterns: every kind of white space `\s` knows, hashes, emphasis, words,
# and now and then any other character.
_WHITE = list(" \t\x0b\x0c\r\x1c\x1f\x85\xa0\u2028\u3000")
_LINE_PIECES = st.sampled_from([*_WHITE, " ", "  ", "#", "##", "###", "####", "*", "**", "_", "__", ":", "a", "b c"])
LINES = st.lists(_LINE_PIECES | st.characters(blacklist_characters="\n"), max_size=16).map("".join)
# Text for frames: traceback-ish pieces, blank lines, indentation.
_FRAME_BITS = [
    "\n",
    "\n\n",
    "\n \n",
    "\t",
    "a",
    "b.go",
    ".go",
    ":12",
    "b.go:12",
    "x/y.",
    "(*T).",
    "F(",
    ")",
    "x/y.F()",
    ".",
]
_FRAME_PIECES = st.sampled_from([*_WHITE, *_FRAME_BITS, "created by "])
FRAME_TEXT = st.lists(_FRAME_PIECES, max_size=30).map("".join)


def _old_md(line: str) -> tuple[int, str] | None:
    match = OLD_MD_HEADING.match(line)
    return None if match is None else (len(match.group(1)), match.group(2))


def _old_ticket(line: str) -> str | None:
    match = OLD_TICKET_HEADING.match(line)
    return None if match is None else next(g for g in match.groups() if g is not None)


@settings(max_examples=3000, deadline=None)
@given(LINES)
def test_markdown_heading_is_the_old_pattern(line: str) -> None:
    assert heading(line) == _old_md(line)


@settings(max_examples=3000, deadline=None)
@given(LINES)
def test_ticket_heading_is_the_old_pattern(line: str) -> None:
    assert _heading(line) == _old_ticket(line)


@settings(max_examples=3000, deadline=None)
@given(FRAME_TEXT)
def test_frames_are_what_the_old_patterns_found(text: str) -> None:
    assert [m.groups() for m in _FRAME_FUNC.finditer(text)] == [m.groups() for m in OLD_FRAME_FUNC.finditer(text)]
    assert _frame_files(text) == OLD_FRAME_FILE.findall(text)


def test_heading_examples() -> None:
    assert heading("## Decision ##  ") == (2, "Decision")
    assert heading("# a  # b #") == (1, "a  # b")
    assert heading("####### seven") is None and heading("#nospace") is None
    assert _heading("   ### What did you do?") == "What did you do?"
    assert _heading("**Environment**:") == "Environment"
    assert _heading("#") is None and _heading("# ") == ""


def _cpu(fn: object, *args: object) -> float:
    assert callable(fn)
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def test_a_heading_ending_in_spaces_is_read_in_linear_time() -> None:
    # Old: 1,000 spaces 1.8 s, 2,000 spaces 15 s (cubic); 10,000 would take half an hour.
    line = "## a" + " " * 10_000 + "x"
    assert _cpu(heading, line) < 2.0
    assert _cpu(read_ticket, "title\n" + line + "\n" + "word " * 50) < 2.0
    assert _cpu(parse_query, line + "\n" + "word " * 50) < 2.0
    readme = "# Title\n\n## a" + " " * 20_000 + "x\n\ntext\n"  # old: a 4.5 KB README took 17.5 s
    assert _cpu(markdown_sections, "README.md", readme) < 2.0


def test_a_panic_followed_by_blank_lines_is_read_in_linear_time() -> None:
    # Old: 7-8 s for `panic: x` and 10,000 newlines (`^\s*` / `^\s+` under MULTILINE, quadratic).
    for tail in ("\n" * 9_990, " \n" * 4_995, "\t\n" * 4_995):
        assert _cpu(parse_query, "panic: x\n" + tail) < 2.0
    assert _cpu(parse_query, "goroutine 1 [running]:\n" + "\n" * 9_970) < 2.0
