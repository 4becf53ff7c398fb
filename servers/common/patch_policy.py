"""The patch policy shared by go-test-runner (before running) and github-pr (before pushing).

`check_patch(diff_text, policy)` parses a unified diff with `unidiff` and returns a `PatchVerdict`:
allowed, or refused with one `PatchReason` per problem (rule, path, line, detail). It never raises:
a diff that cannot be parsed is itself a reason. Rules, in the order they are checked:

- size over `max_patch_bytes`; unparseable diff; unsafe paths (absolute, `..`, `.git/`, control
  and bidirectional control characters); a raw bidirectional control character (`diffs.BIDI_CONTROL`)
  in any added line, of any file (`bidi_control`: "Trojan Source"); symlinks and submodules;
  `go.mod`/`go.sum` unless `allow_go_mod`; paths matching a protected glob;
- build constraints that hide code (`//go:build` changed in an existing Go file, or an unknown tag
  such as `ignore` in a new one; a Go file renamed to a GOOS/GOARCH name or away from `.go`);
- code the static guard cannot read (with either the analyzer or the test rules on): a Go file that
  imports "C", before or after the patch, or an added build constraint on the `cgo` tag (`cgo`: the
  analyzer loads packages without cgo, go test builds them with it), and C, C++, assembly, SWIG or
  object files the go tool compiles or links into a package, whatever `allow_non_go` says
  (`compiled_non_go`);
- existing `_test.go` files are read-only (when `existing_tests_read_only`): deleting or renaming
  one, or changing any existing line, is refused with the most specific reason found (deleted
  test function, removed assertion, changed expected value, inserted skip, ...). Pure additions of
  whole top-level declarations (a new test function, a new import) are allowed, and so are new rows
  of a table test (composite-literal elements that do not mention `t`, skip or exit, outside any
  list named like a skip list) and new test files, unless the added code could stop other tests
  running (`TestMain`, `init`, `os.Exit`, ...).

Without the Go analyzer (`static_analysis` off, as in github-pr, which holds no module tree or toolchain) and
with `existing_tests_read_only` on (the test rules; both off leave the census alone to judge), the analyzer's
rules on package initialisation are read from the text, for every Go file the patch changes, test or not: a
process exit or test-flag change reachable from an `init` function or a package-level var initializer
(`exit_at_init`, `flag_at_init`; through an aliased or dot import, and through functions of the same package
the patch changes), `testing.Testing()` or another testing function in non-test code (`testing_testing`,
`testing_in_code`), a new `TestMain` (`new_test_main`) and `//go:linkname` (`linkname`); non-test code that
asks whether it runs as a test binary otherwise (`flag.Lookup("test.v")`, `os.Args` or `os.Executable()` with
a `.test` name or `-test.` flag, or a walk of its callers with a `_test.go` or `testing.` string, in the same
declaration: `test_mode_probe`); and in any Go code (test files, and the code they call, which runs in the
same test binary) `syscall.Exit`/`unix.Exit`, `syscall.Exec`/`unix.Exec`/`unix.Execveat`, a raw exit or execve
system call, or a raw system call whose number is not a `SYS_` constant (`exit_in_test`), `Mprotect`, an
executable `Mmap` or a raw mprotect (`rewrites_code`), and test2json's framing byte 0x16 in a string or rune
literal or a conversion of 22 (`framing_byte`; the analyzer reads any constant the type checker computes as
0x16 in a string or 22 as a byte or rune). As in the analyzer, only what the patch adds is refused: the
findings of the pre- and post-images are compared. Reachability through methods, function values passed
around, or files the patch does not change is the analyzer's alone.
"""

from __future__ import annotations

import collections
import pathlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict
from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk, Line, PatchedFile, PatchSet

from servers.common import diffs, go_syntax
from servers.common.go_syntax import Call, Code, Decl, GoFile, Lit, Ref
from servers.common.policy import ProtectedPolicy

Rule = Literal[
    "patch_too_large",
    "unparseable_patch",
    "unsafe_path",
    "bidi_control",
    "symlink_or_submodule",
    "go_mod",
    "protected_path",
    "hiding_build_constraint",
    "deleted_test_file",
    "renamed_test_file",
    "deleted_test_function",
    "removed_assertion",
    "changed_expected_value",
    "inserted_skip",
    "inserted_early_return",
    "inserted_into_existing_test",
    "hides_tests",
    "modified_test_line",
    "binary_file",
    "mode_change",
    "non_go_file",
    "test_fixture",
    "exit_at_init",
    "flag_at_init",
    "linkname",
    "new_test_main",
    "testing_testing",
    "testing_in_code",
    "test_mode_probe",
    "exit_in_test",
    "rewrites_code",
    "framing_byte",
    "cgo",
    "compiled_non_go",
    "overwrites_test_state",
    "changed_test_helper",
    "shadows_test",
    "analysis_failed",
]

MAX_REASONS = 100
_GO_MOD_FILES = frozenset({"go.mod", "go.sum", "go.work", "go.work.sum"})


class PatchReason(BaseModel):
    """One reason a patch is refused; `line` is in the old file for removals, the new one for additions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Rule
    path: str
    line: int | None = None
    detail: str


class PatchVerdict(BaseModel):
    """The answer of the patch policy: allowed exactly when there is no reason to refuse."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed: bool
    reasons: list[PatchReason]

    def render(self) -> str:
        """Human-readable lines, one per reason (`path:line: rule: detail`)."""
        if self.allowed:
            return "patch allowed"
        lines = ["patch refused:"]
        for r in self.reasons:
            where = f"{r.path}:{r.line}" if r.line is not None else r.path or "(patch)"
            lines.append(f"  {where}: {r.rule}: {r.detail}")
        return "\n".join(lines)


