"""The one glob syntax of every policy file: gitignore-like, `**` crosses directories, `*`, `?` and `[...]` do not.

protected.yaml's `paths` and `allow_non_go`, routing.yaml's `paths_any`/`paths_all` and escalation.yaml's
owner `path` all match repository paths with these functions, so one pattern means one thing wherever it
is written. Both sides use it (the servers' patch policy and the agent's router and escalation), so it
depends on nothing of ours.

- A pattern without a slash (other than a trailing one) matches a name at any depth (`*.md`,
  `CODEOWNERS`); a pattern with a slash is anchored at the repository root (`docs/*`, `.github/**`).
- `**/` matches any number of directories, none included (`**/auth/**` matches `auth/session.go`).
- Matching is case-sensitive, as git's paths are.
- `./` at the start anchors at the root like `/` (`./go.mod` is `/go.mod`), and `//` is `/`
  (`normalise`): git's paths have neither, so written literally they would match nothing.

Two modes. A *deny* list (what a patch may not touch, what routes a ticket to more care) matches a path
or anything under it: `go.mod` also matches `go.mod/x`, `docs/*` also matches `docs/gen/main.go`.
An *allow* list (`whole=True`: what a patch may change, "the ticket names only docs") matches the whole
path: `**/*.md` does not match `notes.md/build.sh`; a pattern ending in `/` names a directory and matches
everything under it.
"""

from __future__ import annotations

import functools
import re


def _bracket(body: str) -> str:
    """The regex for a glob bracket's body (between `[` and `]`): characters and ranges, `!` or `^` negates.

    Every character is escaped, so `[`, `&&`, `~~` and `||` stay characters (unescaped, Python reads
    them as a nested set or a set operation). A reversed range (`z-a`) matches nothing, as in git,
    where Python would refuse it. Like `*` and `?`, a bracket never matches `/`.
    """
    negate = len(body) > 1 and body[0] in "!^"
    chars = body[1:] if negate else body
    members: list[str] = []
    i = 0
    while i < len(chars):
        if i + 2 < len(chars) and chars[i + 1] == "-":
            low, high = chars[i], chars[i + 2]
            if low <= high:
                members.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 3
        else:
            members.append(re.escape(chars[i]))
            i += 1
    if negate:
        return f"[^/{''.join(members)}]"
    return f"[{''.join(members)}]" if members else "(?!)"


_SLASHES = re.compile(r"/{2,}")
_DOT_DIRS = re.compile(r"(?:^|/)\.(?=/|$)")


def normalise(pattern: str) -> str:
    """The pattern as it matches: surrounding blanks dropped, `//` made `/`, `./` segments dropped (a leading
    one anchors at the root, like a leading `/`)."""
    pat = _SLASHES.sub("/", pattern.strip())
    anchored = pat.startswith(("/", "./"))
    while True:
        dropped = _SLASHES.sub("/", _DOT_DIRS.sub("/", pat))
        if dropped == pat:
            break
        pat = dropped
    return "/" + pat.lstrip("/") if anchored else pat


def problem(pattern: str) -> str | None:
    """Why `pattern` can match no repository path (blank, `..`, or nothing but slashes), else None."""
    pat = normalise(pattern)
    if not pat.strip("/"):
        return f"{pattern!r} names no path"
    if ".." in pat.split("/"):
        return f"{pattern!r} has a '..' segment: repository paths never do, so it matches nothing"
    return None


@functools.lru_cache(maxsize=512)
def glob_regex(pattern: str, *, whole: bool = False) -> re.Pattern[str]:
    """Compile a glob for `fullmatch` against a repository path (relative, `/`-separated, no `./`).

    With `whole` (an allow list) the pattern must match the whole path; without it (a deny list) it
    matches the path or any of its parent directories.
    """
    stripped = normalise(pattern)
    directory = stripped.endswith("/")
    pat = stripped.rstrip("/")
    anchored = "/" in pat
    pat = pat.lstrip("/")
    out: list[str] = []
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        elif pat[i] == "[" and "]" in pat[i + 2 :]:
            end = pat.index("]", i + 2)
            out.append(_bracket(pat[i + 1 : end]))
            i = end + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    suffix = "/.+" if whole and directory else "" if whole else "(?:/.*)?"
    return re.compile(prefix + "".join(out) + suffix, re.DOTALL)


def matching_glob(path: str, patterns: tuple[str, ...] | list[str], *, whole: bool = False) -> str | None:
    """The first pattern that matches `path` (see `glob_regex` for `whole`), else None; blank patterns never match."""
    for pattern in patterns:
        if pattern.strip() and glob_regex(pattern, whole=whole).fullmatch(path):
            return pattern
    return None


def matches(path: str, patterns: tuple[str, ...] | list[str], *, whole: bool = False) -> bool:
    return matching_glob(path, patterns, whole=whole) is not None
