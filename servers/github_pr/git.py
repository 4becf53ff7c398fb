"""The one place github-pr runs git: argument lists, never a shell, bounded by a timeout.

Two uses: the local backend keeps a bare cache of each remote, builds commits in it with a
throwaway index (no checkout ever happens) and pushes them; the GitHub backend uses `apply_to_files`
to apply a unified diff to a handful of files in a scratch index.
Both apply with `git apply --cached` and hand the caller git's own diff of the staged result
(`staged`) before anything is committed: the policy judges what git did, not what the text said.
No function here ever force-pushes: updates are fast-forwards on top of the bot's own commits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from servers.common.errors import Conflict
from servers.common.gitenv import NO_HOOKS, GitFailed, git_env, is_repository

from .models import Applied, AppliedCheck, Author

_TIMEOUT_S = 60.0
# git's diff of a staged change, as `check_applied` expects it: binary hunks, renames detected, and
# paths unquoted (quotePath off) so they match the pre-images' keys.
_STAGED_DIFF = ("diff", "--cached", "--binary", "-M", "--no-color", "--no-ext-diff")


def run(
    args: list[str], *, cwd: Path | None = None, stdin: bytes | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Run `git <args>` and return stdout.

    Raises:
        GitFailed: git exited non-zero or did not finish within the timeout.
    """
    return run_bytes(args, cwd=cwd, stdin=stdin, env=env).decode("utf-8", "surrogateescape")


