"""The eval task format (one JSON object per line) and the per-task result.

A task is a real bug-fix commit of a public Go module, pinned to the module proxy:

    instance_id        unique name, also the repository name the harness registers for it
    module, version    the module at the fix's parent commit (`go mod download module@version`)
    base_commit        that parent commit upstream; fix_commit the fix itself
    problem_statement  what the agent is told (the fix commit's message)
    test_patch         applied and committed by the harness, never by the agent
    gold_patch         the upstream fix without its tests (used by `--oracle`)
    fail_to_pass       tests that fail with the test patch alone and pass with the fix
    pass_to_pass       tests that pass before and after
    gold_functions     `file:Func` declarations the fix changes (for the localization hit)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class TaskFileError(Exception):
    """A task file is missing or a line is not a valid task (the message names the line)."""


class TestRef(BaseModel):
    """One top-level test: the package directory inside the module (`.`, `./internal/x`) and its name."""

    __test__ = False  # not a pytest class
    model_config = ConfigDict(frozen=True, extra="forbid")

    package: str = Field(pattern=r"^\.(/[A-Za-z0-9_.~+-]+)*$")
    test: str = Field(pattern=r"^(Test|Example|Fuzz)\w*$")


class Task(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    module: str = Field(min_length=1, max_length=300)
    version: str = Field(min_length=2, max_length=100)
    base_commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    fix_commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    problem_statement: str = Field(min_length=1)
    test_patch: str = Field(min_length=1)
    gold_patch: str = Field(min_length=1)
    fail_to_pass: list[TestRef] = Field(min_length=1)
    pass_to_pass: list[TestRef] = Field(default_factory=list[TestRef])
    gold_functions: list[str] = Field(default_factory=list[str])

    def packages(self) -> list[str]:
        """Package directories named by the task's tests, sorted."""
        return sorted({t.package for t in [*self.fail_to_pass, *self.pass_to_pass]})


Outcome = Literal["resolved", "unresolved", "escalated", "tampering_refused", "error", "valid", "invalid"]


class TaskResult(BaseModel):
    """One line of results.jsonl."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: str
    mode: Literal["oracle", "model"]
    outcome: Outcome
    detail: str = Field(description="One sentence: why this outcome.")
    fail_to_pass_ok: bool | None = None
    pass_to_pass_ok: bool | None = None
    localization_hit: bool | None = Field(default=None, description="None when the run exposes no context.")
    tool_calls: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    wall_s: float


def load_tasks(path: Path) -> list[Task]:
    """Read a JSONL task file.

    Raises:
        TaskFileError: the file cannot be read, holds no task, a line is not JSON or not a task, or two tasks share
            an id.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TaskFileError(f"{path}: {exc.strerror}") from None
    tasks: list[Task] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            task = Task.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise TaskFileError(f"{path}:{n}: not JSON ({exc.msg})") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "task"
            raise TaskFileError(f"{path}:{n}: field {where!r}: {first['msg']}") from None
        if task.instance_id in seen:
            raise TaskFileError(f"{path}:{n}: duplicate instance_id {task.instance_id!r}")
        seen.add(task.instance_id)
        tasks.append(task)
    if not tasks:  # an empty run would report "0 valid / 0 tasks" over the last run's results
        raise TaskFileError(f"{path}: no tasks (one JSON object per line)")
    return tasks