def _refused(rule: Rule, detail: str, path: str = "") -> PatchVerdict:
    return PatchVerdict(allowed=False, reasons=[PatchReason(rule=rule, path=path, detail=detail)])


def check_patch(
    diff_text: str,
    policy: ProtectedPolicy,
    *,
    repo_root: pathlib.Path | None = None,
    base_files: Mapping[str, str | None] | None = None,
) -> PatchVerdict:
    """Check a unified diff against the protected-paths and test-tampering policy (the line rules).

    `repo_root`, when given, is the checkout the patch applies to; existing test files are read from
    it to place insertions exactly (without it, the hunk context decides, more conservatively).
    `base_files` (path -> text, None for absent) replaces `repo_root` when the checkout is already
    patched: the pre-images read before `git apply`.
    Never raises: malformed input yields a refusal with rule `unparseable_patch`.
    """
    size = len(diff_text.encode("utf-8", "surrogatepass"))
    if size > policy.max_patch_bytes:
        return _refused("patch_too_large", f"patch is {size} bytes; the limit is {policy.max_patch_bytes}")
    try:
        patch = PatchSet(diff_text)
    except (UnidiffParseError, ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
        return _refused("unparseable_patch", f"not a unified diff: {str(exc)[:120]}")
    if not patch and diff_text.strip():
        return _refused("unparseable_patch", "no file changes found in the patch")
    reasons: list[PatchReason] = []
    for patched in patch:
        reasons.extend(_check_file(patched, policy, _Base(repo_root, base_files)))
    if policy.existing_tests_read_only and not policy.static_analysis:
        reasons.extend(_init_reasons(patch, policy, _Base(repo_root, base_files)))
    reasons.sort(key=lambda r: (r.path, r.line or 0, r.rule))
    return PatchVerdict(allowed=not reasons, reasons=reasons[:MAX_REASONS])


def changed_paths(diff_text: str) -> frozenset[str]:
    """Every path a diff names (old and new names of each file); empty when it cannot be parsed."""
    try:
        patch = PatchSet(diff_text)
    except (UnidiffParseError, ValueError, IndexError, KeyError, TypeError, AttributeError):
        return frozenset()
    return frozenset(p for pf in patch for p in (_clean(pf.source_file), _clean(pf.target_file)) if p is not None)


def _clean(name: str | None) -> str | None:
    """A header's path as git reads it: a C-quoted name decoded (`"docs/a\\nb.md"` holds a newline, which the
    unsafe-path rule then sees), the `a/` or `b/` prefix removed."""
    if name is None or name == "/dev/null":
        return None
    name = diffs.unquote_path(name)
    if name[:2] in ("a/", "b/"):
        name = name[2:]
    return name


@dataclass(frozen=True)
class _Base:
    """The pre-images of the files a patch names: from a checkout, or from a mapping read earlier."""

    root: pathlib.Path | None
    files: Mapping[str, str | None] | None

    @property
    def known(self) -> bool:
        return self.root is not None or self.files is not None

    def exists(self, rel: str) -> bool:
        if self.files is not None:
            return self.files.get(rel) is not None
        return self.root is not None and _exists(self.root, rel)

    def read(self, rel: str) -> str | None:
        return self.files.get(rel) if self.files is not None else _read(self.root, rel)


def _check_file(pf: PatchedFile, policy: ProtectedPolicy, base: _Base) -> list[PatchReason]:
    source, target = _clean(pf.source_file), _clean(pf.target_file)
    paths = [p for p in dict.fromkeys((source, target)) if p is not None]
    if not paths:
        return [PatchReason(rule="unparseable_patch", path="", detail="file header names no path")]
    main = target or paths[0]
    out: list[PatchReason] = []
    for p in paths:
        why = diffs.unsafe_path_reason(p)
        if why is not None:
            shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in p[:200])  # no raw ESC, newline
            out.append(PatchReason(rule="unsafe_path", path=shown, detail=why))
    if out:
        return out
    out.extend(_bidi_reasons(pf, main))
    if pf.is_symlink or pf.is_submodule:
        out.append(PatchReason(rule="symlink_or_submodule", path=main, detail="symlinks and submodules may not change"))
    elif (mode := _mode_change(pf)) is not None and not policy.allow_mode_changes:
        out.append(PatchReason(rule="mode_change", path=main, detail=f"{mode} (allow_mode_changes: false)"))
    if pf.is_binary_file and not policy.allow_binary:
        out.append(PatchReason(rule="binary_file", path=main, detail="binary content (allow_binary: false)"))
    for p in paths:
        is_mod = pathlib.PurePosixPath(p).name in _GO_MOD_FILES
        if is_mod and not policy.allow_go_mod:
            out.append(PatchReason(rule="go_mod", path=p, detail="module files may not change (allow_go_mod: false)"))
        elif not is_mod and (glob := diffs.matching_glob(p, policy.paths)) is not None:
            out.append(PatchReason(rule="protected_path", path=p, detail=f"matches protected pattern {glob!r}"))
    existing = not pf.is_added_file or (base.known and base.exists(main))
    if existing and source is None:
        source = target  # a "new" file over an existing one rewrites it
    out.extend(_constraint_reasons(pf, source, target, existing))
    if policy.existing_tests_read_only or policy.static_analysis:
        out.extend(_cgo_reasons(pf, source, target, existing, base))
    if policy.existing_tests_read_only:
        original = base.read(source) if source is not None and existing else None
        out.extend(_test_file_reasons(pf, source, target, existing, original, policy.static_analysis))
    return out