def run_bytes(
    args: list[str], *, cwd: Path | None = None, stdin: bytes | None = None, env: Mapping[str, str] | None = None
) -> bytes:
    """`run`, returning stdout undecoded. Raises: GitFailed."""
    try:
        proc = subprocess.run(
            ["git", *NO_HOOKS, *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            env=git_env(env),
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitFailed("git timed out", detail=" ".join(args[:3])) from exc
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()
        raise GitFailed(f"git {args[0]} failed", detail=stderr[-4000:])
    return proc.stdout


def sync_cache(remote: Path, cache: Path) -> None:
    """Create (once) and fetch a bare cache of `remote`; its branches land under refs/remotes/origin/.

    Raises:
        GitFailed: the remote cannot be read.
    """
    if not (cache / "HEAD").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        run(["init", "--quiet", "--bare", str(cache)])
    run(["--git-dir", str(cache), "fetch", "--quiet", "--prune", str(remote), "+refs/heads/*:refs/remotes/origin/*"])


def ensure_bare(source: Path, target: Path) -> Path:
    """`target`, the local backend's stand-in remote for `source`: a bare clone made on first use, kept
    when `source` is gone.

    Raises:
        GitFailed: `source` is not a git repository, or `target` holds history `source` does not have
            (another repository was registered under the same name before: its branches are that one's).
    """
    if not (target / "HEAD").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        run(["clone", "--quiet", "--bare", str(source), str(target)])
        return target
    head = rev_parse(target, "HEAD")
    if head is None or not is_repository(source):
        return target  # `source` gone (or no longer a repository): the remote serves as it was
    try:  # `source` may be a work tree: -C lets git find its .git
        run(["-C", str(source), "cat-file", "-e", f"{head}^{{commit}}"])
    except GitFailed:
        raise GitFailed(
            f"the local remote {target.name} holds history that {source} does not have (another repository "
            f"registered under this name before); remove {target} or register {source} under another name"
        ) from None
    return target


def refresh_bare(source: Path, target: Path, own_prefix: str) -> None:
    """Bring the stand-in remote `target` up to date with `source`'s branches, but those under `own_prefix`
    (the bot's own, which live only there), so a pull request is based on the commits the user has now.
    Fast-forwards only, like any push: a branch whose history was rewritten is left as it was.

    Raises:
        GitFailed: the fetch failed (`source` gone or unreadable, or a branch that cannot fast-forward).
    """
    own = f"^refs/heads/{own_prefix}/*"
    run(["--git-dir", str(target), "fetch", "--quiet", str(source), "refs/heads/*:refs/heads/*", own])


def rev_parse(git_dir: Path, ref: str) -> str | None:
    """The commit `ref` names in `git_dir`, or None when it does not exist."""
    try:
        return run(["--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]).strip()
    except GitFailed:
        return None


def rev_parse_tree(git_dir: Path, commit: str) -> str | None:
    """The tree of `commit` in `git_dir`, or None when there is no such commit."""
    try:
        return run(["--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{commit}^{{tree}}"]).strip()
    except GitFailed:
        return None


def refs_with_prefix(git_dir: Path, prefix: str) -> dict[str, str]:
    """Refs whose full name starts with `prefix` (e.g. 'refs/remotes/origin/goresolve/SVC-1-'), to their sha.

    Raises:
        GitFailed: the repository cannot be read.
    """
    out = run(["--git-dir", str(git_dir), "for-each-ref", "--format=%(refname) %(objectname)"])
    return {name: sha for name, sha in (line.split(" ", 1) for line in out.splitlines()) if name.startswith(prefix)}


def commit_message(git_dir: Path, sha: str) -> tuple[str, str]:
    """(author email, full message) of commit `sha`.

    Raises:
        GitFailed: no such commit.
    """
    out = run(["--git-dir", str(git_dir), "log", "-1", "--format=%ae%n%B", sha])
    email, _, message = out.partition("\n")
    return email, message


def build_commit(
    git_dir: Path,
    *,
    tree_of: str,
    parent: str,
    patch: str,
    message: str,
    author: Author,
    check: AppliedCheck | None = None,
    reuse_parent: bool = False,
) -> str:
    """Commit `patch` applied to the tree of `tree_of`, with parent `parent`; nothing is checked out.

    `check` sees git's diff of the staged result against `tree_of` before any object is written.
    With `reuse_parent`, a result whose tree is already `parent`'s makes no commit: `parent` is returned.

    Raises:
        Conflict: the patch does not apply to `tree_of` (the message names git's first complaint).
        GitFailed: any other git failure.
        Whatever `check` raises (nothing is committed then).
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        # The patch's blobs go to a quarantine object directory (as git's receive-pack does), which can
        # still read every object of the repository; they reach the repository only once `check` passed.
        objects = git_dir / "objects"
        quarantine = Path(tmp) / "objects"
        quarantine.mkdir()
        quarantined = {
            **env,
            "GIT_OBJECT_DIRECTORY": str(quarantine),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": _alternate(objects.resolve()),
        }
        git = ["--git-dir", str(git_dir)]
        run([*git, "read-tree", tree_of], env=env)
        try:
            run([*git, "apply", "--cached", "--whitespace=nowarn", "-"], stdin=patch.encode(), env=quarantined)
        except GitFailed as exc:
            first = (exc.detail or "").splitlines()[:1]
            raise Conflict(f"patch does not apply to {tree_of[:12]}: {first[0] if first else 'rejected'}") from exc
        if check is not None:
            check(staged(git_dir, tree_of, quarantined))
        _migrate_objects(quarantine, objects)
        tree = run([*git, "write-tree"], env=env).strip()
        if reuse_parent and rev_parse_tree(git_dir, parent) == tree:
            return parent
        ident = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        return run([*git, "commit-tree", tree, "-p", parent, "-F", "-"], stdin=message.encode(), env=ident).strip()


def _alternate(path: Path) -> str:
    """`path` as one entry of GIT_ALTERNATE_OBJECT_DIRECTORIES: a list split at ':', so such a path is
    C-quoted (which git reads in an entry that starts with '"')."""
    text = str(path)
    if ":" not in text and not text.startswith('"'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _migrate_objects(quarantine: Path, objects: Path) -> None:
    """Move the loose objects of `quarantine` into the object directory `objects` (those it lacks).

    Each object is copied under a temporary name beside its destination and renamed into place, so a
    reader never sees a partial object; objects are named by their content, so one already there is kept.
    """
    for source in sorted(quarantine.glob("[0-9a-f][0-9a-f]/*")):
        target = objects / source.parent.name / source.name
        if target.exists():
            continue
        target.parent.mkdir(exist_ok=True)
        partial = target.parent / f"tmp_obj_goresolve_{os.getpid()}_{source.name}"
        shutil.copyfile(source, partial)
        partial.chmod(0o444)
        os.replace(partial, target)


def push(git_dir: Path, remote: Path, sha: str, branch: str) -> None:
    """Push `sha` to `refs/heads/<branch>` of `remote`. Never forced: a non-fast-forward is refused.

    Raises:
        Conflict: the remote branch moved (someone else pushed); nothing was changed.
        GitFailed: any other git failure.
    """
    try:
        run(["--git-dir", str(git_dir), "push", "--quiet", "--porcelain", str(remote), f"{sha}:refs/heads/{branch}"])
    except GitFailed as exc:
        if "rejected" in (exc.detail or "") or "non-fast-forward" in (exc.detail or ""):
            raise Conflict(f"branch {branch} changed on the remote; not overwriting it") from exc
        raise


def staged(git_dir: Path, base: str, env: Mapping[str, str]) -> Applied:
    """git's diff of the index named by `env` (GIT_INDEX_FILE) against the tree of `base`, with the
    pre-images (from `base`) of every path that diff names.

    Raises:
        GitFailed: git failed.
    """
    git = ["-c", "core.quotePath=false", "--git-dir", str(git_dir)]
    diff = run([*git, *_STAGED_DIFF, base], env=env)
    names = run([*git, "diff", "--cached", "--name-only", "--no-renames", "-z", base], env=env)
    paths = sorted({p for p in names.split("\0") if p})
    blobs = read_blobs(git_dir, base, paths)
    texts = {p: (b.decode("utf-8", "replace") if b is not None else None) for p, b in blobs.items()}
    return Applied(diff=diff, base_files=texts)


def read_blobs(git_dir: Path, tree: str, paths: list[str]) -> dict[str, bytes | None]:
    """The contents of `paths` in `tree` (None for a path that is not a file there), in one git process.

    Raises:
        GitFailed: git failed.
    """
    if not paths or any("\n" in p for p in paths):
        return {p: None for p in paths}  # a newline cannot be named in --batch input; no such file is read
    query = "".join(f"{tree}:{p}\n" for p in paths).encode("utf-8", "surrogateescape")
    out = run_bytes(["--git-dir", str(git_dir), "cat-file", "--batch"], stdin=query)
    result: dict[str, bytes | None] = {}
    pos = 0
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].split(b" ")
        pos = end + 1
        if len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            result[path] = out[pos : pos + size]
            pos += size + 1
        else:
            if len(header) == 3:  # a tree or a submodule: skip its body
                pos += int(header[2]) + 1
            result[path] = None
    return result


def patch_paths(patch: str) -> set[str]:
    """Every path `git apply` (as the backends run it, -p1) reads or writes for `patch`: each file's
    old and new name, as git itself reads them from the diff.

    git names them (`--numstat`, which reports a file's new name, and again reversed, which reports
    its old name), so they are the ones the apply touches however the diff spells them: any first
    path component stripped, C-quoted names decoded, a traditional diff's choice between its `---`
    and `+++` names, a creation announced by an epoch timestamp.

    Raises:
        Conflict: git cannot read the patch.
        GitFailed: any other git failure.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-paths-") as tmp:
        git_dir = Path(tmp) / "scratch.git"  # no work tree: git adds no directory prefix to the names
        run(["init", "--quiet", "--bare", str(git_dir)])
        paths: set[str] = set()
        for direction in ((), ("-R",)):
            args = ["--git-dir", str(git_dir), "apply", "--numstat", "-z", *direction, "-"]
            try:
                out = run(args, stdin=patch.encode())
            except GitFailed as exc:
                first = (exc.detail or "").splitlines()[:1]
                raise Conflict(f"patch does not apply: {first[0] if first else 'rejected'}") from exc
            # -z: "<added>\t<deleted>\t<path>\0", the path unquoted (it may hold tabs and newlines)
            paths.update(record.split("\t", 2)[2] for record in out.split("\0") if record)
        return paths


@dataclass(frozen=True, slots=True)
class ScratchResult:
    """The files a patch touched, as git left them (path -> (mode, content), None when deleted), and
    git's diff of that result."""

    files: dict[str, tuple[str, bytes] | None]
    applied: Applied


def apply_to_files(
    patch: str, files: Mapping[str, tuple[str, bytes]], check: AppliedCheck | None = None
) -> ScratchResult:
    """Apply `patch` with `git apply --cached` to an index holding only `files` (path -> (mode, content)).

    `check` sees git's diff of the result against those files before anything is returned; the other
    files of the repository are unchanged by construction, so this diff is the whole change.

    Raises:
        Conflict: the patch does not apply to the given contents.
        GitFailed: any other git failure.
        Whatever `check` raises.
    """
    with tempfile.TemporaryDirectory(prefix="goresolve-apply-") as tmp:
        git_dir = Path(tmp) / "scratch.git"
        run(["init", "--quiet", "--bare", str(git_dir)])
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git = ["--git-dir", str(git_dir)]
        entries: list[str] = []
        for path, (mode, content) in files.items():
            sha = run([*git, "hash-object", "-w", "--stdin"], stdin=content).strip()
            entries.append(f"{mode} {sha}\t{path}\0")
        run([*git, "update-index", "-z", "--index-info"], stdin="".join(entries).encode(), env=env)
        base = run([*git, "write-tree"], env=env).strip()
        try:
            run([*git, "apply", "--cached", "--whitespace=nowarn", "-"], stdin=patch.encode(), env=env)
        except GitFailed as exc:
            first = (exc.detail or "").splitlines()[:1]
            raise Conflict(f"patch does not apply: {first[0] if first else 'rejected'}") from exc
        applied = staged(git_dir, base, env)
        if check is not None:
            check(applied)
        names = run([*git, "diff", "--cached", "--name-only", "--no-renames", "-z", base], env=env)
        touched = sorted({p for p in names.split("\0") if p})
        listed = run([*git, "ls-files", "--stage", "-z", "--", *touched], env=env) if touched else ""
        staged_entries: dict[str, tuple[str, str]] = {}
        for record in listed.split("\0"):
            if record:
                meta, _, path = record.partition("\t")
                mode, sha, _stage = meta.split(" ")
                staged_entries[path] = (mode, sha)
        out: dict[str, tuple[str, bytes] | None] = {}
        for path in touched:
            if path in staged_entries:
                mode, sha = staged_entries[path]
                out[path] = (mode, run_bytes([*git, "cat-file", "blob", sha]))
            else:
                out[path] = None
        return ScratchResult(files=out, applied=applied)
