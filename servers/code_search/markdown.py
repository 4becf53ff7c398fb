"""Markdown by heading, and line windows for files that do not parse.

A Markdown section runs from its heading to the next heading of any level; headings inside fenced
code blocks do not count. Its symbol is the heading path ("ADR 7 > Decision"). A Go file that
tree-sitter cannot parse cleanly is still indexed, as overlapping windows of lines.
"""

from __future__ import annotations

import re

from servers.code_search.model import Chunk

# An ATX heading: its hashes, then the rest of the line (closing hashes and spaces are stripped in `heading`).
# Not `\s+(.*?)\s*#*\s*$` in one pattern: three adjacent quantifiers over the same spaces backtrack in cubic
# time on a heading ending in a long run of spaces (2,000 spaces: 15 s).
_HEADING = re.compile(r"(#{1,6})\s+(.*)")
_FENCE = re.compile(r"^\s*(```|~~~)")
WINDOW_LINES = 60
WINDOW_OVERLAP = 10


def heading(line: str) -> tuple[int, str] | None:
    """A line's ATX heading as (level, title), or None: `## Title ##` is (2, "Title"). Linear in the line."""
    match = _HEADING.match(line)
    if match is None:
        return None
    return len(match.group(1)), match.group(2).rstrip().rstrip("#").rstrip()


def markdown_sections(path: str, text: str) -> list[Chunk]:
    """One unit per heading section; text before the first heading is a unit named after the file."""
    lines = text.split("\n")
    starts: list[tuple[int, int, str]] = []  # (row, level, title)
    fenced = False
    for row, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        found = None if fenced else heading(line)
        if found is not None:
            starts.append((row, *found))
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, 0, path.rsplit("/", 1)[-1]))
    trail: list[tuple[int, str]] = []
    out: list[Chunk] = []
    for n, (row, level, title) in enumerate(starts):
        end = starts[n + 1][0] - 1 if n + 1 < len(starts) else len(lines) - 1
        while end > row and not lines[end].strip():
            end -= 1
        trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, title)]
        content = "\n".join(lines[row : end + 1])
        if not content.strip():
            continue
        symbol = " > ".join(t for _, t in trail)
        out.append(Chunk(path, row + 1, end + 1, symbol, "doc", lines[row].strip(), "", content))
    return out


def line_windows(path: str, text: str, size: int = WINDOW_LINES, overlap: int = WINDOW_OVERLAP) -> list[Chunk]:
    """Overlapping windows of whole lines, for a file that did not parse."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    out: list[Chunk] = []
    step = max(1, size - overlap)
    for start in range(0, max(1, len(lines)), step):
        window = lines[start : start + size]
        if not "".join(window).strip():
            continue
        symbol = f"{path}:{start + 1}"
        out.append(
            Chunk(path, start + 1, start + len(window), symbol, "window", window[0].strip(), "", "\n".join(window))
        )
        if start + size >= len(lines):
            break
    return out
