"""Small, pure helpers the patch policy needs: path globs and a Go-aware line scanner.

Nothing here parses diffs (unidiff does that); these functions answer two questions about paths
and Go source text: "does this path match a protected glob?" and "at this line, are we at the top
level of the file or inside a function body?". Neither raises on any input. Also here: how git's
quoted path names decode (`unquote_path`), and the bidirectional control characters that make text
display in another order than it is stored (`BIDI_CONTROL`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# the one glob syntax of every policy (gitignore-like), shared with the agent's router and escalation rules
from pathglob import glob_regex as glob_regex
from pathglob import matching_glob as matching_glob

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


# Bidirectional controls: the embeddings and overrides U+202A-U+202E, the isolates U+2066-U+2069, the marks
# U+200E/U+200F and the Arabic letter mark U+061C. Raw in code or a file name, they make it display in another
# order than the compiler or git reads it ("Trojan Source", CVE-2021-42574).
BIDI_CONTROL = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# git's C-quoting of a path (core.quotePath, and always for control characters): `\\` `\"` `\a` … `\r`, octal bytes.
_C_ESCAPES = {b"a": b"\a", b"b": b"\b", b"t": b"\t", b"n": b"\n", b"v": b"\v", b"f": b"\f", b"r": b"\r"}
_QUOTED_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)", re.DOTALL)


def unquote_path(name: str) -> str:
    """A path as git quotes it (`"a/caf\\303\\251.go"`, `"docs/a\\nb.md"`) decoded: octal bytes and C escapes,
    UTF-8 (undecodable bytes as surrogates); a name without the surrounding quotes is returned stripped."""
    name = name.strip()
    if len(name) < 2 or name[0] != '"' or name[-1] != '"':
        return name

    def one(m: re.Match[bytes]) -> bytes:
        esc = m.group(1)
        return bytes([int(esc, 8) & 0xFF]) if esc[:1].isdigit() else _C_ESCAPES.get(esc, esc)

    raw = _QUOTED_ESCAPE.sub(one, name[1:-1].encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


def unsafe_path_reason(path: str) -> str | None:
    """Why a path taken from a diff header may not be written to, or None when it is an ordinary path."""
    if not path or path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return "absolute or empty path"
    parts = path.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        return "path contains '..'"
    if any(p == ".git" for p in parts):
        return "path inside .git"
    if any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in path):
        return "control character in path"
    if BIDI_CONTROL.search(path):
        return "bidirectional control character in path"
    return None


@dataclass(frozen=True, slots=True)
class LineState:
    """Nesting at the start of a line.

    `braces`/`parens`: `{` and `(` depth; `in_group`: the open `(` is a decl group (`import (`);
    `in_text`: inside a raw string or block comment; `innermost`: the innermost open bracket and
    `opener` the 0-based index of the line that opened it (-1 at top level).
    """

    braces: int
    parens: int
    in_group: bool
    in_text: bool = False
    innermost: str = ""
    opener: int = -1


_GROUP_OPEN = re.compile(r"^(?:import|var|const|type)\s*\($")
_CLOSE = {"}": "{", ")": "(", "]": "["}


def line_states(source: str) -> list[LineState]:
    """Nesting state at the start of each line of Go source (index 0 = line 1, one extra at the end).

    Brackets inside comments, strings, raw strings and runes are ignored. Unbalanced input never
    raises; depths are clamped at zero.
    """
    states: list[LineState] = []
    stack: list[tuple[str, int]] = []
    in_group = False
    mode = ""  # "", "block", "raw"
    for number, line in enumerate(source.split("\n")):
        braces = sum(1 for c, _ in stack if c == "{")
        parens = sum(1 for c, _ in stack if c == "(")
        top = stack[-1] if stack else ("", -1)
        states.append(LineState(braces, parens, in_group and parens > 0, mode != "", top[0], top[1]))
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if mode:
                end = line.find("*/" if mode == "block" else "`", i)
                if end < 0:
                    break
                i = end + (2 if mode == "block" else 1)
                mode = ""
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
            if c in "{([":
                if c == "(" and not stack:
                    in_group = bool(_GROUP_OPEN.match(line[: i + 1].strip()))
                stack.append((c, number))
            elif c in _CLOSE:
                # pop up to the matching opener; a stray closer is ignored
                for j in range(len(stack) - 1, -1, -1):
                    if stack[j][0] == _CLOSE[c]:
                        del stack[j:]
                        break
            i += 1
    braces = sum(1 for c, _ in stack if c == "{")
    parens = sum(1 for c, _ in stack if c == "(")
    top = stack[-1] if stack else ("", -1)
    states.append(LineState(braces, parens, in_group and parens > 0, mode != "", top[0], top[1]))
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


_ROW_START = re.compile(
    r'^(?:[{}]|(?:"(?:[^"\\]|\\.)*"|[A-Za-z_]\w*|\d+)\s*:\s*(?!(?:for|if|switch|select|return|go|defer|goto)\b)\S)'
)
_ROW_FORBIDDEN = re.compile(
    r"\b(?:t|b|tb)\b(?!\s*:)|\.(?:Skip|SkipNow|Skipf)\(|\b(?:os|syscall)\.Exit\(|\bflag\.|\bruntime\.Goexit\("
)
_SKIP_TABLE = re.compile(r"skip|ignor|flak|exclu|disabl|known.?fail|allow|todo", re.IGNORECASE)


def table_rows(lines: list[str], *, in_literal: bool) -> bool:
    """True when `lines` only add elements to a composite literal (new cases of a table test).

    Without proof of the context (`in_literal` False) every element must be a `{...},` row or a
    `key: value,` entry: text that is a syntax error anywhere but inside a composite literal, so
    it cannot add a statement or a call argument. Either way it may not mention the test's `t`,
    skip, exit or touch flags, and it must end with a comma, balanced.
    """
    states = line_states("\n".join(lines))
    codes = [strip_line_comment(line) for line in lines]
    for code, state in zip(codes, states, strict=False):
        if _ROW_FORBIDDEN.search(_GO_LITERAL.sub('""', code)):
            return False
        if code and not in_literal and state.braces == 0 and state.parens == 0 and not _ROW_START.match(code):
            return False
    last = next((c for c in reversed(codes) if c), "")
    return last.endswith(",") and states[-1].braces == 0 and states[-1].parens == 0 and not states[-1].in_text


def _literal_opener(line: str) -> bool:
    """Does this line open a composite literal (`[]T{`, `}{`, `key: {`) rather than a block or a type body?"""
    code = strip_line_comment(line)
    return (
        code.endswith("{")
        and not re.search(r"\bfunc\b|\b(?:struct|interface)\s*\{$", code)
        and not re.match(r"^(?:\}\s*)?(?:if|for|switch|select|else|case|default|go|defer)\b", code)
    )


def _in_element_list(pos: int, original: dict[int, str], states: list[LineState] | None) -> bool | None:
    """Is old line `pos` inside a composite literal's element list? None when only the neighbours suggest so.

    With the whole file (`states`) the innermost open bracket must be a literal's `{` whose line is
    not named like a skip list; without it, the previous line must end an element or open a list.
    """
    n = pos - 1
    while n >= 1 and n in original and not strip_line_comment(original[n]):
        n -= 1
    if not strip_line_comment(original.get(n, "")).endswith(("{", ",")):
        return False
    if states is None:
        return None
    state = states[min(max(pos - 1, 0), len(states) - 1)]
    opener = original.get(state.opener + 1, "")
    # braces >= 1: a table inside a test function, or a package-level table (`var tests = []test{`)
    if state.in_text or state.innermost != "{" or state.braces < 1 or not _literal_opener(opener):
        return False
    return not _SKIP_TABLE.search(opener)


def classify_insertion(
    added: list[str], k: int, original: dict[int, str], states: list[LineState] | None
) -> Literal["declarations", "table_rows"] | None:
    """What inserting `added` before old line `k` amounts to, if it is harmless to existing tests.

    "declarations": whole top-level declarations (a new test function, a new import);
    "table_rows": new elements of a composite literal inside a function (new cases of a table test).
    A diff may show an appended function as "inserted before the previous function's closing
    brace, starting with `}`"; the insertion is slid along equal neighbouring lines, and any
    equivalent position that qualifies is accepted. `states` (from the whole old file) makes the
    position exact; without it the neighbouring lines of gofmt'ed code decide, conservatively.
    """
    if all(is_import_spec(line) or not line.strip() for line in added):
        return "declarations"  # outside an import block an import spec does not compile
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
            return "declarations"
        if not at_top:
            context = _in_element_list(pos, original, states)
            if context is not False and table_rows(lines, in_literal=bool(context)):
                return "table_rows"
    return None
