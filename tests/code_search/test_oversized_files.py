"""A file over the size limit is skipped without being read, from git or from a plain directory.

A tiny repository can hold huge, highly compressible files; the indexer must not load them to find out they are too
large. Peak Python memory (tracemalloc: every bytes object the reader makes) stays far below the huge file's size.
"""

from __future__ import annotations

import subprocess
import tracemalloc
from collections.abc import Callable, Generator
from pathlib import Path

import pytest

from servers.code_search import gitrepo, source
from servers.code_search.embed import HashingEmbedder
from servers.code_search.index import CodeIndex
from servers.code_search.indexer import index_repo
from servers.code_search.source import MAX_FILE_BYTES, SkipRules, blob_id, snapshot

from .conftest import commit_all, git

HUGE = 200_000_000  # 200 MB of "// x" lines: a few hundred KB in git, nothing on disk when sparse
SMALL = {"pkg/a.go": 'package pkg\n\n// Alpha says hi.\nfunc Alpha() string { return "hi" }\n'}
PEAK = 20_000_000  # Python memory while indexing: the huge file read once would be 10 times this


def _huge_blob(repo: Path) -> str:
    """Write a HUGE-byte Go blob into `repo`'s object store (never into the work tree); its id."""
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "hash-object", "-w", "--stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    piece = b"// x\n" * 200_000
    for _ in range(HUGE // len(piece)):
        proc.stdin.write(piece)
    proc.stdin.close()
    blob = proc.stdout.read().decode().strip()
    assert proc.wait() == 0
    return blob


@pytest.fixture
def huge_repo(make_repo: Callable[[str, dict[str, str]], Path]) -> tuple[Path, str]:
    """A git repository with pkg/a.go and pkg/huge.go (HUGE bytes); the huge blob's id."""
    repo = make_repo("svc", SMALL)
    blob = _huge_blob(repo)
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},pkg/huge.go")
    git(repo, "commit", "-q", "-m", "huge")
    return repo, blob


def _exact(size: int) -> bytes:
    """A Go file of exactly `size` bytes."""
    head = b"package pkg\n\nfunc Edge() {}\n"
    line = b"// " + b"x" * 76 + b"\n"
    lines, rest = divmod(size - len(head), len(line))
    return head + line * lines + b"\n" * rest


