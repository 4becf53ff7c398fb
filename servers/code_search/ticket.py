"""Read a bug report the way an engineer does: skip the template, keep what names the code.

A GitHub issue or Jira ticket is mostly not about the code: template questions ("What version of
Go are you using?", "Steps to reproduce"), environment dumps (`go env`, `uname -a`), checklists,
HTML comments, links. `read_ticket` drops those and splits what is left into

    title     the first line, when the text has more (a ticket's title is its densest part)
    prose     the sentences a person wrote (template headings and placeholders removed)
    code      the contents of fenced or indented blocks (commands, configs, code, logs)
    logs      the message part of log lines (timestamp, level and caller prefixes removed)
    paths     file paths named in links to source files (github.com/.../blob/<rev>/a/b.go#L10)

Pure functions over a string; no I/O. `is_ticket` says whether a query is long and structured
enough to be read this way (a 600-word ticket is not a 10-word query).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from servers.code_search.markdown import heading

TICKET_MIN_WORDS = 40

_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_DETAILS = re.compile(r"<details>\s*(?:<summary>(.*?)</summary>)?(.*?)(?:</details>|$)", re.S | re.I)
_TAG = re.compile(r"</?(?:details|summary|br|p|b|i|em|strong|code|pre|sub|sup|kbd)\b[^>]*>", re.I)
_FENCE = re.compile(r"^\s*(```|~~~)")
# A heading line: `### Title` (see markdown.heading), or a bold line used as one (`**Title**:`, `__Title__`).
_BOLD_HEADING = re.compile(r"^\s*(?:\*\*([^*\n]{2,120})\*\*:?\s*|__([^_\n]{2,120})__:?\s*)$")
_CHECKBOX = re.compile(r"^\s*[-*+]\s*\[[ xX]\]")
_ENV_LINE = re.compile(r"^\s*(?:set |export )?[A-Z][A-Z0-9_]{2,}=\S*\s*$|^\s*go version go\d", re.M)
_BLOB_URL = re.compile(r"https?://(?:www\.)?github\.com/[\w.-]+/[\w.-]+/(?:blob|tree)/[^/\s]+/([^\s#?)\]]+)")
_URL = re.compile(r"<?\bhttps?://[^\s)>\]]+>?")
_MENTION = re.compile(r"(?<![\w@])@[\w-]+|(?<![\w/])#\d+\b")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
# Sections whose body is about the reporter's setup, not the code: versions, OS, environment, checklists.
_DROP_SECTION = re.compile(
    r"\b(version|versions|environment|env\b|operating system|\bos\b|platform|architecture|latest release|"
    r"check ?list|criteria|prerequisites|before (submitting|opening)|welcome|debugging information|system info|"
    r"installation|install method|uname|go env|hardware|kernel|browser|client version|server version|"
    r"code of conduct|terms|privacy|screenshots?)\b",
    re.I,
)
# Placeholder sentences that issue templates leave behind.
_BOILERPLATE = re.compile(
    r"(clear and concise description|add any other context|if applicable,? add|please (answer|provide|fill|paste|"
    r"describe|include|make sure|run|use|search|check|note)|thanks? (you )?(for|in advance)|steps to reproduce the "
    r"behaviou?r|^\s*\d+\.\s*(go to|click on|scroll down|see error)\b|what did you (do|expect|see)|what happened\??$|"
    r"expected behaviou?r:?$|actual behaviou?r:?$|to reproduce:?$|describe the bug:?$|none\.?$|n/?a\.?$)",
    re.I,
)
# A log line: optional timestamp, then a level word or a Go `file.go:123:` caller.
_LOG_PREFIX = re.compile(
    r"^\s*(?:\[?\d{4}[-/]\d\d[-/]\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?\s*"
    r"|\d{1,2}:\d\d:\d\d(?:\.\d+)?\s+|\d+\.\d+e[+-]\d+\s+|[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+"
    r"|[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d \S+ [\w.-]+(?:\[\d+\])?:\s+)+"
    r"(?:\[?(?:TRACE|DEBUG|DEBU|INFO|WARN|WARNING|WARN|ERROR|ERRO|ERR|FATAL|FATA|PANIC|CRIT|NOTICE)\]?(?:\[[^\]]*\])*"
    r"[:\s]+)?(?:[\w./-]+\.go:\d+[\]:]?\s+)?",
    re.I,
)
_LOGFMT_MSG = re.compile(r"\b(?:msg|message|error|err)=(\"(?:[^\"\\]|\\.)*\"|\S+)")
_JSON_MSG = re.compile(r"\"(?:msg|message|error|err)\"\s*:\s*\"((?:[^\"\\]|\\.){3,300})\"")
_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_LOGS = 12


@dataclass(slots=True)
class Ticket:
    """A ticket split into what a search can use; every field may be empty."""

    title: str = ""
    prose: str = ""
    code: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    dropped_sections: list[str] = field(default_factory=list)
    headings: int = 0

    @property
    def structured(self) -> bool:
        """Whether it reads like a filed report (headings, code or log blocks, template sections), not a long
        commit message: the two are ranked differently (see search.py)."""
        return bool(self.headings or self.code or self.logs or self.dropped_sections)

    @property
    def text(self) -> str:
        """Title and prose: what a reader would summarise the ticket from."""
        return "\n".join(t for t in (self.title, self.prose) if t)


def is_ticket(text: str) -> bool:
    """Whether `text` reads like a ticket (several lines, or more than TICKET_MIN_WORDS words), not a short query."""
    words = len(_WORDS.findall(text))
    return words >= TICKET_MIN_WORDS or (text.count("\n") >= 2 and words >= 12)


def _add(seq: list[str], value: str) -> None:
    if value and value not in seq:
        seq.append(value)


def log_message(line: str) -> str:
    """The message of a log line (its timestamp, level and caller prefix removed), or "" if it is not one."""
    for pattern in (_JSON_MSG, _LOGFMT_MSG):
        found = [m.group(1).strip('"') for m in pattern.finditer(line)]
        if found:
            return " ".join(found)[:300]
    prefix = _LOG_PREFIX.match(line)
    if prefix is None or prefix.end() == 0:
        return ""
    rest = line[prefix.end() :].strip()
    return rest[:300] if len(_WORDS.findall(rest)) >= 2 else ""


def _unwrap_details(text: str) -> str:
    """Keep a <details> block's body unless its summary names an environment dump."""

    def keep(match: re.Match[str]) -> str:
        summary = match.group(1) or ""
        return "" if _DROP_SECTION.search(summary) else "\n" + match.group(2) + "\n"

    return _DETAILS.sub(keep, text)


