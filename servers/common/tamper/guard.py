"""The one check every consumer runs on the diff that `git apply` actually produced.

go-test-runner (before running), github-pr (before pushing) and `goresolve check-patch` each apply
the patch with git, take git's own diff of the result, and call `check_applied` with it: a patch
whose text hides a change from a line-based reading (odd headers, renames, modes) is judged by
what it did, never only by what it said.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from servers.common.patch_policy import MAX_REASONS, PatchReason, PatchVerdict, changed_paths, check_patch
from servers.common.policy import ProtectedPolicy
from servers.common.tamper.facts import Facts, compare, non_go_reasons


def nested_owner(path: str, nested: Iterable[str]) -> str | None:
    """The innermost of the `nested` module directories that holds `path` (relative to the root); None: the
    root module's."""
    inside = [d for d in nested if path == d or path.startswith(f"{d}/")]
    return max(inside, key=len) if inside else None


def owning_modules(changed: Iterable[str], nested: Iterable[str]) -> set[str]:
    """The modules whose files a patch changes, by directory ("" the root module's): the static guard
    analyzes each of them, so no changed Go file goes unchecked."""
    paths = list(changed)
    # a go.mod the patch adds starts a module too (when policy lets module files change)
    modules = [*nested, *(p.removesuffix("/go.mod") for p in paths if p.endswith("/go.mod"))]
    return {nested_owner(path, modules) or "" for path in paths}


def check_applied(
    applied_diff: str,
    policy: ProtectedPolicy,
    *,
    base_files: Mapping[str, str | None] | None,
    base: Facts | None,
    patched: Facts | None,
) -> PatchVerdict:
    """The verdict on an applied patch: the line rules, then non-Go, binary and mode rules, then the
    static comparison of the analyzer's facts for the base and the patched tree.

    `base_files` are the pre-images of the files the diff names (read before applying); `base` and
    `patched` the analyzer's facts (None when the analysis could not run: with `static_analysis`
    on, that is itself a reason to refuse), covering every module the patch changes (`owning_modules`).
    Never raises.
    """
    verdict = check_patch(applied_diff, policy, base_files=base_files)
    reasons = list(verdict.reasons)
    if not verdict.allowed and reasons and reasons[0].rule in ("unparseable_patch", "patch_too_large"):
        return verdict
    changed = changed_paths(applied_diff)
    reasons.extend(non_go_reasons(changed, policy, base))
    if policy.static_analysis:
        if base is None or patched is None:
            detail = "the Go tamper analyzer could not check this patch"
            reasons.append(PatchReason(rule="analysis_failed", path="", detail=detail))
        else:
            reasons.extend(compare(base, patched, changed))
    unique = list(dict.fromkeys(reasons))
    unique.sort(key=lambda r: (r.path, r.line or 0, r.rule))
    return PatchVerdict(allowed=not unique, reasons=unique[:MAX_REASONS])
