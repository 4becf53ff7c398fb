"""The patch policy shared by go-test-runner (before running) and github-pr (before pushing).

`check_patch(diff_text, policy)` parses a unified diff with `unidiff` and returns a `PatchVerdict`:
allowed, or refused with one `PatchReason` per problem (rule, path, line, detail). It never raises:
a diff that cannot be parsed is itself a reason. Rules, in the order they are checked:

- size over `max_patch_bytes`; unparseable diff; unsafe paths (absolute, `..`, `.git/`); symlinks
  and submodules; `go.mod`/`go.sum` unless `allow_go_mod`; paths matching a protected glob;
- build constraints that hide code (`//go:build` changed in an existing Go file, or an unknown tag
  such as `ignore` in a new one; a Go file renamed to a GOOS/GOARCH name or away from `.go`);
- existing `_test.go` files are read-only (when `existing_tests_read_only`): deleting or renaming
  one, or changing any existing line, is refused with the most specific reason found (deleted
  test function, removed assertion, changed expected value, inserted skip, ...). Pure additions of
  whole top-level declarations (a new test function, a new import) are allowed, and so are new rows
  of a table test (composite-literal elements that do not mention `t`, skip or exit, outside any
  list named like a skip list) and new test files, unless the added code could stop other tests
  running (`TestMain`, `init`, `os.Exit`, ...).
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict
from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk, Line, PatchedFile, PatchSet

from servers.common import diffs
from servers.common.policy import ProtectedPolicy

Rule = Literal[
    "patch_too_large",
    "unparseable_patch",
    "unsafe_path",
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
    if name is None or name == "/dev/null":
        return None
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]
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
            out.append(PatchReason(rule="unsafe_path", path=p[:200], detail=why))
    if out:
        return out
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
    if policy.existing_tests_read_only:
        original = base.read(source) if source is not None and existing else None
        out.extend(_test_file_reasons(pf, source, target, existing, original, policy.static_analysis))
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
