"""A task's repository, built from the Go module proxy: the one eval module that starts processes (go, git).

`materialize_module` downloads `module@version` (`go mod download`, verified against the checksum
database), copies it into a fresh git repository, commits it as the base, then applies and commits
the task's test patch on top — so the harness, not the agent, owns the tests. Commit dates and
authors are fixed, so the same task always yields the same commit ids.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
from pathlib import Path

_TIMEOUT_S = 300
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "goresolve-eval",
    "GIT_AUTHOR_EMAIL": "eval@goresolve.invalid",
    "GIT_COMMITTER_NAME": "goresolve-eval",
    "GIT_COMMITTER_EMAIL": "eval@goresolve.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}


class WorkspaceError(RuntimeError):
    """A module could not be downloaded, or a patch did not apply (the message says which)."""


async def _run(argv: list[str], cwd: Path | None = None, stdin: str | None = None) -> str:
    env = os.environ | _GIT_ENV | {"GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise WorkspaceError(f"{argv[0]} {argv[1]}: {exc.strerror}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), _TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise WorkspaceError(f"{argv[0]} {argv[1]} did not finish within {_TIMEOUT_S}s") from None
    if proc.returncode != 0:
        last = (err or out).decode(errors="replace").strip().splitlines()[-3:]
        raise WorkspaceError(f"{argv[0]} {argv[1]} failed: {' | '.join(last)[:400]}")
    return out.decode(errors="replace")


async def download_module(module: str, rev: str, *, work: Path | None = None) -> str:
    """Download `module@rev` into the module cache; returns its canonical version (a pseudo-version for a commit).

    Raises:
        WorkspaceError: the proxy does not have it, or go failed.
    """
    info = json.loads(await _run(["go", "mod", "download", "-json", f"{module}@{rev}"], cwd=work or Path.cwd()))
    if info.get("Error"):
        raise WorkspaceError(f"go mod download {module}@{rev}: {info['Error']}")
    return str(info["Version"])


async def go_env(name: str) -> Path | None:
    """The host go's value of `name` (GOCACHE, GOMODCACHE), or None when go cannot tell."""
    try:
        out = (await _run(["go", "env", name])).strip()
    except WorkspaceError:
        return None
    return Path(out) if out else None


async def _module_dir(module: str, version: str, work: Path) -> Path:
    info = json.loads(await _run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=work))
    if info.get("Error") or not info.get("Dir"):
        raise WorkspaceError(f"go mod download {module}@{version}: {info.get('Error', 'no directory')}")
    return Path(info["Dir"])


def _writable(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            p = Path(root) / name
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


async def materialize_module(module: str, version: str, dest: Path, *, test_patch: str) -> str:
    """Create the task repository at `dest` (branch `main`: base commit, then the test patch); returns HEAD.

    Raises:
        WorkspaceError: the download failed, `dest` exists, or the test patch does not apply.
    """
    if dest.exists():
        raise WorkspaceError(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = await _module_dir(module, version, dest.parent)
    shutil.copytree(source, dest)
    _writable(dest)
    await _run(["git", "init", "--quiet", "--initial-branch=main", str(dest)])
    await _run(["git", "add", "--all"], cwd=dest)
    await _run(["git", "commit", "--quiet", "--no-verify", "-m", f"{module}@{version}"], cwd=dest)
    await _run(["git", "apply", "--index", "--whitespace=nowarn", "-"], cwd=dest, stdin=test_patch)
    await _run(["git", "commit", "--quiet", "--no-verify", "-m", "eval: the task's test patch"], cwd=dest)
    return (await _run(["git", "rev-parse", "HEAD"], cwd=dest)).strip()
