"""Read a query the way an engineer reads a ticket: pull out what names code.

From free text (a ticket title and body, an error message, a Go stack trace) this extracts
identifiers (`parseHTTPHeader`, `mux.Router`, `Route.Match`, `new_conn`), Go file paths
(`router/route.go`, `/home/ci/x/y.go:123`), package names, quoted error strings and `panic:`
messages, and the frames of a Go traceback. Exact matches on these weigh more than words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from servers.code_search.model import code_text, split_identifier
from servers.code_search.ticket import Ticket, is_ticket, read_ticket

MAX_QUERY_CHARS = 10_000
MAX_FTS_WORDS = 160

# A frame's leading space is `[^\S\n]*`, not `\s*`: under MULTILINE `^\s*` tried at every line start of a run
# of blank lines runs to its end, quadratic in the run (10,000 newlines after `panic: x`: 7 s).
_FRAME_FUNC = re.compile(
    r"^[^\S\n]*(?:created by )?([\w.\-/]+?)\.(?:\(\*?(\w+)\)\.)?(\w+)\((?:[^()]*)\)?", re.MULTILINE
)
_FRAME_FILE = re.compile(r"^([^\S\n]*)(\S+?\.go):(\d+)", re.MULTILINE)
_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.go)(?::(\d+))?\b")
_DOTTED = re.compile(r"\b([A-Za-z_]\w*)\.(\(\*?\w+\)\.)?([A-Za-z_]\w*)\b", re.ASCII)
_WORD = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_CALL = re.compile(r"\b([A-Za-z_]\w*)\(", re.ASCII)  # ASCII: "A²(" is not a call of an identifier
_QUOTED = re.compile(r"\"([^\"\n]{3,200})\"|`([^`\n]{3,200})`|'([^'\n]{3,200})'")
_PANIC = re.compile(r"^panic: (.+)$", re.MULTILINE)
_CLOSURE = re.compile(r"func\d+")
_GOROUTINE = re.compile(r"^goroutine \d+ \[[^\]]+\]:\s*$", re.MULTILINE)
_STDLIB = frozenset({"runtime", "testing", "main", "reflect", "sync", "net", "http", "os", "fmt", "errors", "io"})
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "for",
        "on",
        "and",
        "or",
        "is",
        "are",
        "be",
        "by",
        "it",
        "its",
        "this",
        "that",
        "with",
        "as",
        "at",
        "from",
        "if",
        "not",
        "no",
        "into",
        "when",
        "which",
        "will",
        "can",
        "may",
        "was",
        "were",
        "has",
        "have",
        "do",
        "does",
        "should",
        "would",
        "could",
        "than",
        "then",
        "there",
        "these",
        "those",
        "such",
        "so",
        "but",
        "also",
        "we",
        "you",
        "i",
        "our",
        "your",
        "their",
        "them",
        "they",
        "he",
        "she",
        "his",
        "her",
        "been",
        "being",
        "about",
        "after",
        "before",
        "over",
        "under",
        "while",
    ]
)
# Words that make a query read like a bug report (a ticket, a fix's commit message), not a description.
_BUG_REPORT = re.compile(
    r"\b(fix(e[sd]|ing)?|bugs?|panic(s|ked|king)?|crash(es|ed|ing)?|races?|leaks?|leaking|deadlocks?|hangs?|"
    r"nil pointer|segfault|wrong|incorrect(ly)?|broken|regression|fails?|failed|failing|failure|unexpected(ly)?)\b",
    re.IGNORECASE,
)
_COMMON = frozenset(
    {"go", "func", "nil", "error", "string", "int", "bool", "byte", "true", "false", "err", "ok", "main"}
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a Go traceback: package path, receiver type (or ""), function, file, line."""

    package: str
    receiver: str
    function: str
    path: str = ""
    line: int = 0


@dataclass(slots=True)
class ParsedQuery:
    """A query with what names code pulled out of it."""

    text: str
    identifiers: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    ticket: Ticket | None = None  # set when the query is long enough to be read as a ticket
    logs: list[str] = field(default_factory=list)

    @property
    def prose(self) -> str:
        """What a person wrote: the ticket's title and prose (template, dumps and code left out), or the text."""
        return self.ticket.text if self.ticket is not None and self.ticket.text.strip() else self.text

    @property
    def fts_text(self) -> str:
        """Words for the full-text side: the code-aware form of the prose plus error strings and log messages,
        without English stop words (measured: full-text MRR@10 0.29 -> 0.43 on doc-comment queries); a long
        ticket's words are kept once each, at most MAX_FTS_WORDS of them."""
        words = [w for w in code_text(" ".join([self.prose, *self.errors, *self.logs])).split() if w not in _STOP]
        if self.ticket is not None:
            words = list(dict.fromkeys(words))[:MAX_FTS_WORDS]
        return " ".join(words)

    @property
    def report(self) -> bool:
        """Whether the query is a filed report (a ticket with headings, code, logs or template sections)."""
        return self.ticket is not None and self.ticket.structured

    @property
    def title_text(self) -> str:
        """The code-aware words of a ticket's title ("" for a plain query or an untitled ticket)."""
        if self.ticket is None:
            return ""
        return " ".join(w for w in code_text(self.ticket.title).split() if w not in _STOP)

    @property
    def bug_report(self) -> bool:
        """Whether the query reads like a bug report (fix, bug, panic, crash, race, leak, wrong, fails, ...)."""
        return bool(self.frames) or _BUG_REPORT.search(self.text) is not None


