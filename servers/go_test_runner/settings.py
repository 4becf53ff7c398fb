"""go-test-runner settings (env prefix GORESOLVE_GO_TEST_RUNNER_). No secrets: this server holds none."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    gocache: Path | None = Field(default=None, description="Shared build cache; defaults to <work_dir>/gocache.")
    gomodcache: Path | None = Field(default=None, description="Shared module cache; defaults to <work_dir>/gomodcache.")
    goproxy: str = Field(default="https://proxy.golang.org", description="GOPROXY used to download modules.")
    network_isolation: Literal["auto", "require", "off"] = Field(
        default="auto",
        description="auto: a network namespace when the kernel allows, else say so in every result; "
        "require: refuse to start without one; off: never (tests may reach the network).",
    )
    max_concurrency: int = Field(default=2, ge=1, le=64)
    max_queue: int = Field(default=16, ge=0, le=1000)
    default_timeout_s: int = Field(default=300, ge=1, le=1800)
    max_timeout_s: int = Field(default=900, ge=1, le=1800, description="Policy ceiling on timeout_s and -timeout.")
    kill_grace_s: float = Field(default=15.0, ge=0, le=300, description="Extra time for building before the hard kill.")
    max_output_bytes: int = Field(default=32 << 20, ge=1 << 16, le=1 << 30)
    max_line_bytes: int = Field(default=64 << 10, ge=1024, le=16 << 20)
    rlimit_as_mb: int = Field(default=16 << 10, ge=0, description="Address space per process (0: unlimited).")
    rlimit_nproc: int = Field(default=4096, ge=0, description="Processes+threads of the user (0: unlimited).")
    rlimit_fsize_mb: int = Field(default=2048, ge=0, description="Largest file a process may write (0: unlimited).")
    rlimit_nofile: int = Field(default=4096, ge=0)
    hide_paths: tuple[Path, ...] = Field(
        default=(
            Path("/root"),
            Path("/home"),
            Path("/run/secrets"),
            Path("/var/run/secrets"),
            Path("/etc/ssl/private"),
        ),
        description="Covered by an empty tmpfs for test code (skipped when they hold the work dir or caches).",
    )
    fetch_interval_s: float = Field(
        default=60.0, ge=0, description="Fetch a mirror at most this often for branch refs."
    )

    def resolved_work_dir(self) -> Path:
        return (self.work_dir or self.state_dir / "go-test-runner").resolve()
