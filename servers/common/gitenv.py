"""How every goresolve git process runs, whichever server starts it.

No user or system config, no credential prompts, no hooks and a fixed locale: the same git on every
machine, and nothing a repository or a home directory can inject. The servers' own small git modules
start the processes (they are the only modules allowed to); this module only describes them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from servers.common.errors import UpstreamFailure

_HARDENED = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/false",
    "LC_ALL": "C",
}
# Passed before the sub-command: a repository's own hooks never run in goresolve's git.
NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}")


def is_repository(path: Path) -> bool:
    """A git work tree's root (`.git`, a directory or a worktree's file) or a bare repository: what `git clone
    PATH` accepts. A folder inside another repository's work tree is not one."""
    return (path / ".git").exists() or (
        (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()
    )


class GitFailed(UpstreamFailure):
    """git exited non-zero or timed out; `detail` holds its stderr (logged, never shown to the model)."""


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The complete environment for a git process: PATH, an empty HOME, the hardening, then `extra`."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull, **_HARDENED, **(extra or {})}