def _bidi_reasons(pf: PatchedFile, path: str) -> list[PatchReason]:
    """One reason per added line holding a raw bidirectional control character."""
    out: list[PatchReason] = []
    for hunk in pf:
        for line in hunk:
            if line.is_added and (m := diffs.BIDI_CONTROL.search(line.value)) is not None:
                code = ord(m.group())
                detail = (
                    f"raw bidirectional control character U+{code:04X} makes the code display in another order than"
                    f" it compiles (Trojan Source); if it is data, write it as \\u{code:04x} inside a string literal"
                )
                out.append(PatchReason(rule="bidi_control", path=path, line=line.target_line_no, detail=detail))
    return out


_MODE = re.compile(r"^(old mode|new mode|new file mode|deleted file mode) (\d+)$", re.MULTILINE)


def _mode_change(pf: PatchedFile) -> str | None:
    """What the extended header says about file modes, when it is more than a regular file's 100644."""
    modes = {kind: mode for kind, mode in _MODE.findall(str(pf.patch_info or ""))}
    old, new = modes.get("old mode"), modes.get("new mode")
    if old is not None and new is not None and old != new:
        return f"changes the mode from {old} to {new}"
    created = modes.get("new file mode")
    if created is not None and created != "100644":
        return f"creates the file with mode {created}"
    return None


def _inside(root: pathlib.Path, rel: str) -> pathlib.Path | None:
    try:
        resolved_root = root.resolve()
        candidate = (resolved_root / rel).resolve()
    except (OSError, RuntimeError):
        return None
    return candidate if candidate.is_relative_to(resolved_root) else None


def _exists(root: pathlib.Path, rel: str) -> bool:
    candidate = _inside(root, rel)
    return candidate is not None and candidate.is_file()


def _read(root: pathlib.Path | None, rel: str) -> str | None:
    if root is None:
        return None
    candidate = _inside(root, rel)
    if candidate is None:
        return None
    try:
        return candidate.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


_TEST_FUNC = re.compile(r"^func\s+(?:\([^)]*\)\s*)?((?:Test|Benchmark|Fuzz|Example)\w*)\s*\(")
_SUBTEST = re.compile(r"\.Run\(\s*(\"[^\"]*\"|\w+)")
_ASSERT = re.compile(
    r"\b\w+\.(?:Error|Errorf|Fatal|Fatalf|Fail|FailNow)\(|\b(?:assert|require|is|qt|check)\.\w+\("
    r"|\bcmp\.(?:Diff|Equal)\(|reflect\.DeepEqual\(|\bExpect\(|\.Should\(|\.Assert\(|\.Check\("
    r"|\.(?:Equal|Equals|EqualValues|NoError|Error|True|False|Nil|NotNil|Len|Contains|ErrorIs|Panics)\("
    r"|^if\b.*(?:!=|==|<|>|!\w|\berr\b)"
)
_SKIP = re.compile(r"\.(?:Skip|SkipNow|Skipf)\(|\btesting\.Short\(\)")
_RETURN = re.compile(r"^return\b")
_HIDES = re.compile(
    r"\bfunc\s+(?:TestMain|init)\s*\(|\b(?:os|syscall)\.Exit\(|\bruntime\.Goexit\(|\bflag\.(?:Set|CommandLine)\b"
    r"|\bos\.Args\b|//go:linkname"
)
_CONSTRAINT = re.compile(r"^\s*//\s*(?:go:build|\+build)\b(.*)$")


def _snip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 80 else text[:77] + "..."


def _constraint_reasons(pf: PatchedFile, source: str | None, target: str | None, existing: bool) -> list[PatchReason]:
    out: list[PatchReason] = []
    if source is not None and target is not None and source != target and source.endswith(".go"):
        if not target.endswith(".go"):
            out.append(PatchReason(rule="hiding_build_constraint", path=target, detail=f"renames Go file {source}"))
        elif diffs.platform_specific(target) and not diffs.platform_specific(source):
            detail = f"renames {source} to a platform-specific name"
            out.append(PatchReason(rule="hiding_build_constraint", path=target, detail=detail))
    if target is None or not target.endswith(".go"):
        return out
    for hunk in pf:
        for line in hunk:
            m = _CONSTRAINT.match(line.value)
            if m is None or not (line.is_added or line.is_removed):
                continue
            ln = line.target_line_no if line.is_added else line.source_line_no
            if existing:
                detail = f"changes the build constraint of an existing file: {_snip(line.value)}"
                out.append(PatchReason(rule="hiding_build_constraint", path=target, line=ln, detail=detail))
            elif line.is_added and (tags := diffs.hiding_tags(m.group(1))):
                detail = f"constraint needs tag(s) {', '.join(tags)}, which hides the file from go test"
                out.append(PatchReason(rule="hiding_build_constraint", path=target, line=ln, detail=detail))
    return out


# --- code the static guard cannot read: cgo and the C, C++, assembly and object files the go tool builds ---
#
# The analyzer loads packages without cgo (it type-checks, it runs no C compiler), so a Go file that
# imports "C" is not among what it reads, while `go test` builds it with cgo: its preamble is C, compiled
# and run with the test binary (a constructor runs before any Go code). A file with a `cgo` build
# constraint is likewise outside what the analyzer sees. Files in these languages next to Go files are
# compiled (`.c`, `.s`, ...) or linked (`.syso`) into the package whatever `allow_non_go` says.