def _looks_like_code(word: str) -> bool:
    if word.lower() in _COMMON or len(word) < 3:
        return False
    if "_" in word.strip("_"):
        return True
    return len(split_identifier(word)) > 1


def _add(seq: list[str], value: str) -> None:
    if value and value not in seq:
        seq.append(value)


def _value_receiver(pkg_path: str, func: str) -> tuple[str, str, str]:
    """Split a frame's `pkg.Type.method` (a value receiver) and `pkg.Func.func1` (a closure: its function).

    The frame pattern leaves them in the package part: `.../hugolib.configLoader` + `applyDeps`.
    """
    head, slash, last = pkg_path.rpartition("/")
    package, *names = last.split(".")
    names = [n for n in [*names, func] if not _CLOSURE.fullmatch(n)]
    if not names:
        return pkg_path, "", func
    receiver = names[-2] if len(names) >= 2 else ""
    return f"{head}{slash}{package}", receiver, names[-1]


def _frame_files(text: str) -> list[tuple[str, str]]:
    r"""The (path, line) of each `\tfile.go:123` line of a traceback, in linear time.

    What `^\s+(\S+?\.go):(\d+)` under MULTILINE finds (that pattern is quadratic in a run of blank lines):
    an indented line, or one at column 0 whose previous line is blank (the `\s+` spanned its newline).
    """
    out: list[tuple[str, str]] = []
    for match in _FRAME_FILE.finditer(text):
        start = match.start()
        column_0 = not match.group(1)
        if column_0 and (start == 0 or text[text.rfind("\n", 0, start - 1) + 1 : start - 1].strip()):
            continue  # at column 0 with no blank line above: not what `^\s+` finds
        out.append((match.group(2), match.group(3)))
    return out


def parse_query(text: str) -> ParsedQuery:
    """Extract identifiers, paths, packages, error strings and traceback frames from `text`."""
    text = text.replace("\0", " ")[:MAX_QUERY_CHARS]
    parsed = ParsedQuery(text)
    source = text
    if is_ticket(text):
        # Names are read from what is left once the template, environment dumps and links are gone.
        parsed.ticket = read_ticket(text)
        parsed.logs = list(parsed.ticket.logs)
        source = "\n".join([parsed.ticket.text, *parsed.ticket.code, *parsed.ticket.logs])
        for path in parsed.ticket.paths:
            _add(parsed.paths, path)
    if _GOROUTINE.search(text) or _PANIC.search(text):
        files = _frame_files(text)
        for i, match in enumerate(_FRAME_FUNC.finditer(text)):
            pkg_path, receiver, func = match.group(1), match.group(2) or "", match.group(3)
            if not receiver:
                pkg_path, receiver, func = _value_receiver(pkg_path, func)
            if "/" not in pkg_path and pkg_path.split(".")[0] in _STDLIB and "." not in pkg_path:
                continue
            path, line = files[i] if i < len(files) else ("", "0")
            parsed.frames.append(Frame(pkg_path, receiver, func, path, int(line)))
    for frame in parsed.frames:
        if frame.package.split("/")[0] in _STDLIB:
            continue
        _add(parsed.identifiers, frame.function)
        _add(parsed.identifiers, frame.receiver)
        _add(parsed.packages, frame.package.rsplit("/", 1)[-1])
    for message in _PANIC.findall(text):
        _add(parsed.errors, message.strip())
    for groups in _QUOTED.findall(source):
        _add(parsed.errors, next(g for g in groups if g))
    for path, _line in _PATH.findall(source):
        _add(parsed.paths, path.lstrip("./"))
    for match in _DOTTED.finditer(source):
        left, right = match.group(1), match.group(3)
        if right in ("go", "md", "com", "org", "io"):
            continue
        if left[0].islower() and not _looks_like_code(left):
            _add(parsed.packages, left)
        _add(parsed.identifiers, right)
        if _looks_like_code(left) or left[0].isupper():
            _add(parsed.identifiers, left)
    for name in _CALL.findall(source):
        if name.lower() not in _COMMON and len(name) > 2:
            _add(parsed.identifiers, name)
    for word in _WORD.findall(source):
        if _looks_like_code(word):
            _add(parsed.identifiers, word)
    return parsed
