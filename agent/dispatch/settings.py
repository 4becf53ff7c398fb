"""Dispatcher settings (env prefix GORESOLVE_DISPATCH_), read once at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.policy import DEFAULT_POLICY_DIR

# The agent command for one ticket; {ticket}, {repo} and {trace_id} are filled in per run.
DEFAULT_COMMAND = ("goresolve", "resolve", "--ticket", "{ticket}", "--repo", "{repo}", "--json")


class DispatchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GORESOLVE_DISPATCH_", extra="forbid", frozen=True)

    mode: Literal["local", "kubernetes"] = Field(default="local", description="local subprocesses or Kubernetes Jobs.")
    command: tuple[str, ...] = Field(
        default=DEFAULT_COMMAND,
        min_length=1,
        description="The agent command per ticket (JSON list); {ticket}, {repo}, {trace_id} are substituted.",
    )
    max_concurrent: int = Field(default=2, ge=1, le=1000, description="Runs at once, in total.")
    max_per_repo: int = Field(default=1, ge=1, le=1000, description="Runs at once against one repository.")
    busy_retry_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="A ticket that finds no run slot free goes back to the queue for this long (not a failed try).",
    )
    wall_clock_s: int = Field(default=1800, ge=10, le=86400, description="The run's wall-clock breaker.")
    deadline_margin_s: int = Field(
        default=300, ge=0, le=3600, description="Added to the wall clock for the hard kill (activeDeadlineSeconds)."
    )
    ttl_after_finished_s: int = Field(
        default=3600,
        ge=0,
        le=604800,
        description="Finished Jobs are deleted this long after; local mode forgets a finished run as long after.",
    )
    namespace: str = Field(default="default", description="The namespace Jobs are created in (the dispatcher's own).")
    job_template: Path = Field(
        default=Path("/etc/goresolve/job-template/job.yaml"), description="The chart's Job manifest (a ConfigMap)."
    )
    kubeconfig: Path | None = Field(default=None, description="Outside a cluster: a kubeconfig file.")
    data_dir: Path = Field(
        default=Path.home() / ".local" / "share" / "goresolve",
        validation_alias=AliasChoices("GORESOLVE_DATA_DIR", "GORESOLVE_DISPATCH_DATA_DIR"),
        description="goresolve's data directory (the shared GORESOLVE_DATA_DIR).",
    )
    ledger: Path | None = Field(default=None, description="The run ledger (JSON lines); defaults to <data dir>.")
    jira_repos: dict[str, str] = Field(
        default_factory=dict, description='Jira project -> repository, e.g. {"SVC": "acme/svc"} (JSON).'
    )
    default_repo: str | None = Field(default=None, description="Repository for tickets that name none.")
    policy_dir: Path = Field(
        default=DEFAULT_POLICY_DIR,
        validation_alias=AliasChoices("GORESOLVE_DISPATCH_POLICY_DIR", "GORESOLVE_AGENT_POLICY_DIR"),
        description="The agent's policy set: a ticket about a repository its repos.yaml does not name starts no run.",
    )

    identity: str = Field(
        default="local-dev",
        min_length=1,
        validation_alias=AliasChoices("GORESOLVE_DISPATCH_IDENTITY", "GORESOLVE_AGENT_IDENTITY"),
        description="The agent's policy identity: a ticket whose repository or Jira project its access.yaml entry "
        "does not grant starts no run.",
    )

    @model_validator(mode="after")
    def _caps(self) -> DispatchSettings:
        if self.max_per_repo > self.max_concurrent:
            raise ValueError("max_per_repo cannot exceed max_concurrent")
        return self

    @property
    def active_deadline_s(self) -> int:
        """The hard deadline of one run: the breaker plus the margin (graceful escalation first)."""
        return self.wall_clock_s + self.deadline_margin_s

    def resolved_ledger(self) -> Path:
        return self.ledger or self.data_dir / "dispatch" / "runs.jsonl"

    def resolved_ticket_runs(self) -> Path:
        """Local mode's per-ticket run records (one run per ticket; see ticketruns.py)."""
        return self.data_dir / "dispatch" / "tickets.db"