_C_LIKE = (".c", ".cc", ".cpp", ".cxx", ".c++", ".m", ".h", ".hh", ".hpp", ".hxx", ".h++", ".f", ".for", ".f90")
_COMPILED_SUFFIXES = frozenset((*_C_LIKE, ".s", ".sx", ".swig", ".swigcxx", ".syso"))
_CGO_TAG = re.compile(r"(?<![\w.])cgo(?![\w.])")
_CGO_ADVICE = "make this change by hand, outside goresolve"


def _compiled_non_go(path: str) -> bool:
    """A file the go tool would compile or link: its language's suffix, in a directory it reads (not
    under `testdata` or a directory named with a leading `_` or `.`)."""
    pure = pathlib.PurePosixPath(path)
    ignored = any(d == "testdata" or d.startswith(("_", ".")) for d in pure.parent.parts)
    return not ignored and pure.suffix.lower() in _COMPILED_SUFFIXES


def _cgo_reasons(
    pf: PatchedFile, source: str | None, target: str | None, existing: bool, base: _Base
) -> list[PatchReason]:
    """A changed Go file that imports "C" (before or after the patch), and a changed C, C++, assembly,
    SWIG or object file: code the static guard cannot read."""
    out: list[PatchReason] = []
    for p in dict.fromkeys(p for p in (source, target) if p is not None and _compiled_non_go(p)):
        detail = (
            "C, C++, assembly, SWIG and object files are compiled or linked into the package by the go tool, "
            f"out of the static guard's sight, whatever allow_non_go says; {_CGO_ADVICE}"
        )
        out.append(PatchReason(rule="compiled_non_go", path=p, detail=detail))
    go_source = existing and source is not None and source.endswith(".go")
    if pf.is_binary_file or not (go_source or (target is not None and target.endswith(".go"))):
        return out
    path = target or source or ""
    old = base.read(source) if go_source and source is not None else None
    before = old if old is not None else "\n".join(ln.value for h in pf for ln in h if not ln.is_added)
    after = _post_image(pf, old) if old is not None and target is not None else None
    after = after if after is not None else "\n".join(ln.value for h in pf for ln in h if not ln.is_removed)
    was_cgo = go_source and go_syntax.read_file(before).cgo
    if was_cgo or (target is not None and go_syntax.read_file(after).cgo):
        what = 'changes a cgo file (it imports "C")' if was_cgo else 'imports "C"'
        detail = f"{what}: cgo compiles the file's comments as C into the test binary, out of the static guard's sight"
        out.append(PatchReason(rule="cgo", path=path, detail=f"{detail}; {_CGO_ADVICE}"))
    for hunk in pf:
        for line in hunk:
            m = _CONSTRAINT.match(line.value)
            if m is not None and line.is_added and _CGO_TAG.search(m.group(1)):
                detail = (
                    f"a build constraint on the cgo tag picks files by whether cgo is on; the static guard reads "
                    f"the package without cgo, go test builds it with cgo: {_snip(line.value)}"
                )
                out.append(PatchReason(rule="cgo", path=path, line=line.target_line_no, detail=detail))
    return out


@dataclass
class _Block:
    """A run of removed and added lines between two context lines; `before` is the old line it precedes."""

    before: int
    removed: list[Line] = field(default_factory=list[Line])
    added: list[Line] = field(default_factory=list[Line])


def _blocks(hunk: Hunk) -> list[_Block]:
    end = hunk.source_start + max(hunk.source_length, 1)
    blocks: list[_Block] = []
    current = _Block(before=0)
    for line in hunk:
        if line.is_removed:
            current.removed.append(line)
        elif line.is_added:
            current.added.append(line)
        elif line.is_context:
            if current.removed or current.added:
                current.before = line.source_line_no or end
                blocks.append(current)
            current = _Block(before=0)
    if current.removed or current.added:
        current.before = end
        blocks.append(current)
    return blocks


def _test_file_reasons(
    pf: PatchedFile,
    source: str | None,
    target: str | None,
    existing: bool,
    original_text: str | None,
    static_analysis: bool,
) -> list[PatchReason]:
    path = target or source or ""
    added_lines = [line for hunk in pf for line in hunk if line.is_added]
    out: list[PatchReason] = []
    if target is not None and target.endswith("_test.go") and not static_analysis:
        # a spelling-based fallback; the Go analyzer (static_analysis) judges these by object instead
        for line in added_lines:
            if _HIDES.search(line.value):
                detail = f"added code could stop other tests running: {_snip(line.value)}"
                out.append(PatchReason(rule="hides_tests", path=path, line=line.target_line_no, detail=detail))
    if source is None or not source.endswith("_test.go") or not existing:
        return out
    if target is None:
        return [*out, PatchReason(rule="deleted_test_file", path=source, detail="deletes an existing test file")]
    if target != source:
        out.append(
            PatchReason(rule="renamed_test_file", path=source, detail=f"renames an existing test file to {target}")
        )
    if pf.is_binary_file or pf.is_added_file:
        detail = "rewrites an existing test file" + (" (binary)" if pf.is_binary_file else "")
        return [*out, PatchReason(rule="modified_test_line", path=source, detail=detail)]
    original = {ln.source_line_no: ln.value.rstrip("\r\n") for h in pf for ln in h if ln.source_line_no is not None}
    states = None
    if original_text is not None:
        lines = original_text.split("\n")
        original = {i + 1: text.rstrip("\r") for i, text in enumerate(lines)} | original
        states = diffs.line_states(original_text)
    for hunk in pf:
        for block in _blocks(hunk):
            out.extend(_block_reasons(block, source, original, states))
    return out


def _code(line: Line) -> str:
    return diffs.strip_line_comment(line.value)


