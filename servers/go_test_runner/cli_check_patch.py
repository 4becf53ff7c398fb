"""`goresolve check-patch PATCH_FILE --repo PATH [--json]`: the patch policy for people and CI.

Exit codes: 0 the patch is allowed, 1 it is refused (each reason printed with file and line),
2 the command could not run (unreadable patch, bad policy file). With `--json` the verdict is
printed as `{"allowed": bool, "reasons": [{"rule", "path", "line", "detail"}]}`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from servers.common.errors import ConfigError
from servers.common.patch_policy import check_patch
from servers.common.policy import ProtectedPolicy, load_policy_file
from servers.common.settings import DEFAULT_POLICY_DIR

EXIT_ALLOWED, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


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


def check_patch_command(patch_file: Path, repo: Path, as_json: bool, *, policy_dir: Path | None = None) -> int:
    """Check `patch_file` against the protected-paths policy for the checkout at `repo`; returns the exit code."""
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
    verdict = check_patch(diff, policy, repo_root=repo)
    print(verdict.model_dump_json() if as_json else verdict.render())
    return EXIT_ALLOWED if verdict.allowed else EXIT_REFUSED


def command(
    patch_file: Annotated[Path, typer.Argument(help="Unified diff to check.")],
    repo: Annotated[Path, typer.Option("--repo", help="Checkout the patch applies to.")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
    policy_dir: Annotated[Path | None, typer.Option(help="Directory holding protected.yaml.")] = None,
) -> None:
    """Check a patch against the protected-paths and test-tampering policy (exit 0 allowed, 1 refused)."""
    raise typer.Exit(check_patch_command(patch_file, repo, as_json, policy_dir=policy_dir))
