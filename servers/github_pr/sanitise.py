"""Neutralise the Markdown that github-pr publishes under the bot's identity.

Titles, bodies and comments reach github-pr from a model and, through it, from whoever wrote the
ticket. Published as they are, they act with the bot's voice: an `@user` or `@org/team` notifies
people, an image (`![x](https://host/p.png?d=…)`, `<img src=…>`) is fetched by GitHub's image proxy
the moment the page is viewed, so a URL can carry repository text to a host someone watches, an
HTML comment can forge a marker the server writes, raw HTML (`<details>`, `<a>`) can fake an
approval, and a `javascript:` link waits for a click. `sanitise_markdown` makes all of that inert
and keeps everything else as written:

- mentions: a zero-width space (U+200B) goes between `@` and the name. GitHub's mention filter needs
  an ASCII letter or digit right after `@`, so nobody is notified, while the text still reads `@name`
  and the renderer keeps the character (Dependabot quotes release notes the same way). Backticks were
  the alternative, but a backtick next to an unmatched one in the text pairs with it instead, and a
  mention can then end up outside the code span. An entity that spells `@` (`&#64;`) is turned into a
  plain `@` first, so it is treated the same way (as are entities spelling a letter, or a `#` before a digit, which
  could spell a closing keyword or its reference). The exception is `mentionable`: the people a
  hand-off is addressed to (the service passes the policy set's escalation owners), whose mention is
  how they learn of a hand-off posted as an issue comment;
- HTML: comments are removed (their removal shows nothing missing: they never render); every other
  tag, inline or a block, is escaped (`<` becomes `&lt;`), so it shows as the text it is;
- images: kept only when their URL starts with one of `image_prefixes` (`host/path/`, https only;
  by default the repository's own pages and GitHub's user-content hosts, see the service), otherwise
  replaced by `[image removed: HOST]`;
- links and autolinks: http, https and mailto (and relative ones) stay; any other scheme loses the
  link and keeps its text, followed by `(link removed: SCHEME)`;
- link reference definitions and footnotes, which render nowhere or somewhere this parser does not
  place them, are shown as escaped text;
- closing keywords (`fixes #12`, `Closes owner/name#5`, `resolved: <issue URL>`; GitHub's list, any
  case): a zero-width space goes after the keyword, so merging the pull request closes nothing it
  names (the reference still links). The exception is `closes`: the pull request's own issue, which
  the agent's description says it resolves;
- code spans, fenced and indented code blocks are left byte for byte as they are: nothing in code
  notifies, renders or is fetched, so a quoted diff or log stays readable;
- bidirectional control characters (`servers.common.diffs.BIDI_CONTROL`: overrides, embeddings,
  isolates, marks), in code too, become U+FFFD: raw, they make a line display in another order than
  it is written ("Trojan Source"), and the replacement shows where one was.

The Markdown is read by markdown-it-py (CommonMark plus GFM tables and strikethrough, the dialect
GitHub renders), with its inline rules wrapped to record where each construct starts and ends; the
edits are made on the source text, so what is not neutralised keeps its exact spelling. One pass
can expose a construct (an escaped HTML block becomes a paragraph whose mention is then visible;
`@<!-- -->name` becomes `@name`), so passes repeat until the text no longer changes: the result is
a fixed point, and sanitising it again changes nothing. Text the parser cannot map back to its source
with certainty (a tab partly consumed as indentation, nesting deeper than the parser follows), or that
does not settle within a few passes, is published whole inside a fenced code block with a line saying
so: nothing in it renders, and nothing is lost.

`sanitise_title` applies only the mention and closing-keyword rules (GitHub renders no HTML, image or link in a title)
and makes the title one line. Each result carries counts of what was neutralised, never the text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from servers.common.diffs import BIDI_CONTROL

ZWSP = "\u200b"
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
MAX_PASSES = 6
# Deeper than anything a person writes; markdown-it silently stops at its nesting limit, where
# GitHub's renderer would go on, so text that reaches it is published fenced instead.
_MAX_NESTING = 64
_NESTING_FALLBACK = 48
_MAX_BRACKET_DEPTH = 32

# Not after a letter or digit (an e-mail address). After `_` too: in `_@org/team_` the `_` is emphasis, and the text
# GitHub's mention filter reads starts at `@`; `foo_@bar` gains a harmless zero-width space.
_MENTION = re.compile(r"(?<![0-9A-Za-z])@(?=[0-9A-Za-z])")
# A closing keyword (GitHub's list, any case) and the issue it would close when the pull request, or a commit whose
# message holds it, reaches the default branch: `#12`, `owner/name#12` or an issue URL, after `:`, spaces or emphasis.
# Not after a letter or digit (`prefix` is no keyword); after `_`, `.` or `-` it is. Names are as long as GitHub's
# at most (owner 39, repository 100, host 253), so what a keyword looks ahead at is bounded and the scan linear.
_CLOSING = re.compile(
    r"(?<![0-9A-Za-z])(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)(?=_{0,3}[\s:*~]*(?:"
    r"(?:(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})/(?P<repo>[\w.-]{1,100}))?#(?P<number>[0-9]+)"
    r"|https?://[^\s/]{1,253}/(?P<url_owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})/(?P<url_repo>[\w.-]{1,100})"
    r"/(?:issues|pull)/(?P<url_number>[0-9]+)"
    r"))",
    re.IGNORECASE,
)
# the name a mention at `@` would notify: a login, or org/team
_MENTIONED = re.compile(r"[0-9A-Za-z](?:[0-9A-Za-z-]*[0-9A-Za-z])?(?:/[0-9A-Za-z][0-9A-Za-z._-]*)?")
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31}):")
_HOST_CHARS = re.compile(r"[^a-z0-9.-]")
_MARKERS_ONLY = re.compile(r"[\s>]*(?:[-*+]|\d{1,9}[.)])?\s*")


@dataclass(frozen=True, slots=True)
class Sanitised:
    """The text to publish and how many constructs of each kind were neutralised in it."""

    text: str
    counts: Mapping[str, int] = field(default_factory=dict[str, int])

    @property
    def changed(self) -> bool:
        return any(self.counts.values())


class _Unmappable(Exception):
    """The parser's view of a block could not be tied back to the source text."""