def _block_reasons(
    block: _Block, path: str, original: dict[int, str], states: list[diffs.LineState] | None
) -> list[PatchReason]:
    found: dict[Rule, PatchReason] = {}

    def add(rule: Rule, line: int | None, detail: str) -> None:
        found.setdefault(rule, PatchReason(rule=rule, path=path, line=line, detail=detail))

    if not block.removed:
        added = [line.value.rstrip("\r\n") for line in block.added]
        if diffs.classify_insertion(added, block.before, original, states) is not None:
            return []
    explained: set[int] = set()
    added_codes = {_code(a) for a in block.added}
    added_funcs = {m.group(1) for a in block.added if (m := _TEST_FUNC.match(a.value))}
    for r in block.removed:
        m = _TEST_FUNC.match(r.value)
        if m and m.group(1) not in added_funcs:
            add("deleted_test_function", r.source_line_no, f"deletes {m.group(1)}")
        sub = _SUBTEST.search(_code(r))
        if sub and _code(r) not in added_codes:
            add("deleted_test_function", r.source_line_no, f"deletes or changes subtest {sub.group(1)}")
    for r, a in zip(block.removed, block.added, strict=False):
        old_shape, old_lits = diffs.literal_skeleton(_code(r))
        new_shape, new_lits = diffs.literal_skeleton(_code(a))
        if old_shape == new_shape and old_lits != new_lits:
            changes = [f"{o} -> {n}" for o, n in zip(old_lits, new_lits, strict=False) if o != n]
            add("changed_expected_value", r.source_line_no, f"changes {', '.join(changes)[:80]} in {_snip(r.value)}")
            explained.add(id(r))
    for r in block.removed:
        code = _code(r)
        if id(r) not in explained and _ASSERT.search(code) and code not in added_codes:
            add("removed_assertion", r.source_line_no, f"removes or changes {_snip(r.value)}")
    for a in block.added:
        if _SKIP.search(_code(a)):
            add("inserted_skip", a.target_line_no, f"inserts {_snip(a.value)}")
        elif _RETURN.match(_code(a)) and not any(_RETURN.match(_code(r)) for r in block.removed):
            add("inserted_early_return", a.target_line_no, f"inserts {_snip(a.value)} into an existing test")
    if not found:
        if block.removed:
            first = block.removed[0]
            add("modified_test_line", first.source_line_no, f"changes existing line {_snip(first.value)}")
        else:
            first_added = block.added[0]
            detail = f"adds {_snip(first_added.value)} inside existing code, not as a new top-level function"
            add("inserted_into_existing_test", first_added.target_line_no, detail)
    return list(found.values())


# --- code that runs at package initialisation, read from the text (the fallback of the Go analyzer) ---
#
# Without the analyzer (github-pr has no module tree or toolchain), the post-image of every changed Go
# file is rebuilt from its pre-image and the hunks, read by tree-sitter-go (go_syntax), and searched for
# the analyzer's objects by spelling: `os.Exit`, `xos.Exit` (aliased import), `Exit` (dot import). Roots
# are `func init()` bodies and package-level var initializers; functions of the same package declared in
# the changed files are followed from them. As in the analyzer, findings are compared between the pre-
# and post-images as multisets of keys without line numbers, so only what the patch adds is refused. A
# file whose pre-image is unknown is judged on its hunks alone.


@dataclass(frozen=True, slots=True)
class _Guarded:
    """An object of the policy's init lists, by spelling: `path.name`, or the method `name` of a type of `path`."""

    rule: Rule
    key: str
    path: str
    name: str
    method: bool
    why: str


_METHOD_KEY = re.compile(r"^\(\*?(?P<path>[^()*]+)\.\w+\)\.(?P<name>\w+)$")
_FUNC_KEY = re.compile(r"^(?P<path>[^()]+)\.(?P<name>\w+)$")


def _guarded(policy: ProtectedPolicy) -> list[_Guarded]:
    out: list[_Guarded] = []
    for rule, objects in (("exit_at_init", policy.init_exit_objects), ("flag_at_init", policy.init_flag_objects)):
        for key, why in objects.items():
            if m := _METHOD_KEY.match(key):
                out.append(_Guarded(rule, key, m["path"], m["name"], True, why))  # pyright: ignore[reportArgumentType]
            elif m := _FUNC_KEY.match(key):
                out.append(_Guarded(rule, key, m["path"], m["name"], False, why))  # pyright: ignore[reportArgumentType]
    return out


def _default_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _qualifiers(file: GoFile | None, path: str) -> set[str]:
    """The names `path` may be spelled with in a file: its imports' names, and the default one (an
    unknown file, or a package named unlike its path, is given the benefit of no doubt)."""
    names = {_default_name(path)}
    if file is not None:
        names |= {name for name, p in file.imports.items() if p == path}
    return names


def _refs(refs: tuple[Ref, ...], file: GoFile | None, guarded: list[_Guarded]) -> list[tuple[_Guarded, Ref]]:
    """The guarded objects among the names `refs` (one object per name)."""
    out: list[tuple[_Guarded, Ref]] = []
    dots = file.dots if file is not None else frozenset[str]()
    imported = set(file.imports.values()) | dots if file is not None else None
    packages = {q for g in guarded for q in _qualifiers(file, g.path)} | set(file.imports if file else ())
    for ref in refs:
        for g in (g for g in guarded if g.name == ref.name):
            if g.method:  # `x.Name(...)` on a value, in a file that imports the method's package
                hit = ref.selected and ref.called and ref.qualifier not in packages
                hit = hit and (imported is None or g.path in imported)
            elif ref.selected:  # `pkg.Name`, under any name the package is imported with
                hit = ref.qualifier in _qualifiers(file, g.path)
            else:  # `Name` of a dot-imported package
                hit = g.path in dots
            if hit:
                out.append((g, ref))
                break
    return out