def _heading(line: str) -> str | None:
    """The title of a heading line (maybe ""), or None if the line is not one. Linear in the line."""
    atx = heading(line.lstrip())
    if atx is not None:
        return atx[1]
    bold = _BOLD_HEADING.match(line)
    return None if bold is None else next(g for g in bold.groups() if g is not None)


def read_ticket(text: str) -> Ticket:
    """Split a ticket into title, prose, code blocks, log messages and linked paths (template text dropped)."""
    ticket = Ticket()
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", " ")
    text = _unwrap_details(_COMMENT.sub("", text))
    for match in _BLOB_URL.finditer(text):
        _add(ticket.paths, match.group(1).rstrip("/."))
    text = _TAG.sub("", _IMAGE.sub("", text))
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _MENTION.sub("", _URL.sub(" ", text))
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and len(lines) > first + 1 and _heading(lines[first]) is None:
        ticket.title = lines[first].strip()[:300]
        lines = lines[first + 1 :]
    prose: list[str] = []
    block: list[str] | None = None
    dropping = False
    for line in lines:
        if _FENCE.match(line):
            if block is None:
                block = []
            else:
                if not dropping and "\n".join(block).strip():
                    ticket.code.append("\n".join(block))
                block = None
            continue
        if block is not None:
            block.append(line)
            continue
        title = _heading(line)
        if title is not None:
            ticket.headings += 1
            dropping = _DROP_SECTION.search(title) is not None
            if dropping:
                ticket.dropped_sections.append(title.strip()[:120])
            continue
        if dropping or _CHECKBOX.match(line) or _ENV_LINE.match(line):
            continue
        if line.startswith(("    ", "\t")) and line.strip():  # an indented code block
            ticket.code.append(line.strip())
            continue
        stripped = line.strip().lstrip(">").strip()
        if not stripped or _BOILERPLATE.search(stripped):
            continue
        message = log_message(stripped)
        if message:
            _add(ticket.logs, message)
            continue
        prose.append(stripped)
    if block is not None and not dropping and "\n".join(block).strip():  # an unclosed fence
        ticket.code.append("\n".join(block))
    for code in ticket.code:
        for line in code.split("\n"):
            message = log_message(line)
            if message and len(ticket.logs) < MAX_LOGS:
                _add(ticket.logs, message)
    ticket.logs = ticket.logs[:MAX_LOGS]
    ticket.prose = "\n".join(prose)
    return ticket