@dataclass(slots=True)
class _Span:
    kind: str
    start: int
    end: int
    url: str = ""
    label_end: int = -1
    entity: str = ""


def _recording(name: str, rule: Callable[[StateInline, bool], bool]) -> Callable[[StateInline, bool], bool]:
    """Wrap an inline rule so that, in the text being sanitised, it records what it matched and where."""

    def wrapped(state: StateInline, silent: bool) -> bool:
        start, before = state.pos, len(state.tokens)
        label_end = -1
        opener = "[" if name == "link" else "!["
        if (
            not silent
            and name in ("link", "image")
            and state.src.startswith(opener, start)
            and state.env.get("goresolve_root") is state.src
        ):
            label_end = state.md.helpers.parseLinkLabel(state, start + len(opener) - 1, name == "link")
        ok = rule(state, silent)
        env = state.env
        if not ok or silent or env.get("goresolve_root") is not state.src:
            return ok
        spans: list[_Span] = env["goresolve_spans"]
        pushed = state.tokens[before:]
        if name == "backticks":
            if any(t.type == "code_inline" for t in pushed):
                spans.append(_Span("code", start, state.pos))
        elif name == "image":
            src = next((t.attrGet("src") for t in pushed if t.type == "image"), None)
            spans.append(_Span("image", start, state.pos, url=str(src or "")))
        elif name == "link":
            href = next((t.attrGet("href") for t in pushed if t.type == "link_open"), None)
            spans.append(_Span("link", start, state.pos, url=str(href or ""), label_end=label_end))
        elif name == "autolink":
            href = next((t.attrGet("href") for t in pushed if t.type == "link_open"), None)
            spans.append(_Span("autolink", start, state.pos, url=str(href or "")))
        elif name == "html_inline":
            spans.append(_Span("html", start, state.pos))
        elif name == "entity":
            decoded = "".join(t.content for t in pushed if t.type == "text_special")
            spans.append(_Span("entity", start, state.pos, entity=decoded))
        return ok

    return wrapped


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "maxNesting": _MAX_NESTING}).enable(["table", "strikethrough"])
    # markdown-it drops links it deems unsafe (javascript:, data:) to plain text; GitHub's renderer
    # does not, so every destination is parsed here and judged below.
    md.validateLink = lambda _url: True  # pyright: ignore[reportAttributeAccessIssue]
    md.disable(["inline", "text_join"])  # the inline pass runs per block, with recording, below
    for name in ("backticks", "image", "link", "autolink", "html_inline", "entity"):
        rules: Any = md.inline.ruler
        rules.at(name, _recording(name, rules.__rules__[rules.__find__(name)].fn))
    return md