# The functions of package testing (its types may appear in helpers, its functions may not in non-test code).
_TESTING_FUNCS = (
    *("AllocsPerRun", "Benchmark", "CoverMode", "Coverage", "Init", "Main", "MainStart", "RegisterCover"),
    *("RunBenchmarks", "RunExamples", "RunTests", "Short", "Verbose"),
)
_IN_CODE = [
    _Guarded("testing_testing", "testing.Testing", "testing", "Testing", False, "asks whether tests run"),
    *(_Guarded("testing_in_code", f"testing.{n}", "testing", n, False, "") for n in _TESTING_FUNCS),
]


_InitKey = tuple[str, str, str, str]  # rule, root, through, object (the analyzer's key, without lines)

# What test code may not use (the analyzer's exit_in_test and rewrites_code), and the raw system calls it
# may not make; what non-test code may not ask (test_mode_probe); the byte test2json frames reports with.
_SYS = ("syscall", "golang.org/x/sys/unix")
_EXITS = "ends the test binary without the testing package noticing (os.Exit(0) in a test panics; this does not)"
_NON_TEST = "non-test code (a test that calls it runs it in the test binary)"
_EXECS = "replaces the test binary with another program, which can end it with any status"
_PROTECTS = "changes memory protection, so a test can make code writable and rewrite the functions under test"
_PROTECT_FUNCS = ("Mprotect", "PkeyMprotect")
_IN_TESTS = [
    *(_Guarded("exit_in_test", f"{p}.Exit", p, "Exit", False, _EXITS) for p in _SYS),
    *(_Guarded("exit_in_test", f"{p}.Exec", p, "Exec", False, _EXECS) for p in _SYS),
    _Guarded("exit_in_test", "golang.org/x/sys/unix.Execveat", "golang.org/x/sys/unix", "Execveat", False, _EXECS),
    *(_Guarded("rewrites_code", f"{p}.{n}", p, n, False, _PROTECTS) for p in _SYS for n in _PROTECT_FUNCS),
]
_RAW_SYSCALLS: dict[str, Rule] = {
    "SYS_EXIT": "exit_in_test",
    "SYS_EXIT_GROUP": "exit_in_test",
    "SYS_EXECVE": "exit_in_test",
    "SYS_EXECVEAT": "exit_in_test",
    "SYS_MPROTECT": "rewrites_code",
    "SYS_PKEY_MPROTECT": "rewrites_code",
}
_RAW_NUMBER = re.compile(r"\b(" + "|".join(_RAW_SYSCALLS) + r")\b")
# a system call number a reader can see: a SYS_ constant, maybe converted (anything else is computed, or bare)
_NAMED_NUMBER = re.compile(r"(?:uintptr\(\s*)?(?:\w+\.)?SYS_[A-Z0-9_]+\s*\)?")
# what tells code which functions called it, and strings naming a test file or the testing package's frames
_STACK_WALKS = {"runtime": ("Caller", "Callers", "CallersFrames", "FuncForPC", "Stack"), "runtime/debug": ("Stack",)}
_FRAMING = "\x16"
_FRAMING_WHY = "byte 0x16, the byte test2json frames go test's report lines with: printing it can forge test results"
_BYTE_TYPES = frozenset({"byte", "rune", "uint8", "int32", "string"})
_LOOKUPS = (("Lookup",), ("CommandLine", "Lookup"))


def _go_int(text: str) -> int | None:
    """The value of a Go integer literal (`22`, `0x16`, `0o26`, `026`, `1_000`), else None."""
    digits = text.strip().replace("_", "").lower()
    if len(digits) > 1 and digits[0] == "0" and digits.isdigit():
        digits = "0o" + digits[1:]
    try:
        return int(digits, 0)
    except ValueError:
        return None


def _test_binary_string(value: str) -> bool:
    """A string naming a test binary (`pkg.test`, `pkg.test.exe`) or one of its flags (`-test.v`)."""
    return value.endswith((".test", ".test.exe")) or value.startswith(("-test.", "--test."))


def _test_frame_string(value: str) -> bool:
    """A string naming a test file or a frame of the testing package in a stack (`_test.go`, `testing.`)."""
    return "_test.go" in value or value.startswith("testing.") or "tRunner" in value


def _from(ref: Ref, names: set[str], dotted: bool) -> bool:
    """`ref` names an object of a package imported under one of `names` (or dot-imported: `dotted`)."""
    return ref.qualifier in names if ref.selected else dotted


