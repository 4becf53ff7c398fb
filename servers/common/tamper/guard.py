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


def unanalyzed(changed: Iterable[str], policy: ProtectedPolicy, nested: Iterable[str]) -> list[PatchReason]:
    """With the static check on, a reason to refuse each Go file changed in a module below the root (its own
    go.mod, no go.work): the analyzer loads the root module's packages only, so the check fails closed."""
    if not policy.static_analysis:
        return []
    modules = list(nested)
    return [
        PatchReason(
            rule="analysis_failed",
            path=path,
            detail=f"in the nested module {owner} ({owner}/go.mod), which the Go tamper analyzer does not cover",
        )
        for path in sorted(changed)
        if path.endswith(".go") and (owner := nested_owner(path, modules)) is not None
    ]


def check_applied(
    applied_diff: str,
    policy: ProtectedPolicy,
    *,
    base_files: Mapping[str, str | None] | None,
    base: Facts | None,
    patched: Facts | None,
    nested: Iterable[str] = (),
) -> PatchVerdict:
    """The verdict on an applied patch: the line rules, then non-Go, binary and mode rules, then the
    static comparison of the analyzer's facts for the base and the patched tree.

    `base_files` are the pre-images of the files the diff names (read before applying); `base` and
    `patched` the analyzer's facts (None when the analysis could not run: with `static_analysis`
    on, that is itself a reason to refuse); `nested` the directories of the modules below the root,
    which the analyzer does not load (`unanalyzed`). Never raises.
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
    reasons.extend(unanalyzed(changed, policy, nested))
    unique = list(dict.fromkeys(reasons))
    unique.sort(key=lambda r: (r.path, r.line or 0, r.rule))
    return PatchVerdict(allowed=not unique, reasons=unique[:MAX_REASONS])