_MD = _parser()


def _host_label(url: str) -> str:
    """A printable name for where `url` points: its host, else its scheme, else 'relative URL'."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "unparsable URL"
    host = _HOST_CHARS.sub("", host.lower())[:100]
    if host:
        return host
    scheme = _SCHEME.match(url)
    return f"{scheme.group(1).lower()} URL" if scheme else "relative URL"


def image_allowed(url: str, prefixes: tuple[str, ...]) -> bool:
    """Whether an image at `url` may stay: https, no credentials or port, no dot segments, and
    `host/path` starting with one of `prefixes` (each `host/` or `host/path/`)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return False
    if parts.scheme.lower() != "https" or not host or port is not None or parts.username or parts.password:
        return False
    path = parts.path or "/"
    if any(seg in (".", "..") for seg in unquote(path).split("/")) or "\\" in unquote(path):
        return False
    where = host.lower() + path
    return any(where.startswith(p) for p in prefixes)


def _scheme(url: str) -> str | None:
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else None


@dataclass(slots=True)
class _Pass:
    text: str
    image_prefixes: tuple[str, ...]
    mentionable: frozenset[str] = frozenset()
    closes: frozenset[str] = frozenset()
    counts: Counter[str] = field(default_factory=Counter[str])
    edits: list[tuple[int, int, str]] = field(default_factory=list[tuple[int, int, str]])

    def run(self) -> str:
        env: dict[str, Any] = {}
        tokens = _MD.parse(self.text, env)
        if any(t.level >= _NESTING_FALLBACK for t in tokens):
            raise _Unmappable("nesting")
        starts = [0]
        for m in re.finditer("\n", self.text):
            starts.append(m.end())
        lines = self.text.split("\n")
        covered = [False] * len(lines)
        parents: list[Token] = []
        for tok in tokens:
            if tok.map is not None and tok.type in (
                "paragraph_open",
                "heading_open",
                "fence",
                "code_block",
                "html_block",
                "hr",
                "table_open",
            ):
                for n in range(tok.map[0], tok.map[1]):
                    covered[n] = True
            if tok.type == "html_block" and tok.map is not None:
                self._html_block(starts, lines, tok.map[0], tok.map[1])
            elif tok.type == "inline" and tok.map is not None:
                cell = bool(parents) and parents[-1].type in ("th_open", "td_open")
                self._inline(env, tok, starts, lines, cell)
            if tok.nesting == 1:
                parents.append(tok)
            elif tok.nesting == -1 and parents:
                parents.pop()
        for n, line in enumerate(lines):
            if not covered[n] and not _MARKERS_ONLY.fullmatch(line):
                self._escape_line(starts[n], line)
        return self._apply()

    def _apply(self) -> str:
        out: list[str] = []
        at = 0
        for start, end, new in sorted(self.edits, key=lambda e: (e[0], e[1])):
            if start < at:
                raise _Unmappable("overlapping edits")
            out.append(self.text[at:start])
            out.append(new)
            at = end
        out.append(self.text[at:])
        return "".join(out)

    def _escape_line(self, offset: int, line: str) -> None:
        """A line no block claims (a link reference definition, a footnote): shown as text."""
        table = {"[": "\\[", "]": "\\]", "<": "&lt;", "&": "&amp;"}
        self.counts["definitions"] += 1
        for i, ch in enumerate(line):
            if ch in table:
                self.edits.append((offset + i, offset + i + 1, table[ch]))
        for m in _MENTION.finditer(line):
            if not _may_notify(line, m.end(), self.mentionable):
                self.counts["mentions"] += 1
                self.edits.append((offset + m.start(), offset + m.start() + 1, "@" + ZWSP))
        for m in _CLOSING.finditer(line):
            if _closed(m) not in self.closes:
                self.counts["closing_keywords"] += 1
                self.edits.append((offset + m.end() - 1, offset + m.end(), line[m.end() - 1] + ZWSP))

    def _html_block(self, starts: list[int], lines: list[str], first: int, last: int) -> None:
        begin = starts[first]
        end = starts[last - 1] + len(lines[last - 1])
        region = self.text[begin:end]
        for m in _COMMENT.finditer(region):
            self.counts["html_comments"] += 1
            self.edits.append((begin + m.start(), begin + m.end(), ""))
        taken = [(m.start(), m.end()) for m in _COMMENT.finditer(region)]
        for i, ch in enumerate(region):
            if ch == "<" and not any(a <= i < b for a, b in taken):
                self.counts["html_tags"] += 1
                self.edits.append((begin + i, begin + i + 1, "&lt;"))

    def _inline(self, env: dict[str, Any], tok: Token, starts: list[int], lines: list[str], cell: bool) -> None:
        content = tok.content
        if not content:
            return
        if _bracket_depth(content) > _MAX_BRACKET_DEPTH:
            raise _Unmappable("bracket nesting")
        where = _align(content, starts, lines, tok.map[0] if tok.map else 0, cell, env)
        spans: list[_Span] = []
        env["goresolve_root"] = content
        env["goresolve_spans"] = spans
        try:
            _MD.inline.parse(content, _MD, env, [])
        finally:
            env.pop("goresolve_root", None)
            env.pop("goresolve_spans", None)
        quiet = [False] * len(content)  # where mentions are not looked for

        def hush(a: int, b: int) -> None:
            for i in range(a, b):
                quiet[i] = True

        def edit(a: int, b: int, new: str) -> None:
            # a and b are content offsets; b is exclusive
            src_a = where[a]
            src_b = where[b - 1] + 1 if b > a else src_a
            self.edits.append((src_a, src_b, new))

        for s in spans:
            if s.kind == "code":
                hush(s.start, s.end)
            elif s.kind == "image":
                hush(s.start, s.end)
                if not image_allowed(s.url, self.image_prefixes):
                    self.counts["images"] += 1
                    edit(s.start, s.end, f"\\[image removed: {_host_label(s.url)}\\]")
            elif s.kind == "link":
                if s.label_end < 0:
                    raise _Unmappable("link label")
                hush(s.label_end, s.end)
                scheme = _scheme(s.url)
                if scheme is not None and scheme not in SAFE_SCHEMES:
                    self.counts["links"] += 1
                    edit(s.start, s.start + 1, "")
                    edit(s.label_end, s.end, f" (link removed: {scheme})")
            elif s.kind == "autolink":
                hush(s.start, s.end)
                scheme = _scheme(s.url)
                if scheme is None or scheme not in SAFE_SCHEMES:
                    self.counts["links"] += 1
                    edit(s.start, s.start + 1, "&lt;")
            elif s.kind == "html":
                hush(s.start, s.end)
                if content.startswith("<!--", s.start):
                    self.counts["html_comments"] += 1
                    edit(s.start, s.end, "")
                else:
                    self.counts["html_tags"] += 1
                    edit(s.start, s.start + 1, "&lt;")
            elif s.kind == "entity":
                hush(s.start, s.end)
                if _spells_reference(s.entity, content[s.end : s.end + 1]):
                    edit(s.start, s.end, s.entity)
        for m in _MENTION.finditer(content):
            if not quiet[m.start()] and not _may_notify(content, m.end(), self.mentionable):
                self.counts["mentions"] += 1
                edit(m.start(), m.start() + 1, "@" + ZWSP)
        for m in _CLOSING.finditer(content):
            if not quiet[m.start()] and _closed(m) not in self.closes:
                self.counts["closing_keywords"] += 1
                edit(m.end() - 1, m.end(), content[m.end() - 1] + ZWSP)


