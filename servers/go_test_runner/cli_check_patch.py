"""`goresolve check-patch PATCH_FILE --repo PATH [--json]`: the patch policy for people and CI.

The patch is checked as text first (the line rules), then applied with `git apply` to a copy of
the checkout, and git's own diff of the result goes through the same check the servers run
(`servers.common.tamper.guard.check_applied`): non-Go, binary and mode rules, and the Go tamper
analyzer on the base and the patched tree (with `static_analysis` off, which files tests read comes from
the text of the checkout's _test.go files).

Exit codes: 0 the patch is allowed, 1 it is refused (each reason printed with file and line),
2 the command could not run (unreadable patch, bad policy file, a patch that does not apply, no
go toolchain). With `--json` the verdict is printed as
`{"allowed": bool, "reasons": [{"rule", "path", "line", "detail"}]}`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from servers.common.errors import ConfigError, Conflict, UpstreamFailure
from servers.common.patch_policy import PatchVerdict, changed_paths, check_patch
from servers.common.policy import ProtectedPolicy, load_policy_file
from servers.common.settings import DEFAULT_POLICY_DIR
from servers.common.tamper import tool
from servers.common.tamper.facts import Facts, read_test_sources, text_facts
from servers.common.tamper.guard import check_applied, owning_modules
from servers.go_test_runner.confinement import go_mod_files, nested_modules
from servers.go_test_runner.repo_files import RepoFileRefused

EXIT_ALLOWED, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "goresolve"


def load_protected(policy_dir: Path) -> ProtectedPolicy:
    """protected.yaml from `policy_dir`, or the built-in defaults when the file does not exist.

    Raises:
        ConfigError: the file exists but is invalid.
    """
    path = policy_dir / "protected.yaml"
    if not path.exists():
        return ProtectedPolicy()
    policy = load_policy_file(path, ProtectedPolicy)
    assert isinstance(policy, ProtectedPolicy)
    return policy


def _read_base(repo: Path, paths: frozenset[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for rel in paths:
        candidate = (repo / rel).resolve()
        ok = candidate.is_relative_to(repo.resolve()) and candidate.is_file()
        out[rel] = candidate.read_text(encoding="utf-8", errors="replace") if ok else None
    return out


def verdict_for_checkout(
    repo: Path, diff: str, policy: ProtectedPolicy, cache_dir: Path, *, base: Facts | None = None
) -> PatchVerdict:
    """The verdict on `diff` for the checkout at `repo`, as go-test-runner would give it.

    `base`, when given, are the analyzer's facts for the modules of `repo` the patch changes, from an
    earlier call (they are computed otherwise). Each module is analyzed in its own directory, nested
    modules included, as go-test-runner does.

    Raises:
        Conflict: the patch does not apply.
        UpstreamFailure: git, go or the analyzer failed; ConfigError: no go toolchain.
    """
    verdict = check_patch(diff, policy, repo_root=repo)
    if not verdict.allowed:
        return verdict
    with tool.applied_copy(repo, diff) as (copy, applied):
        patched: Facts | None = None
        if policy.static_analysis:
            go = shutil.which("go")
            if go is None:
                raise ConfigError("the go toolchain is needed for the static tamper analysis; no `go` on PATH")
            binary = tool.build_analyzer(go, cache_dir)
            modules = sorted(owning_modules(changed_paths(applied), nested_modules(repo, go_mod_files(repo))))

            def facts(tree: Path) -> Facts:
                parts = [tool.analyze(binary, go, tree, policy, offline=False, module=m) for m in modules]
                return Facts.merged(parts)

            base = base or facts(repo)
            patched = facts(copy)
        else:  # which files tests read, from the text of the checkout's _test.go files (test_fixture)
            base = base or text_facts(read_test_sources(repo))
        base_files = _read_base(repo, changed_paths(applied))
        return check_applied(applied, policy, base_files=base_files, base=base, patched=patched)


def check_patch_command(
    patch_file: Path, repo: Path, as_json: bool, *, policy_dir: Path | None = None, cache_dir: Path | None = None
) -> int:
    """Check `patch_file` against the patch policy for the checkout at `repo`; returns the exit code."""
    if policy_dir is not None and not policy_dir.is_dir():  # a typo would check against the defaults
        print(f"error: --policy-dir {policy_dir} is not a directory", file=sys.stderr)
        return EXIT_ERROR
    try:
        policy = load_protected(policy_dir or DEFAULT_POLICY_DIR)
        diff = patch_file.read_bytes().decode("utf-8", errors="surrogateescape")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: cannot read {patch_file}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    if not repo.is_dir():
        print(f"error: --repo {repo} is not a directory", file=sys.stderr)
        return EXIT_ERROR
    repo = repo.resolve()  # the analyzer runs in the module's directory: a relative path would be read from there
    try:
        verdict = verdict_for_checkout(repo, diff, policy, cache_dir or DEFAULT_CACHE_DIR)
    except (Conflict, UpstreamFailure, ConfigError, RepoFileRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(verdict.model_dump_json() if as_json else verdict.render())
    return EXIT_ALLOWED if verdict.allowed else EXIT_REFUSED


def command(
    patch_file: Annotated[Path, typer.Argument(help="Unified diff to check.")],
    repo: Annotated[Path, typer.Option("--repo", help="Checkout the patch applies to.")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
    policy_dir: Annotated[Path | None, typer.Option(help="Directory holding protected.yaml.")] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(envvar="GORESOLVE_CACHE_DIR", help="Where the compiled tamper analyzer is kept."),
    ] = None,
) -> None:
    """Check a patch against the protected-paths and test-tampering policy (exit 0 allowed, 1 refused)."""
    raise typer.Exit(check_patch_command(patch_file, repo, as_json, policy_dir=policy_dir, cache_dir=cache_dir))