def _code_findings(path: str, file: GoFile | None, label: str, code: Code, lits: tuple[Lit, ...]) -> list[_Found]:
    """The test-code and test-mode rules on one declaration's code (or one line's, `file` unknown); `lits`
    adds the literals of the constants it names."""
    out: list[_Found] = []
    # Test code and every function it calls run in the test binary: what may not run there is read in
    # non-test code too.
    who = "test code" if path.endswith("_test.go") else _NON_TEST
    for g, ref in _refs(code.refs, file, _IN_TESTS):
        out.append(_Found(g.rule, g.key, ref.line, f"{who} uses {g.key} in {label}, which {g.why}"))
    sys_names = {q for p in _SYS for q in _qualifiers(file, p)}
    for call in code.calls:
        out.extend(_test_call_findings(call, sys_names, label, who))
    for lit in code.lits:
        if _FRAMING in lit.value:
            out.append(_Found("framing_byte", "0x16", lit.line, f"{who} in {label} holds {_FRAMING_WHY}"))
    if path.endswith("_test.go"):
        return out
    flag_names = _qualifiers(file, "flag")
    dotted_flag = file is not None and "flag" in file.dots
    for call in code.calls:
        callee, first = call.callee, call.first
        spelled = callee[1:] if callee[:1] and callee[0] in flag_names else callee if dotted_flag else ()
        if spelled in _LOOKUPS and first is not None and first.startswith("test."):
            detail = f"non-test code looks up the test binary's flag {first!r} in {label}: it asks whether tests run"
            out.append(_Found("test_mode_probe", f"flag:{first}", call.line, detail))
    os_names = _qualifiers(file, "os")
    dotted_os = file is not None and "os" in file.dots
    argv = next((r for r in code.refs if r.name in ("Args", "Executable") and _from(r, os_names, dotted_os)), None)
    literal = next((lit for lit in (*code.lits, *lits) if not lit.rune and _test_binary_string(lit.value)), None)
    if argv is not None and literal is not None:
        detail = f"non-test code compares os.{argv.name} with {literal.value!r} in {label}"
        out.append(_Found("test_mode_probe", f"os.{argv.name}", argv.line, detail + ": it asks whether tests run"))
    walks = [
        r
        for pkg, names in _STACK_WALKS.items()
        for r in code.refs
        if r.name in names and _from(r, _qualifiers(file, pkg), file is not None and pkg in file.dots)
    ]
    frame = next((lit for lit in (*code.lits, *lits) if not lit.rune and _test_frame_string(lit.value)), None)
    if walks and frame is not None:
        walk = min(walks, key=lambda r: r.line)
        detail = f"non-test code reads its callers with {walk.name} and compares them with {frame.value!r} in {label}"
        out.append(_Found("test_mode_probe", walk.name, walk.line, detail + ": it asks whether tests run"))
    return out


def _test_call_findings(call: Call, sys_names: set[str], label: str, who: str) -> list[_Found]:
    """Raw exit, exec or mprotect system calls, executable mmaps and conversions of 22 to a byte, in code a
    test binary runs (`who` says which)."""
    out: list[_Found] = []
    callee = call.callee
    from_sys = len(callee) == 2 and callee[0] in sys_names
    if from_sys and "Syscall" in callee[1] and call.args and (m := _RAW_NUMBER.search(call.args[0])):
        detail = f"{who} in {label} makes the raw system call {m[1]} through {'.'.join(callee)}"
        out.append(_Found(_RAW_SYSCALLS[m[1]], m[1], call.line, detail))
    elif from_sys and "Syscall" in callee[1] and call.args and not _NAMED_NUMBER.fullmatch(call.args[0].strip()):
        name = ".".join(callee)
        detail = f"{who} in {label} makes a raw system call through {name} with a number it does not name as a "
        detail += "SYS_ constant: it could be exit or execve"
        out.append(_Found("exit_in_test", f"{name}(computed)", call.line, detail))
    if from_sys and callee[1] in ("Mmap", "MmapPtr") and any("PROT_EXEC" in a for a in call.args):
        detail = f"{who} in {label} maps executable memory with {'.'.join(callee)}, to run or patch machine code"
        out.append(_Found("rewrites_code", ".".join(callee), call.line, detail))
    if len(callee) == 1 and callee[0] in _BYTE_TYPES and len(call.args) == 1 and _go_int(call.args[0]) == 0x16:
        detail = f"{who} in {label} converts 22 to a {callee[0]} ({_FRAMING_WHY})"
        out.append(_Found("framing_byte", "0x16", call.line, detail))
    return out


@dataclass(frozen=True, slots=True)
class _Found:
    rule: Rule
    what: str
    line: int
    detail: str


def _init_findings(files: Mapping[str, GoFile], guarded: list[_Guarded]) -> list[tuple[_InitKey, str, int, str]]:
    """(key, path, line, detail) of each guarded object reachable from package initialisation, and of
    each testing.Testing in non-test code, in `files` (path -> parsed file)."""
    out: list[tuple[_InitKey, str, int, str]] = []
    packages: dict[tuple[str, str], list[tuple[str, Decl]]] = {}
    for path, file in files.items():
        packages.setdefault((posixpath.dirname(path), file.package), []).extend((path, d) for d in file.decls)
    for path, file in files.items():
        where = (posixpath.dirname(path), file.package)
        consts = {n: d.lits for _, d in packages[where] if d.label.startswith("const ") for n in d.names}
        for decl in file.decls:
            constant_lits = tuple(lit for r in decl.refs if not r.selected for lit in consts.get(r.name, ()))
            for f in _code_findings(path, file, decl.label, Code(decl.refs, decl.lits, decl.calls), constant_lits):
                out.append(((f.rule, f"{decl.label}@{path}", "", f.what), path, f.line, f.detail))
        for decl in file.decls if not path.endswith("_test.go") else ():
            for g, ref in _refs(decl.refs, file, _IN_CODE):
                detail = f"non-test code uses {g.key} in {decl.label}"
                out.append(((g.rule, f"{decl.label}@{path}", "", g.key), path, ref.line, detail))
        for decl in file.decls if path.endswith("_test.go") else ():
            if decl.label == "func TestMain":
                detail = f"TestMain in {where[0] or '.'} (package {file.package}) controls whether and how tests run"
                out.append((("new_test_main", f"{where[0]}/{file.package}", "", "TestMain"), path, decl.line, detail))
    for decls in packages.values():
        named: dict[str, list[tuple[str, Decl]]] = {}
        for path, decl in decls:
            for name in decl.names:
                named.setdefault(name, []).append((path, decl))
        for root_path, root in decls:
            if not root.root:
                continue
            root_label = f"{root.label}@{root_path}"
            seen = {id(root)}
            queue = [(root_path, root)]
            while queue:
                path, decl = queue.pop(0)
                file = files[path]
                for g, ref in _refs(decl.refs, file, guarded):
                    through = "" if decl is root else f"{decl.label}@{path}"
                    detail = f"{g.key} ({g.why}) is reachable from package initialization ({root_label})"
                    detail += f" through {through}" if through else ""
                    out.append(((g.rule, root_label, through, g.key), path, ref.line, detail))
                for ref in decl.refs:
                    for nxt in named.get(ref.name, []) if not ref.selected else ():
                        if id(nxt[1]) not in seen:
                            seen.add(id(nxt[1]))
                            queue.append(nxt)
    return out