def _spells_reference(decoded: str, after: str) -> bool:
    """Whether an entity that decodes to `decoded`, followed by `after`, spells part of a mention or a closing keyword's
    reference (`&#64;name`, `&#70;ixes`, `Fixes &#35;5`): it is then written as that character, so the rules above see
    what GitHub reads. Only characters that cannot start Markdown structure qualify (a letter, `@`, and `#` before a
    digit, which is no heading); `&#49;. ` and `&#35; ` stay as written."""
    if decoded == "@" or (len(decoded) == 1 and decoded.isascii() and decoded.isalpha()):
        return True
    return decoded == "#" and after.isdigit()


def _closed(m: re.Match[str]) -> str:
    """The issue a `_CLOSING` match would close, as `#12` or `owner/name#12` (lower case)."""
    if m.group("number") is not None:
        number = int(m.group("number"))
        return f"{m.group('owner')}/{m.group('repo')}#{number}".lower() if m.group("owner") else f"#{number}"
    return f"{m.group('url_owner')}/{m.group('url_repo')}#{int(m.group('url_number'))}".lower()


def _may_notify(text: str, at: int, mentionable: frozenset[str]) -> bool:
    """Whether the mention whose name starts at `at` names one of `mentionable` (lower-case logins or
    org/team), as a whole name: `@owner-x` is not `@owner`."""
    if not mentionable:
        return False
    name = _MENTIONED.match(text, at)
    return name is not None and name.group().lower() in mentionable


