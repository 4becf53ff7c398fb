"""go-test-runner settings (env prefix GORESOLVE_GO_TEST_RUNNER_). No secrets: this server holds none."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servers.common.settings import ServerSettings


class GoTestRunnerSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_GO_TEST_RUNNER_", extra="forbid", frozen=True)

    port: int = Field(default=8103, ge=1, le=65535)
    work_dir: Path | None = Field(
        default=None, description="Mirrors and worktrees; defaults to <state_dir>/go-test-runner."
    )
    go_binary: str = Field(default="go", description="The go command (looked up on PATH when not absolute).")
    gocache: Path | None = Field(
        default=None,
        description="Shared build cache, written only by go itself (never by test code); "
        "defaults to <work_dir>/gocache.",
    )
    gomodcache: Path | None = Field(
        default=None,
        description="Module cache; defaults to the user's own (go env GOMODCACHE). Modules are downloaded "
        "outside the sandbox by the runner (no repository code runs then); test code sees it read-only.",
    )
    seed_from_user_cache: bool = Field(
        default=True,
        description="Use the user's own build cache (go env GOCACHE) as a read-only lower layer of the shared "
        "one, so a first run costs about what a raw go test would.",
    )
    seed_cache: Path | None = Field(
        default=None, description="The build cache to seed from instead of the user's (go env GOCACHE)."
    )
    goproxy: str = Field(default="https://proxy.golang.org", description="GOPROXY used to download modules.")
    allow_weak_sandbox: bool = Field(
        default=False,
        description="Run tests even when bubblewrap, user namespaces, overlayfs in a user namespace or "
        "libseccomp are missing (then only rlimits, the watchdog and the timeout apply, and every result "
        "says so). Off: such a host refuses to run tests. `go-test-runner-mcp --check` shows what this host gives.",
    )
    bwrap_binary: str = Field(
        default="bwrap", description="bubblewrap (looked up in /usr/bin, /bin, /usr/sbin, /sbin when not absolute)."
    )
    sandbox_user: str | None = Field(
        default=None,
        description="Host user the sandbox runs as (the server must be root); default: the server's own user.",
    )
    max_concurrency: int = Field(default=2, ge=1, le=64)
    max_queue: int = Field(default=16, ge=0, le=1000)
    default_timeout_s: int = Field(default=300, ge=1, le=1800)
    max_timeout_s: int = Field(default=900, ge=1, le=1800, description="Policy ceiling on timeout_s and -timeout.")
    max_dependents: int = Field(
        default=50, ge=0, le=2000, description="At most this many dependents per module in a run with `dependents`."
    )
    kill_grace_s: float = Field(default=15.0, ge=0, le=300, description="Extra time for building before the hard kill.")
    max_output_bytes: int = Field(default=32 << 20, ge=1 << 16, le=1 << 30)
    max_line_bytes: int = Field(default=64 << 10, ge=1024, le=16 << 20)
    rlimit_as_mb: int = Field(default=16 << 10, ge=0, description="Address space per process (0: unlimited).")
    rlimit_as_race_mb: int = Field(
        default=64 << 10,
        ge=0,
        description="Address space per process with -race: the race detector reserves shadow memory, "
        "several times the heap (0: unlimited).",
    )
    rlimit_nproc: int = Field(
        default=4096,
        ge=0,
        description="Processes+threads of the sandbox's host user, all runs together (0: unlimited; not enforced "
        "for root, where each run's pids cgroup holds max_tasks instead when the host lets it).",
    )
    rlimit_fsize_mb: int = Field(default=2048, ge=0, description="Largest file a process may write (0: unlimited).")
    rlimit_nofile: int = Field(default=4096, ge=0)
    max_tasks: int = Field(
        default=2048,
        ge=0,
        description="Processes+threads of one run (0: off): its pids cgroup's pids.max where a pids controller is "
        "writable (a fork past it fails), and the watchdog kills a run over it.",
    )
    memory_limit_mb: int = Field(
        default=8192,
        ge=0,
        description="The watchdog kills a run whose resident memory and scratch files (its memory-backed /tmp "
        "and test layers) together exceed this (0: off).",
    )
    scratch_mb: int = Field(
        default=4096,
        ge=64,
        description="Scratch space of one run in MiB: the watchdog kills a run whose files in its memory-backed "
        "/tmp (GOTMPDIR) and its test binaries' /tmp and writable layers together exceed this.",
    )
    cache_max_file_mb: int = Field(
        default=32,
        ge=0,
        description="A file a run's build wrote larger than this (MiB) is not kept in the shared build cache "
        "(0: no bound): a patch declaring a huge array compiles to an object of that size.",
    )
    cache_max_merge_mb: int = Field(
        default=512,
        ge=0,
        description="At most this much (MiB) of one run's build is kept in the shared cache (0: all).",
    )
    cache_max_mb: int = Field(
        default=10 << 10,
        ge=0,
        description="The shared build cache is trimmed, least recently used entries first, when it grows over "
        "this (MiB; 0: never); entries used in the last two hours stay.",
    )
    fetch_interval_s: float = Field(
        default=60.0, ge=0, description="Fetch a mirror at most this often for branch refs."
    )

    def resolved_work_dir(self) -> Path:
        return (self.work_dir or self.state_dir / "go-test-runner").resolve()
