"""Ticket text hygiene: markup to Markdown, invisible characters out, bounded size.

Ticket text is untrusted input written by anyone who can file a ticket. Before it reaches a model:
- Atlassian Document Format (API v3, a JSON tree) and wiki markup (API v2) become plain Markdown;
- invisible characters are removed (`servers.common.textnorm.strip_invisible`: Unicode's
  Default_Ignorable_Code_Point property, the tag block, format/control/private-use characters):
  zero-width spaces, bidi overrides that make code read differently than it runs, variation
  selectors, Hangul fillers, tag characters that spell hidden instructions;
- text longer than the configured size is cut at a line boundary with an explicit marker.

Input is bounded before any conversion runs: an ADF tree deeper than `MAX_ADF_DEPTH` or larger than
`MAX_ADF_NODES`, or raw text longer than `MAX_RAW_CHARS`, is refused with `InvalidInput` (Jira's own
editor never produces such documents; the recursive renderer would otherwise overflow the stack).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from servers.common.errors import InvalidInput
from servers.common.textnorm import strip_invisible
from servers.common.untrusted import MAX_RAW_CHARS, UntrustedText, clean, truncate

__all__ = ["MAX_ADF_DEPTH", "MAX_ADF_NODES", "MAX_RAW_CHARS", "strip_invisible", "truncate", "untrusted"]

MAX_ADF_DEPTH = 64
MAX_ADF_NODES = 100_000


def check_adf(document: dict[str, Any]) -> None:
    """Refuse an ADF tree too deep or too large to render (walked without recursion).

    Raises:
        InvalidInput: deeper than MAX_ADF_DEPTH or more than MAX_ADF_NODES nodes.
    """
    todo: list[tuple[Any, int]] = [(document, 1)]  # (node, depth in ADF nodes; lists add no level)
    nodes = 0
    while todo:
        node, depth = todo.pop()
        nodes += 1
        if depth > MAX_ADF_DEPTH:
            raise InvalidInput(f"ticket text is nested deeper than {MAX_ADF_DEPTH} levels; it cannot be shown")
        if nodes > MAX_ADF_NODES:
            raise InvalidInput(f"ticket text has more than {MAX_ADF_NODES} document nodes; it cannot be shown")
        children: list[Any] = list(node.values()) if isinstance(node, dict) else node  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
        todo.extend((c, depth + 1 if isinstance(c, dict) else depth) for c in children if isinstance(c, dict | list))


def untrusted(raw: Any, limit: int) -> UntrustedText:
    """Convert a raw Jira text field (ADF dict, wiki string or None) into fenced, clean text.

    Raises:
        InvalidInput: the field is beyond the depth or size limits (see the module docstring).
    """
    if raw is None:
        return clean(None, limit)
    if isinstance(raw, dict):
        check_adf(raw)  # pyright: ignore[reportUnknownArgumentType]
        return clean(adf_to_markdown(raw), limit)  # pyright: ignore[reportUnknownArgumentType]
    text = str(raw)
    if len(text) > MAX_RAW_CHARS:
        raise InvalidInput(f"ticket text is longer than {MAX_RAW_CHARS} characters; it cannot be shown")
    return clean(wiki_to_markdown(text), limit)


# --- Atlassian Document Format ----------------------------------------------------------------------

_MARKS = {"strong": "**", "em": "*", "strike": "~~", "code": "`"}


def adf_to_markdown(node: dict[str, Any]) -> str:
    """Render an ADF document (or any ADF node) as Markdown."""
    return re.sub(r"\n{3,}", "\n\n", _block(node, 0)).strip()


def _children(node: dict[str, Any]) -> list[dict[str, Any]]:
    content = node.get("content")
    return [c for c in content if isinstance(c, dict)] if isinstance(content, list) else []


def _inline(node: dict[str, Any]) -> str:
    kind = node.get("type")
    attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
    assert isinstance(attrs, dict)
    if kind == "text":
        text = str(node.get("text", ""))
        href = None
        for mark in node.get("marks") or []:
            if not isinstance(mark, dict):
                continue
            mtype = mark.get("type")
            if mtype in _MARKS:
                text = f"{_MARKS[mtype]}{text}{_MARKS[mtype]}"
            elif mtype == "link":
                href = (mark.get("attrs") or {}).get("href")
        return f"[{text}]({href})" if href else text
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return "@" + str(attrs.get("text") or attrs.get("id") or "user").lstrip("@")
    if kind == "emoji":
        return str(attrs.get("text") or attrs.get("shortName") or "")
    if kind in ("inlineCard", "blockCard"):
        return str(attrs.get("url", ""))
    if kind == "status":
        return f"[{attrs.get('text', '')}]"
    if kind == "date":
        return str(attrs.get("timestamp", ""))
    return "".join(_inline(c) for c in _children(node))


def _block(node: dict[str, Any], depth: int) -> str:
    kind = node.get("type")
    attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
    assert isinstance(attrs, dict)
    kids = _children(node)
    if kind in ("doc", "panel", "expand", "nestedExpand", "layoutSection", "layoutColumn", "mediaSingle"):
        return "\n\n".join(part for c in kids if (part := _block(c, depth)))
    if kind == "paragraph":
        return "".join(_inline(c) for c in kids)
    if kind == "heading":
        level = int(attrs.get("level", 1)) if str(attrs.get("level", "1")).isdigit() else 1
        return "#" * max(1, min(level, 6)) + " " + "".join(_inline(c) for c in kids)
    if kind in ("bulletList", "orderedList"):
        lines = []
        for i, item in enumerate(kids, start=1):
            bullet = f"{i}." if kind == "orderedList" else "-"
            body = "\n".join(_block(c, depth + 1) for c in _children(item))
            first, *rest = body.split("\n") or [""]
            lines.append("  " * depth + f"{bullet} {first}")
            lines.extend(rest)
        return "\n".join(lines)
    if kind == "codeBlock":
        lang = str(attrs.get("language") or "")
        return f"```{lang}\n" + "".join(str(c.get("text", "")) for c in kids) + "\n```"
    if kind == "blockquote":
        inner = "\n\n".join(_block(c, depth) for c in kids)
        return "\n".join("> " + line for line in inner.split("\n"))
    if kind == "rule":
        return "---"
    if kind == "table":
        rows = [[_block(cell, 0).replace("\n", " ") for cell in _children(row)] for row in kids]
        if not rows:
            return ""
        width = max(len(r) for r in rows)
        out = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in rows]
        out.insert(1, "|" + " --- |" * width)
        return "\n".join(out)
    if kind == "media":
        return "[attachment]"
    return "".join(_inline(c) for c in kids) if kids else _inline(node)


# --- wiki markup (API v2, Jira Data Center) ---------------------------------------------------------

# A code block is `{code}` or `{noformat}`, with `:parameters` or not, to the next `{code}` or `{noformat}`:
# `\{(code|noformat)(?::([^}]*))?\}(.*?)\{\1\}` (re.S), matched by `_code_blocks` in one pass (as a regex, each
# unclosed tag read on to the end of the text: 200,000 characters of them took 24 s).
_OPEN = re.compile(r"\{(code|noformat)")


class _Next:
    """`text.find(needle, start)` for calls whose starts rarely go back: the text is read about once."""

    __slots__ = ("asked", "found", "needle", "text")

    def __init__(self, text: str, needle: str) -> None:
        self.text, self.needle, self.asked, self.found = text, needle, -1, -1

    def __call__(self, start: int) -> int:
        if self.asked < 0 or start < self.asked or -1 < self.found < start:
            self.found, self.asked = self.text.find(self.needle, start), start
        return self.found


def _code_blocks(text: str, block: Callable[[str, str | None, str], str]) -> str:
    """`text` with each code block replaced by `block(kind, parameters, body)`, leftmost first."""
    brace = _Next(text, "}")
    closes = {kind: _Next(text, f"{{{kind}}}") for kind in ("code", "noformat")}
    out: list[str] = []
    kept = 0
    for tag in _OPEN.finditer(text):
        if tag.start() < kept:
            continue
        kind, after = tag.group(1), tag.end()
        if text.startswith("}", after):
            parameters, body = None, after + 1
        elif text.startswith(":", after) and (end := brace(after + 1)) != -1:
            parameters, body = text[after + 1 : end], end + 1
        else:
            continue
        if (close := closes[kind](body)) == -1:
            continue
        out += (text[kept : tag.start()], block(kind, parameters, text[body:close]))
        kept = close + len(kind) + 2
    out.append(text[kept:])
    return "".join(out)


# `{{code}}` and `[text|link]`: a start that fails leaves later starts of its line to fail the same way up to a
# point; the search goes on from there (as plain `re.sub`, each start read on to the end of the line).
_INLINE_CODE = re.compile(r"\{\{(.+?)\}\}")
_LINK = re.compile(r"\[([^|\]\n]+)\|([^\]\n]+)\]")
_LINK_STOP = re.compile(r"[|\]]")


def _after_failed_link(line: str, at: int) -> int:
    """Where a link can start next in `line` (one line, no newline) when none starts at `at`."""
    stop = _LINK_STOP.search(line, at + 1)
    if stop is None:
        return len(line)
    if line[stop.start()] == "]" or stop.start() == at + 1:
        return stop.start()
    closed = line.find("]", stop.start() + 1)  # (failed with a `]` after `|`: the `]` follows at once)
    return len(line) if closed == -1 else closed


def _sub_from(
    pattern: re.Pattern[str], template: str, line: str, opening: str, resume: Callable[[str, int], int]
) -> str:
    """`pattern.sub(template, line)`, trying starts at `opening` only and, after a start that fails, at
    `resume(line, start)` on (every start before it fails too)."""
    out: list[str] = []
    kept = at = 0
    while at < len(line) and (at := line.find(opening, at)) != -1:
        match = pattern.match(line, at)
        if match is None:
            at = max(resume(line, at), at + 1)
            continue
        out += (line[kept:at], match.expand(template))
        kept = at = match.end()
    out.append(line[kept:])
    return "".join(out)


_INLINE = (
    (re.compile(r"(?<![\w*])\*(\S[^*\n]*?\S|\S)\*(?![\w*])"), r"**\1**"),
    (re.compile(r"(?<![\w_])_(\S[^_\n]*?\S|\S)_(?![\w_])"), r"*\1*"),
    (re.compile(r"(?<![\w-])-(\S[^-\n]*?\S)-(?![\w-])"), r"~~\1~~"),
)


def wiki_to_markdown(text: str) -> str:
    """Render Jira wiki markup as Markdown (headings, emphasis, code, links, lists, quotes)."""
    # Invisible and control characters go first: NUL marks stashed code blocks below, so none may remain.
    text = strip_invisible(text)
    blocks: list[str] = []

    def stash(kind: str, parameters: str | None, body: str) -> str:
        lang = (parameters or "").split("|")[0] if kind == "code" else ""
        if "=" in lang:
            lang = ""
        blocks.append(f"```{lang}\n{body.strip(chr(10))}\n```")
        return f"\x00{len(blocks) - 1}\x00"

    text = _code_blocks(text.replace("\r\n", "\n"), stash)
    text = re.sub(
        r"\{quote\}(.*?)\{quote\}",
        lambda m: "\n".join("> " + ln for ln in m.group(1).strip().split("\n")),
        text,
        flags=re.S,
    )
    lines = []
    for line in text.split("\n"):
        if m := re.match(r"^h([1-6])\.\s+(.*)$", line):
            line = "#" * int(m.group(1)) + " " + m.group(2)
        elif m := re.match(r"^bq\.\s+(.*)$", line):
            line = "> " + m.group(1)
        elif m := re.match(r"^([*#-]+)\s+(.*)$", line):
            marks = m.group(1)
            bullet = "1." if marks[-1] == "#" else "-"
            line = "  " * (len(marks) - 1) + f"{bullet} {m.group(2)}"
        elif line.strip() == "----":
            line = "---"
        line = _sub_from(_INLINE_CODE, r"`\1`", line, "{{", lambda line, _at: len(line))
        line = _sub_from(_LINK, r"[\1](\2)", line, "[", _after_failed_link)
        for pattern, repl in _INLINE:
            line = pattern.sub(repl, line)
        lines.append(line)
    out = "\n".join(lines)
    return re.sub(r"\x00(\d+)\x00", lambda m: blocks[int(m.group(1))], out)