def _align(content: str, starts: list[int], lines: list[str], first: int, cell: bool, env: dict[str, Any]) -> list[int]:
    """The source offset of each character of a block's inline `content`.

    A paragraph or heading's content is its source lines with container markers and indentation cut
    from the left and whitespace (or a heading's closing `#`s) from the right; each content line is
    therefore found as the rightmost occurrence in its source line. A table cell's content is the cell
    with `\\|` unescaped; it is looked for left to right along the row.

    Raises:
        _Unmappable: a line is not found as such (a tab partly consumed as indentation).
    """
    where: list[int] = []
    if cell:
        row = first
        cursor: dict[int, int] = env.setdefault("goresolve_row_cursor", {})
        at = cursor.get(row, 0)
        line = lines[row]
        source = content.replace("|", "\\|")
        found = line.find(source, at)
        if found < 0:
            raise _Unmappable("table cell")
        cursor[row] = found + len(source)
        i = found
        for ch in content:
            if ch == "|":
                i += 1  # the backslash of `\|`
            where.append(starts[row] + i)
            i += 1
        return where
    for n, piece in enumerate(content.split("\n")):
        row = first + n
        if row >= len(lines):
            raise _Unmappable("lines")
        at = lines[row].rfind(piece)
        if at >= 0:
            where.extend(starts[row] + at + i for i in range(len(piece)))
        else:
            # A tab partly consumed as indentation comes back as spaces: the rest of the line is
            # found as it is, and that leading whitespace (never the start of an edit) maps to it.
            rest = piece.lstrip(" \t")
            at = lines[row].rfind(rest) if rest else -1
            if at < 0:
                raise _Unmappable("line")
            lead = len(piece) - len(rest)
            where.extend([starts[row] + at] * lead)
            where.extend(starts[row] + at + i for i in range(len(rest)))
            at -= lead
        where.append(starts[row] + at + len(piece))  # the newline after it
    return where[: len(content)]