def _post_image(pf: PatchedFile, before: str) -> str | None:
    """`before` with the hunks of `pf` applied; None when they do not fit it."""
    old = before.split("\n") if before else []
    out: list[str] = []
    pos = 0
    for hunk in pf:
        start = hunk.source_start if hunk.source_length == 0 else hunk.source_start - 1
        if start < pos or start > len(old):
            return None
        out.extend(old[pos:start])
        pos = start
        for line in hunk:
            text = line.value.rstrip("\r\n")
            if line.is_added:
                out.append(text)
            elif line.is_context or line.is_removed:
                if pos >= len(old) or old[pos].rstrip("\r") != text:
                    return None
                if line.is_context:
                    out.append(text)
                pos += 1
    return "\n".join(out + old[pos:])


def _init_reasons(patch: PatchSet, policy: ProtectedPolicy, base: _Base) -> list[PatchReason]:
    """Exits, flag changes and testing.Testing() the patch adds to code that runs at package
    initialisation (the analyzer's rules exit_at_init, flag_at_init, testing_testing), by spelling."""
    guarded = _guarded(policy)
    before: dict[str, GoFile] = {}
    after: dict[str, GoFile] = {}
    out: list[PatchReason] = []
    for pf in patch:
        source, target = _clean(pf.source_file), _clean(pf.target_file)
        existing = not pf.is_added_file or (base.known and target is not None and base.exists(target))
        if existing and source is None:
            source = target
        go_source = existing and source is not None and source.endswith(".go")
        go_target = target is not None and target.endswith(".go")
        if pf.is_binary_file or not (go_source or go_target):
            continue
        for line in (ln for hunk in pf for ln in hunk if ln.is_added and go_target):
            if _LINKNAME.match(line.value):
                detail = f"go:linkname reaches unexported runtime or package code: {_snip(line.value)}"
                out.append(PatchReason(rule="linkname", path=target or "", line=line.target_line_no, detail=detail))
        old = base.read(source) if existing and source is not None else ""
        new = _post_image(pf, old) if old is not None and go_target else None
        if go_target and new is None:
            out.extend(_hunk_init_reasons(pf, target or "", guarded))  # no pre-image to rebuild it from
            continue
        if go_source and old is not None and source is not None:
            before[source] = go_syntax.read_file(old)
        if new is not None and target is not None:
            after[target] = go_syntax.read_file(new)
    seen = collections.Counter(key for key, *_ in _init_findings(before, guarded))
    for key, path, line, detail in _init_findings(after, guarded):
        if seen[key] > 0:
            seen[key] -= 1
        else:
            out.append(PatchReason(rule=key[0], path=path, line=line, detail=detail[:300]))  # pyright: ignore[reportArgumentType]
    return out


_LINKNAME = re.compile(r"^\s*//go:linkname\b")
_INIT_HEADING = re.compile(r"^(?:func\s+init\s*\(\s*\)|var\b)")
_TOP_LEVEL_LINE = re.compile(r"^[^\s})/]")


def _hunk_init_reasons(pf: PatchedFile, path: str, guarded: list[_Guarded]) -> list[PatchReason]:
    """The init rules on the hunks alone (no pre-image): an added line is at package initialisation when
    the nearest top-level line above it in the hunk, or git's hunk heading, opens `func init()` or a var.
    The test-code and test-mode rules read the added lines of each hunk as one piece of code."""
    plain = [g for g in guarded if not g.method]  # a method's receiver type needs the imports to guess
    out: list[PatchReason] = []
    for hunk in pf:
        added = [line for line in hunk if line.is_added]
        fragment = go_syntax.fragment("\n".join(line.value.rstrip("\r\n") for line in added))
        for f in _code_findings(path, None, "the added lines", fragment, ()):
            where = added[f.line - 1].target_line_no if 0 < f.line <= len(added) else None
            out.append(PatchReason(rule=f.rule, path=path, line=where, detail=f.detail[:300]))
        heading = (hunk.section_header or "").strip()
        for line in hunk:
            text = line.value.rstrip("\r\n")
            if line.is_removed or not (line.is_added or line.is_context):
                continue
            if _TOP_LEVEL_LINE.match(text):
                heading = text
            if not line.is_added:
                continue
            code = go_syntax.fragment_refs(text)
            if _INIT_HEADING.match(heading):
                for g, _ref in _refs(code, None, plain):
                    detail = f"{g.key} ({g.why}) is added to code that runs at package initialization: {_snip(text)}"
                    out.append(PatchReason(rule=g.rule, path=path, line=line.target_line_no, detail=detail))
            for g, _ref in _refs(code, None, _IN_CODE) if not path.endswith("_test.go") else ():
                detail = f"non-test code uses {g.key}: {_snip(text)}"
                out.append(PatchReason(rule=g.rule, path=path, line=line.target_line_no, detail=detail))
    return out
