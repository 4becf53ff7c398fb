"""Turn examples/sample-service into a bare git repository the servers can use as a remote.

    python examples/make_sample_repo.py DEST.git

The servers' local backends take a repository, not a folder inside one: go-test-runner and
code-search mirror it, github-pr pushes branches to it. DEST gets one commit on `main` holding the
module's files, with a fixed author and date, so the commit id depends only on the content (a
recording made against it stays valid). Running it again moves `main` to the current content.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "sample-service"
_ENV = {
    "GIT_AUTHOR_NAME": "sample-service",
    "GIT_AUTHOR_EMAIL": "sample-service@example.com",
    "GIT_COMMITTER_NAME": "sample-service",
    "GIT_COMMITTER_EMAIL": "sample-service@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


class SampleRepoError(Exception):
    """git failed; the message is git's own last line."""


def _git(*args: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args], check=True, capture_output=True, text=True, timeout=60, env=os.environ | _ENV | (env or {})
        )
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit status {exc.returncode}"]
        raise SampleRepoError(f"git {args[0] if args else ''}: {last[0]}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SampleRepoError(f"git could not run: {exc}") from exc
    return done.stdout.strip()


def make_repo(dest: Path, source: Path = SOURCE) -> str:
    """Create or update the bare repository `dest` from `source`; returns the commit on `main`.

    Raises:
        SampleRepoError: git failed (for example, `dest` exists and is not a git repository).
    """
    if not (dest / "HEAD").exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "--quiet", "--bare", "--initial-branch=main", str(dest))
    with tempfile.TemporaryDirectory() as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git("--git-dir", str(dest), "--work-tree", str(source), "add", "--all", "--", ".", env=index)
        tree = _git("--git-dir", str(dest), "write-tree", env=index)
    commit = _git("--git-dir", str(dest), "commit-tree", tree, "-m", "sample-service")
    _git("--git-dir", str(dest), "update-ref", "refs/heads/main", commit)
    return commit


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/make_sample_repo.py DEST.git")
    print(make_repo(Path(sys.argv[1])))