def _bracket_depth(text: str) -> int:
    """How deeply unescaped `[` nest in `text` (markdown-it stops following links past its limit)."""
    depth = deepest = 0
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == "]" and depth:
            depth -= 1
    return deepest


def _normalise(text: str) -> str:
    # markdown-it reads CR LF and CR as LF and NUL as U+FFFD; doing it first keeps offsets aligned. A bidirectional
    # control becomes U+FFFD too (see the module docstring), one character for one.
    text = BIDI_CONTROL.sub("\ufffd", text)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


def _fenced(text: str, counts: Counter[str]) -> Sanitised:
    longest = max((len(m.group()) for m in re.finditer("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    counts["fenced"] += 1
    note = "(goresolve published this text as code: its Markdown could not be checked.)"
    return Sanitised(f"{note}\n\n{fence}text\n{text}\n{fence}\n", dict(counts))


def sanitise_markdown(
    text: str,
    image_prefixes: tuple[str, ...] = (),
    mentionable: frozenset[str] = frozenset(),
    closes: frozenset[str] = frozenset(),
) -> Sanitised:
    """`text` with mentions, HTML, foreign images, unsafe links and closing keywords neutralised (see the module
    docstring). A mention of one of `mentionable` (lower-case logins or org/team: the people a hand-off is for) is
    left to notify, and a closing keyword naming one of `closes` (lower case `#12` or `owner/name#12`: the pull
    request's own issue) to close it.

    Never raises for any input: what cannot be checked is published fenced as code."""
    counts: Counter[str] = Counter()
    if bidi := len(BIDI_CONTROL.findall(text)):
        counts["bidi_controls"] = bidi
    current = _normalise(text)
    for _ in range(MAX_PASSES):
        step = _Pass(current, image_prefixes, mentionable, closes)
        try:
            new = step.run()
        except (_Unmappable, RecursionError):
            return _fenced(_normalise(text), counts)
        if new == current:
            return Sanitised(current, {k: v for k, v in counts.items() if v})
        counts.update(step.counts)
        current = new
    return _fenced(_normalise(text), counts)


def sanitise_title(title: str, closes: frozenset[str] = frozenset()) -> Sanitised:
    """One line (whitespace runs, line breaks included, become one space; other control characters
    go) with every mention, and every closing keyword but those naming one of `closes`, outside a code
    span neutralised."""
    counts: Counter[str] = Counter()
    line = " ".join(re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", "", BIDI_CONTROL.sub("", title)).split())
    env: dict[str, Any] = {}
    spans: list[_Span] = []
    env["goresolve_root"] = line
    env["goresolve_spans"] = spans
    _MD.inline.parse(line, _MD, env, [])
    quiet = [False] * len(line)
    for s in spans:
        if s.kind == "code":
            for i in range(s.start, s.end):
                quiet[i] = True
    inserts: list[int] = []  # a zero-width space goes after each
    for m in _MENTION.finditer(line):
        if not quiet[m.start()]:
            counts["mentions"] += 1
            inserts.append(m.end())
    for m in _CLOSING.finditer(line):
        if not quiet[m.start()] and _closed(m) not in closes:
            counts["closing_keywords"] += 1
            inserts.append(m.end())
    out: list[str] = []
    at = 0
    for end in sorted(inserts):
        out.append(line[at:end] + ZWSP)
        at = end
    out.append(line[at:])
    return Sanitised("".join(out), {k: v for k, v in counts.items() if v})


__all__ = ["Sanitised", "image_allowed", "sanitise_markdown", "sanitise_title"]
