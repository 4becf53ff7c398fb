"""The shared build cache stays bounded: a run's layer is merged without files over `cache_max_file_mb` and
at most `cache_max_merge_mb` of it, and the shared cache is trimmed, least recently used first, past
`cache_max_mb` (a hostile patch: `var Table = [200 << 20]byte{...}` left a 200 MB object in the shared
cache on every run, 130 -> 529 MB, for good). The real run uses a small object and a 1 MiB limit."""

from __future__ import annotations

import fcntl
import os
import pathlib
import time

import pytest

from servers.common.policy import ProtectedPolicy
from servers.go_test_runner.payload import RunTestsRequest
from servers.go_test_runner.runner import Runner
from servers.go_test_runner.sandbox import CacheLimits, merge_layer, trim_cache
from tests.patch_policy.tamper_cases import diff_for, victim_repo

from .conftest import host_go_env, make_policies

MiB = 1 << 20


def _entry(root: pathlib.Path, n: int, size: int, *, age_s: float = 0, kind: str = "d") -> pathlib.Path:
    path = root / f"{n:02x}" / f"{n:064x}-{kind}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def test_a_file_over_the_limit_is_not_merged_and_leaves_the_layer(tmp_path: pathlib.Path) -> None:
    layer, shared = tmp_path / "layer", tmp_path / "shared"
    small, big = _entry(layer, 1, 1000), _entry(layer, 2, 2 * MiB)
    merged = merge_layer(layer, shared, CacheLimits(max_file=MiB, max_merge=0, max_total=0))
    assert merged.names == [small.name]
    assert (merged.bytes, merged.dropped, merged.dropped_outputs) == (1000, 1, 1)
    assert (shared / "01" / small.name).is_file()
    assert not (shared / "02").exists()
    assert not big.exists()  # gone with the layer, not seen again by the call's next run


def test_a_run_merges_at_most_its_share(tmp_path: pathlib.Path) -> None:
    layer, shared = tmp_path / "layer", tmp_path / "shared"
    for n in range(5):
        _entry(layer, n, MiB)
    merged = merge_layer(layer, shared, CacheLimits(max_file=0, max_merge=3 * MiB, max_total=0))
    assert (len(merged.names), merged.bytes, merged.dropped) == (3, 3 * MiB, 2)
    assert len(list(shared.rglob("*-d"))) == 3


def test_the_shared_cache_is_trimmed_oldest_first_and_keeps_what_runs_may_use(tmp_path: pathlib.Path) -> None:
    shared = tmp_path / "shared"
    old = [_entry(shared, n, MiB, age_s=86400 - n * 60) for n in range(6)]  # a day old, the first the oldest
    recent = [_entry(shared, 0x80 + n, MiB, age_s=60) for n in range(4)]  # used a minute ago
    (shared / "README").write_text("go's own file")
    assert trim_cache(shared, 20 * MiB) == 10 * MiB  # under the cap: nothing removed
    assert trim_cache(shared, 8 * MiB) == 7 * MiB  # down to 90% of 8 MiB, the oldest first
    assert [p.exists() for p in old] == [False, False, False, True, True, True]
    assert trim_cache(shared, 2 * MiB) == 4 * MiB  # recent entries stay even over the cap
    assert all(p.exists() for p in recent) and not any(p.exists() for p in old)
    assert (shared / "README").exists()


def test_one_trim_at_a_time(tmp_path: pathlib.Path) -> None:
    shared = tmp_path / "shared"
    entry = _entry(shared, 1, MiB, age_s=86400)
    lock = os.open(shared / ".goresolve-trim.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert trim_cache(shared, 1) is None  # another process is trimming: this one leaves it alone
        assert entry.exists()
    finally:
        os.close(lock)
    assert trim_cache(shared, 1) == 0
    assert not entry.exists()


# A 4 MiB object from one declaration (a hostile 200 MB table at a fiftieth of its size).
_BIG = (
    "package victim\n\n// Table is big.\nvar Table = [4 << 20]byte{1, 2, 3, 4<<20 - 1: 7}\n\n"
    "// Lookup returns an entry of Table.\nfunc Lookup(i int) byte { return Table[i] }\n"
)


@pytest.mark.slow
async def test_a_run_leaves_no_object_over_the_limit_in_the_shared_cache(tmp_path: pathlib.Path) -> None:
    from servers.go_test_runner.settings import GoTestRunnerSettings

    victim = victim_repo(tmp_path)
    gocache = tmp_path / "gocache"
    stale = _entry(gocache, 0xEE, 2 * MiB, age_s=86400)  # a day old: the trim takes it first
    settings = GoTestRunnerSettings(
        state_dir=tmp_path / "state",
        stdio_identity="agent",
        policy_dir=tmp_path,
        work_dir=tmp_path / "work",
        gocache=gocache,  # the user's cache is its read-only seed
        gomodcache=host_go_env("GOMODCACHE"),
        cache_max_file_mb=1,
        cache_max_mb=1,
    )
    policies = make_policies({"victim": victim}).model_copy(
        update={"protected": ProtectedPolicy(static_analysis=False, existing_tests_read_only=False)}
    )
    runner = Runner.create(settings, policies)
    req = {"repo": "victim", "ref": "main", "packages": ["./..."], "patch": diff_for(victim, {"table.go": _BIG})}
    try:
        result = await runner.run_tests(RunTestsRequest.model_validate(req))
    finally:
        await runner.quiesce()
    assert result.report.packages, result.summary  # it built and ran
    sizes = [p.stat().st_size for p in gocache.rglob("*") if p.is_file()]
    assert sizes and max(sizes) <= MiB
    assert not stale.exists()
