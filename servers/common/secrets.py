"""The publication scanner: credentials in text a bot is about to publish.

The credential shapes are the one catalogue in `credentials` (detect-secrets' rules plus our own),
which `servers.common.logging.Redactor` also removes from log lines and error messages.

`scan` and `scan_patch` look for credentials in text a bot is about to publish (pull request
titles, bodies, labels, comments, the lines a patch adds). A pull request is public to everyone who
can read the repository, and a model may paste whatever it saw. Text is matched after
normalisation, in up to three views of each line, so the usual disguises do not help:

- NFKC, invisible characters removed, dashes folded (`textnorm.for_scanning`): a zero-width space
  inside a token, fullwidth PEM dashes;
- the same with Markdown/HTML markup removed: a token split across backticks or emphasis, or hidden by a
  backslash escape (`ghp\\_…`);
- that with HTML character references decoded (`g&#104;p_…`, `ghp&#95;…`), as GitHub renders them.

Patterns are not anchored on word boundaries, so a prefix (`xAKIA…`) does not hide a key. Findings
name the kind and place, never the matched text, so a refusal cannot leak the secret it found.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from credentials import RULES, matches

# Markup a writer can put inside a token without changing how it reads: code spans, emphasis, HTML tags
# and comments, backslash escapes (CommonMark escapes any ASCII punctuation, `_` included: `ghp\_…` renders as
# `ghp_…`). Removed as `_MARKUP.sub("", line)` would (see `_unmarked`).
_MARKUP = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>\n]{0,200}>|[`*~]|\\(?=[!-/:-@\[-`{-~])")
_COMMENT = re.compile(r"<!--.*?-->")
_NOT_COMMENT = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>|[`*~]|\\(?=[!-/:-@\[-`{-~])")  # _MARKUP's other branches


def _unmarked(text: str) -> str:
    """`_MARKUP.sub("", text)` in linear time. As one regex, a `<!--` with no `-->` after it on its line is read
    on to the line's end, and so is every later one (`<!--` 10,000 times: 1.7 s). No match spans a newline."""
    return "\n".join(_unmarked_line(line) for line in text.split("\n"))


def _unmarked_line(line: str) -> str:
    # A comment that starts at or before `last` ends at a `-->` (the first after it); none after `last` does, so
    # those starts are not tried. Elsewhere `_MARKUP` matches where `_NOT_COMMENT` does: a match at a position does
    # not depend on where the search began, so the next one of each kind is kept until it is passed.
    last = line.rfind("-->") - 4
    out: list[str] = []
    kept = 0
    other = _NOT_COMMENT.search(line)
    comment = line.find("<!--")
    while True:
        if comment > last:
            comment = -1
        if comment != -1 and (other is None or comment <= other.start()):
            found = _COMMENT.match(line, comment)
            start, end = comment, found.end() if found is not None else len(line)  # (always found)
        elif other is not None:
            start, end = other.span()
        else:
            break
        out.append(line[kept:start])
        kept = end
        if other is not None and other.start() < end:
            other = _NOT_COMMENT.search(line, end)
        if comment != -1 and comment < end:
            comment = line.find("<!--", end)
    out.append(line[kept:])
    return "".join(out)


@dataclass(frozen=True, slots=True)
class SecretFinding:
    """One credential-shaped match: which kind, in which field, on which 1-based line."""

    kind: str
    field: str
    line: int


def _views(line: str) -> set[str]:
    """The line as written, without markup, and (when it has a `&`) without markup and with HTML character
    references decoded as GitHub renders them (`g&#104;p_`, `ghp&#95;`), normalised again since a reference can
    name an invisible character. Equal views are one view: each distinct text is scanned once."""
    unmarked = _unmarked(line)
    if "&" not in unmarked:
        return {line, unmarked}
    from servers.common.textnorm import for_scanning

    return {line, unmarked, for_scanning(html.unescape(unmarked))}


def _kinds_in(line: str) -> set[str]:
    found: set[str] = set()
    views = _views(line)
    for rule in RULES:
        if rule.kind in found:
            continue
        for view in views:
            if any(rule.accept is None or rule.accept(m.group(0)) for m in matches(rule.pattern, view)):
                found.add(rule.kind)
                break
    return found


def scan(text: str, field: str) -> list[SecretFinding]:
    """Every credential-shaped match in `text` after normalisation, one per (kind, line). Never raises."""
    from servers.common.textnorm import for_scanning  # here: the redactor (every process) needs no `regex`

    findings: list[SecretFinding] = []
    for lineno, line in enumerate(for_scanning(text).splitlines() or [""], start=1):
        findings.extend(SecretFinding(kind, field, lineno) for kind in sorted(_kinds_in(line)))
    return findings


def scan_patch(patch: str) -> list[SecretFinding]:
    """Credentials in file names and in the lines a unified diff adds; the field names the file (unless
    its name is itself the finding), the line is its new line number.

    A diff unidiff cannot parse is scanned line by line (every `+` line, numbered within the patch).
    Never raises.
    """
    from unidiff.errors import UnidiffParseError
    from unidiff.patch import PatchSet  # here, so that importing the redactor does not load the diff parser

    findings: list[SecretFinding] = []
    try:
        files = PatchSet(patch)
    except UnidiffParseError:
        for lineno, line in enumerate(patch.splitlines(), start=1):
            if line.startswith("+") and not line.startswith("+++ "):
                findings.extend(SecretFinding(f.kind, "patch", lineno) for f in scan(line[1:], "patch"))
        return findings
    for patched in files:
        named = [SecretFinding(f.kind, "patch file name", 0) for f in scan(patched.path, "patch")]
        findings.extend(named)
        where = "patch" if named else f"patch {patched.path}"  # a name that is a credential is never echoed
        for hunk in patched:
            for line in hunk:
                if line.is_added:
                    number = line.target_line_no or 0
                    findings.extend(SecretFinding(f.kind, where, number) for f in scan(line.value, where))
    return findings


def describe(findings: list[SecretFinding]) -> str:
    """A refusal message naming kinds and places, never the matched text."""
    places = ", ".join(f"{f.kind} in {f.field} line {f.line}" for f in findings[:5])
    more = f" (+{len(findings) - 5} more)" if len(findings) > 5 else ""
    return f"refused: text looks like it contains a credential ({places}{more}); remove it and retry"
