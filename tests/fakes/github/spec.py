"""GitHub's REST description (npm `@octokit/openapi`), installed once and reduced to what the fake serves.

`ensure_spec()` runs `npm install --prefix <cache> @octokit/openapi@<VERSION>` the first time and
writes `reduced.json`: the path items of the operations in `OPERATIONS` (only those methods) plus
the closure of every `#/components/...` they reference. The full file is 13 MB; the reduced one
loads in milliseconds, so every test session can validate every response the fake serves.

    python -m tests.fakes.github.spec          # what tests/fakes/github/install_spec.sh runs

The cache lives in `$GORESOLVE_OCTOKIT_CACHE`, default `<repo>/.goresolve/cache/octokit-openapi-<VERSION>`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

VERSION = "23.0.2"
PACKAGE = f"@octokit/openapi@{VERSION}"
REPO_ROOT = Path(__file__).resolve().parents[3]

# operationId -> (method, path template) the fake implements; checked against the spec at reduction.
OPERATIONS: dict[str, tuple[str, str]] = {
    "repos/get": ("get", "/repos/{owner}/{repo}"),
    "repos/get-branch": ("get", "/repos/{owner}/{repo}/branches/{branch}"),
    "repos/get-branch-protection": ("get", "/repos/{owner}/{repo}/branches/{branch}/protection"),
    "repos/get-branch-rules": ("get", "/repos/{owner}/{repo}/rules/branches/{branch}"),
    # github-pr proves a branch is its own from GitHub's record of who pushed to it.
    "repos/list-activities": ("get", "/repos/{owner}/{repo}/activity"),
    "users/get-authenticated": ("get", "/user"),
    "git/get-ref": ("get", "/repos/{owner}/{repo}/git/ref/{ref}"),
    "git/list-matching-refs": ("get", "/repos/{owner}/{repo}/git/matching-refs/{ref}"),
    "git/create-ref": ("post", "/repos/{owner}/{repo}/git/refs"),
    "git/update-ref": ("patch", "/repos/{owner}/{repo}/git/refs/{ref}"),
    # github-pr deletes only a branch it has just created under its prefix, when it lost a race.
    "git/delete-ref": ("delete", "/repos/{owner}/{repo}/git/refs/{ref}"),
    "git/get-commit": ("get", "/repos/{owner}/{repo}/git/commits/{commit_sha}"),
    "git/create-commit": ("post", "/repos/{owner}/{repo}/git/commits"),
    "git/get-tree": ("get", "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
    "git/create-tree": ("post", "/repos/{owner}/{repo}/git/trees"),
    "git/get-blob": ("get", "/repos/{owner}/{repo}/git/blobs/{file_sha}"),
    "git/create-blob": ("post", "/repos/{owner}/{repo}/git/blobs"),
    "pulls/list": ("get", "/repos/{owner}/{repo}/pulls"),
    "pulls/create": ("post", "/repos/{owner}/{repo}/pulls"),
    "pulls/get": ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    "pulls/update": ("patch", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    "pulls/request-reviewers": ("post", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"),
    # github-pr comments on a ticket's issue only after reading it (an issue, not a pull request).
    "issues/get": ("get", "/repos/{owner}/{repo}/issues/{issue_number}"),
    "issues/create-comment": ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    "issues/list-comments": ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    "issues/add-assignees": ("post", "/repos/{owner}/{repo}/issues/{issue_number}/assignees"),
    "issues/add-labels": ("post", "/repos/{owner}/{repo}/issues/{issue_number}/labels"),
}


def cache_dir() -> Path:
    default = REPO_ROOT / ".goresolve" / "cache" / f"octokit-openapi-{VERSION}"
    return Path(os.environ.get("GORESOLVE_OCTOKIT_CACHE", default))


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def reduce_spec(full: dict[str, Any]) -> dict[str, Any]:
    """The part of `full` that describes `OPERATIONS`, with the closure of its component references.

    Raises:
        KeyError: an operation in OPERATIONS is not in the spec (GitHub renamed or removed it).
    """
    paths: dict[str, Any] = {}
    for op_id, (method, template) in OPERATIONS.items():
        operation = full["paths"][template][method]
        if operation.get("operationId") != op_id:
            raise KeyError(f"{method.upper()} {template} is {operation.get('operationId')}, not {op_id}")
        item = paths.setdefault(template, {})
        item[method] = operation
        if "parameters" in full["paths"][template]:
            item["parameters"] = full["paths"][template]["parameters"]
    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        target = full["components"][section][name]
        components.setdefault(section, {})[name] = target
        _refs(target, pending)
    return {
        "openapi": full["openapi"],
        "info": {**full["info"], "title": full["info"]["title"] + f" (reduced for the github-pr fake, {PACKAGE})"},
        "servers": full["servers"],
        "paths": paths,
        "components": components,
    }


def ensure_spec() -> Path:
    """Install the package (once) and return the path of the reduced spec.

    Raises:
        RuntimeError: npm is missing or the install failed (the message says how to install by hand).
    """
    cache = cache_dir()
    reduced = cache / "reduced.json"
    full = cache / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"
    if reduced.exists() and reduced.stat().st_mtime >= Path(__file__).stat().st_mtime:
        return reduced
    if not full.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(f"npm not found; install Node.js, or run: npm install --prefix {cache} {PACKAGE}")
        cache.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--no-save", PACKAGE],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not full.exists():
            raise RuntimeError(f"npm install {PACKAGE} failed:\n{proc.stderr[-2000:]}")
    spec = reduce_spec(json.loads(full.read_text(encoding="utf-8")))
    tmp = reduced.with_suffix(".tmp")
    tmp.write_text(json.dumps(spec), encoding="utf-8")
    tmp.replace(reduced)
    return reduced


if __name__ == "__main__":
    path = ensure_spec()
    print(f"{PACKAGE}: {path} ({path.stat().st_size} bytes)")
    sys.exit(0)