def _peak(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _status(index: CodeIndex, repo: str, path: str) -> str | None:
    view = index.views([repo])[0]
    return "indexed" if index.file_text(view, path) is not None else None


def test_a_huge_git_blob_is_skipped_without_being_read(
    huge_repo: tuple[Path, str], index: CodeIndex, hashing: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, huge = huge_repo
    asked: list[str] = []
    real = gitrepo.read_blobs

    def spy(root: Path, blobs: list[str], max_size: int) -> Generator[tuple[str, int, bytes | None]]:
        asked.extend(blobs)
        return real(root, blobs, max_size)

    monkeypatch.setattr(source.gitrepo, "read_blobs", spy)
    reports = []
    peak = _peak(lambda: reports.append(index_repo(index, hashing, repo, "svc")))
    report = reports[0]
    assert huge not in asked and len(asked) == 1
    assert (report.files, report.changed, report.skipped, report.chunks) == (2, 2, 1, 1)
    assert report.bytes == HUGE + len(SMALL["pkg/a.go"])  # the size is reported as before, from the blob header
    assert _status(index, "svc", "pkg/huge.go") is None  # a skipped file row, as for binary or generated files
    assert _status(index, "svc", "pkg/a.go") == "indexed"
    assert peak < PEAK, peak


def test_a_huge_file_in_a_directory_is_skipped_without_being_read(
    tmp_path: Path, index: CodeIndex, hashing: HashingEmbedder
) -> None:
    root = tmp_path / "mod"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.go").write_text(SMALL["pkg/a.go"])
    with (root / "pkg" / "huge.go").open("wb") as handle:
        handle.truncate(HUGE)  # sparse: HUGE bytes long, no disk used
    snap = snapshot(root, None, SkipRules())
    assert snap.files["pkg/huge.go"] == source.oversized_id(HUGE)
    assert snap.sizes["pkg/huge.go"] == HUGE
    assert dict(snap.read(sorted(snap.files))).keys() == {"pkg/a.go"}
    reports = []
    peak = _peak(lambda: reports.append(index_repo(index, hashing, root, "mod")))
    report = reports[0]
    assert (report.files, report.changed, report.skipped, report.chunks) == (2, 2, 1, 1)
    assert report.bytes == HUGE + len(SMALL["pkg/a.go"])
    assert _status(index, "mod", "pkg/huge.go") is None
    assert peak < PEAK, peak
    (root / "pkg" / "huge.go").write_bytes(_exact(1000))  # under the limit now: changed, read and indexed
    again = index_repo(index, hashing, root, "mod")
    assert (again.changed, again.skipped) == (1, 0)
    assert _status(index, "mod", "pkg/huge.go") == "indexed"


def test_the_limit_is_the_same_for_git_and_directories(make_repo: Callable[[str, dict[str, str]], Path]) -> None:
    at, over = _exact(MAX_FILE_BYTES), _exact(MAX_FILE_BYTES + 1)
    repo = make_repo("edge", SMALL)
    (repo / "pkg" / "at.go").write_bytes(at)
    (repo / "pkg" / "over.go").write_bytes(over)
    commit_all(repo, "edge")
    in_git, in_dir = snapshot(repo, None, SkipRules()), snapshot(repo / "pkg", None, SkipRules())
    assert in_git.files["pkg/at.go"] == in_dir.files["at.go"] == blob_id(at)  # unchanged files agree
    assert in_git.sizes["pkg/over.go"] == in_dir.sizes["over.go"] == MAX_FILE_BYTES + 1
    for snap, prefix in ((in_git, "pkg/"), (in_dir, "")):
        got = {p: (size, data) for p, size, data in snap.contents(sorted(snap.files))}
        assert got[f"{prefix}at.go"] == (MAX_FILE_BYTES, at)
        assert got[f"{prefix}over.go"] == (MAX_FILE_BYTES + 1, None)
    assert SkipRules().wants_content(at)  # so a file of exactly the limit is indexed from either source


def test_read_blobs_streams_one_object_at_a_time(huge_repo: tuple[Path, str]) -> None:
    repo, huge = huge_repo
    small = git(repo, "rev-parse", "HEAD:pkg/a.go")
    missing = "0" * 40
    got: list[tuple[str, int, bytes | None]] = []
    peak = _peak(lambda: got.extend(gitrepo.read_blobs(repo, [small, huge, missing, small], MAX_FILE_BYTES)))
    text = SMALL["pkg/a.go"].encode()
    assert got == [(small, len(text), text), (huge, HUGE, None), (missing, -1, None), (small, len(text), text)]
    assert peak < 2_000_000, peak  # the huge object crossed the pipe in small pieces, none kept
    stream = gitrepo.read_blobs(repo, [small] * 10_000, MAX_FILE_BYTES)  # more ids than a pipe buffer holds
    assert next(stream) == (small, len(text), text)
    stream.close()  # stops git; nothing hangs
    assert list(gitrepo.read_blobs(repo, [], MAX_FILE_BYTES)) == []


def test_a_batch_ends_at_its_files_count_or_its_bytes() -> None:
    """Before, a batch was 250 files whatever their size: 250 files just under the size limit (each 0xFF byte of them
    decodes to three bytes) took the indexer to 4.6 GB. A batch now also ends at BATCH_BYTES of files it reads."""
    from servers.code_search.indexer import BATCH_BYTES, FILE_BATCH, batches

    small = {f"s{i}.go": 1_000 for i in range(600)}
    assert [len(b) for b in batches(sorted(small), small)] == [FILE_BATCH, FILE_BATCH, 100]
    large = {f"l{i:03}.md": 990_000 for i in range(250)}
    sized = list(batches(sorted(large), large))
    assert all(sum(large[p] for p in b) <= BATCH_BYTES for b in sized) and sum(map(len, sized)) == 250
    assert len(sized) == -(-250 // (BATCH_BYTES // 990_000))
    mixed = {"huge.go": 10 * BATCH_BYTES, **{f"m{i:02}.md": 990_000 for i in range(17)}}  # huge: never read
    assert [len(b) for b in batches(sorted(mixed), mixed)] == [17, 1]
