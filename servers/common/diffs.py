"""Small, pure helpers the patch policy needs: path globs and a Go-aware line scanner.

Nothing here parses diffs (unidiff does that); these functions answer two questions about paths
and Go source text: "does this path match a protected glob?" and "at this line, are we at the top
level of the file or inside a function body?". Neither raises on any input.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_GO_LITERAL = re.compile(
    r"""`[^`]*`                          # raw string
    | "(?:[^"\\\n]|\\.)*"                # interpreted string
    | '(?:[^'\\\n]|\\.)*'                # rune
    | \b0[xX][0-9a-fA-F_]+\b             # hex
    | \b\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?i?\b   # decimal / float / imaginary
    | \b(?:true|false|nil)\b
    """,
    re.VERBOSE,
)


_GOOS = "aix android darwin dragonfly freebsd hurd illumos ios js linux netbsd openbsd plan9 solaris wasip1 windows zos"
_GOARCH = "386 amd64 arm arm64 loong64 mips mipsle mips64 mips64le ppc64 ppc64le riscv64 s390x wasm"
_KNOWN_TAGS = frozenset(f"{_GOOS} {_GOARCH} cgo gc gccgo unix".split(" "))
_PLATFORM_SUFFIX = re.compile(
    r"_(?:" + "|".join(sorted(_KNOWN_TAGS - {"cgo", "gc", "gccgo", "unix"})) + r")(?:_test)?\.go$"
)


def hiding_tags(expr: str) -> list[str]:
    """Tags in a build-constraint expression that exclude the file by default (un-negated, not platform/release)."""
    tags = re.findall(r"(!?)\s*([A-Za-z0-9_.]+)", expr)
    return [
        tag
        for neg, tag in tags
        if not neg and tag not in _KNOWN_TAGS and not re.fullmatch(r"go1\.\d+|goexperiment\..+", tag)
    ]


def platform_specific(path: str) -> bool:
    """True for a Go file name that only builds on some GOOS/GOARCH (`x_windows.go`, `y_arm64_test.go`)."""
    return bool(_PLATFORM_SUFFIX.search(path))


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a gitignore-like glob: `**` crosses directories, `*` and `?` do not.

    A pattern without a slash (other than a trailing one) matches a name at any depth, like
    gitignore; a pattern with a slash is anchored at the repository root.
    """
    pat = pattern.strip().rstrip("/")
    anchored = "/" in pat
    pat = pat.lstrip("/")
    out: list[str] = []
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        elif pat[i] == "[" and "]" in pat[i + 2 :]:
            end = pat.index("]", i + 2)
            body = pat[i + 1 : end].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(prefix + "".join(out) + "(?:/.*)?", re.DOTALL)


def matching_glob(path: str, patterns: tuple[str, ...]) -> str | None:
    """The first pattern that matches `path` (or one of its parent directories), else None."""
    for pattern in patterns:
        if pattern.strip() and glob_regex(pattern).fullmatch(path):
            return pattern
    return None


def unsafe_path_reason(path: str) -> str | None:
    """Why a path taken from a diff header may not be written to, or None when it is an ordinary path."""
    if not path or path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return "absolute or empty path"
    parts = path.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        return "path contains '..'"
    if any(p == ".git" for p in parts):
        return "path inside .git"
    if any(ord(c) < 32 for c in path):
        return "control character in path"
    return None


@dataclass(frozen=True, slots=True)
class LineState:
    """Nesting at the start of a line: `{` depth, `(` depth, and whether an open `(` is a decl group."""

    braces: int
    parens: int
    in_group: bool

    @property
    def top_level(self) -> bool:
        """True outside every function body and expression (a decl group like `import (` counts as top)."""
        return self.braces == 0 and (self.parens == 0 or (self.parens == 1 and self.in_group))


_GROUP_OPEN = re.compile(r"^(?:import|var|const|type)\s*\($")


def line_states(source: str) -> list[LineState]:
    """Nesting state at the start of each line of Go source (index 0 = line 1, one extra at the end).

    Brackets inside comments, strings, raw strings and runes are ignored. Unbalanced input never
    raises; depths are clamped at zero.
    """
    states: list[LineState] = []
    braces = parens = 0
    in_group = False
    mode = ""  # "", "block", "raw"
    for line in source.split("\n"):
        states.append(LineState(braces, parens, in_group))
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if mode == "block":
                end = line.find("*/", i)
                if end < 0:
                    break
                mode, i = "", end + 2
                continue
            if mode == "raw":
                end = line.find("`", i)
                if end < 0:
                    break
                mode, i = "", end + 1
                continue
            if line.startswith("//", i):
                break
            if line.startswith("/*", i):
                mode, i = "block", i + 2
                continue
            if c == "`":
                mode, i = "raw", i + 1
                continue
            if c in "\"'":
                m = re.compile(rf"{c}(?:[^{c}\\]|\\.)*{c}").match(line, i)
                i = m.end() if m else n
                continue
            if c == "{":
                braces += 1
            elif c == "}":
                braces = max(0, braces - 1)
            elif c == "(":
                if braces == 0 and parens == 0:
                    in_group = bool(_GROUP_OPEN.match(line[: i + 1].strip()))
                parens += 1
            elif c == ")":
                parens = max(0, parens - 1)
                if parens == 0:
                    in_group = False
            i += 1
    states.append(LineState(braces, parens, in_group))
    return states


def literal_skeleton(line: str) -> tuple[str, tuple[str, ...]]:
    """Split a Go line into its shape (literals replaced by `#`) and the literals, in order."""
    literals = tuple(m.group(0) for m in _GO_LITERAL.finditer(line))
    return _GO_LITERAL.sub("#", line.strip()), literals


def strip_line_comment(line: str) -> str:
    """The code part of a single Go line (a `//` comment outside strings removed), stripped."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            out.append(c)
            if c == "\\" and quote != "`" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
            out.append(c)
        elif line.startswith("//", i):
            break
        else:
            out.append(c)
        i += 1
    return "".join(out).strip()


_DECL_START = re.compile(r"^(?:func|type|var|const|import)\b|^//|^/\*")
_IMPORT_SPEC = re.compile(r'^\s*(?:(?:[A-Za-z_]\w*|\.)\s+)?"[^"\s]*"\s*(?://.*)?$')
_OPENER_END = re.compile(r"(?:[{(\[,=+\-*/&|^<>!:`]|\bfunc|&&|\|\|)$")
_MAX_SLIDE = 64


def is_import_spec(line: str) -> bool:
    """True for a line like `\\t"strings"` or `\\tfoo "example.com/foo"` (a spec inside `import ( )`)."""
    return bool(_IMPORT_SPEC.match(line))


def whole_declarations(lines: list[str]) -> bool:
    """True when `lines` are complete top-level Go declarations (funcs, types, vars, consts, imports, comments).

    At nesting depth zero every non-blank line must start a declaration or a comment, and the text
    must end balanced; a bare statement such as `t.Skip()` or `return` is not a declaration.
    """
    states = line_states("\n".join(lines))
    for line, state in zip(lines, states, strict=False):
        text = line.strip()
        if text and state.braces == 0 and state.parens == 0 and not _DECL_START.match(text):
            return False
    end = states[-1]
    return end.braces == 0 and end.parens == 0


def _looks_top_level(k: int, original: dict[int, str]) -> bool:
    """Without the whole file: is an insertion before old line `k` at top level in gofmt'ed code?"""
    n = k - 1
    while n >= 1 and n in original and not original[n].strip():
        n -= 1
    if n < 1:
        return True  # start of the file
    prev = original.get(n)
    if prev is None:
        return False  # not enough context to tell; refuse rather than guess
    return not prev[:1].isspace() and not _OPENER_END.search(strip_line_comment(prev))


def insertion_at_top_level(added: list[str], k: int, original: dict[int, str], states: list[LineState] | None) -> bool:
    """Whether inserting `added` before old line `k` only adds whole top-level declarations.

    A diff may show an appended function as "inserted before the previous function's closing
    brace, starting with `}`"; the insertion is slid along equal neighbouring lines, and any
    equivalent position that places whole declarations at top level is accepted.
    """
    if all(is_import_spec(line) or not line.strip() for line in added):
        return True  # outside an import block an import spec does not compile, so it cannot hide anything
    candidates = [(k, added)]
    block, pos = list(added), k
    while len(candidates) < _MAX_SLIDE and block and original.get(pos) == block[0]:
        block, pos = [*block[1:], block[0]], pos + 1
        candidates.append((pos, block))
    block, pos = list(added), k
    while len(candidates) < 2 * _MAX_SLIDE and block and pos > 1 and original.get(pos - 1) == block[-1]:
        block, pos = [block[-1], *block[:-1]], pos - 1
        candidates.append((pos, block))
    for pos, lines in candidates:
        if states is not None:
            state = states[min(max(pos - 1, 0), len(states) - 1)]
            at_top = state.braces == 0 and state.parens == 0
        else:
            at_top = _looks_top_level(pos, original)
        if at_top and whole_declarations(lines):
            return True
    return False
