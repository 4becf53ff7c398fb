"""The agent's policy files, read with its own small models (the agent never imports servers).

budgets.yaml     prices, per-run limits (with per-tier overrides), stuck thresholds, the daily budget
escalation.yaml  who owns a component or path when a run escalates, and the hand-off labels
access.yaml      read only for the run identity's roles (tools.yaml: which scopes they grant)

A bad file stops the caller with `PolicyError` naming the file and the field. `python -m agent.policy`
rewrites policies/schema/{budgets,escalation}.schema.json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

import pathglob
import yamlfiles

DEFAULT_POLICY_DIR = Path(__file__).resolve().parents[1] / "policies"
LOGIN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$"


class PolicyError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Strict(BaseModel):
    # strict: a wrong type is an error, never coerced ("yes" is not a boolean, true not a number of steps);
    # numbers are finite (.inf is no budget)
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


def _listed(value: Any) -> Any:
    """A YAML list for a tuple field (strict validation takes no list where a tuple is declared)."""
    return tuple(value) if isinstance(value, list) else value


_T = TypeVar("_T")
# a list in YAML, held as a tuple (the models are frozen); its items are validated strictly
Seq = Annotated[tuple[_T, ...], BeforeValidator(_listed)]


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0, description="Defaults to the input price.")

    @model_validator(mode="after")
    def _cached_not_above_input(self) -> Self:
        # The budget check's worst case prices every prompt token uncached (`PriceBook.worst_case`): a cache
        # read dearer than that would let one call cost more than the check allowed.
        if self.cached_input is not None and self.cached_input > self.input:
            raise ValueError(
                f"cached_input {self.cached_input} is above input {self.input} (it is the price of a cache read, "
                "never above the uncached price)"
            )
        return self


class RunLimits(_Strict):
    wall_clock_s: float = Field(default=300, gt=0, le=24 * 3600)
    max_tokens: int = Field(default=400_000, ge=1)
    max_cost_usd: float = Field(default=1.5, ge=0)
    max_output_tokens: int = Field(default=2048, ge=16, le=200_000)
    tool_calls_per_episode: int = Field(default=5, ge=1, le=100)
    failed_attempts: int = Field(default=3, ge=1, le=20)
    format_errors: int = Field(default=3, ge=1, le=20)
    max_steps: int = Field(default=40, ge=1, le=1000)


class TierOverrides(_Strict):
    wall_clock_s: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, ge=0)
    max_output_tokens: int | None = Field(default=None, ge=16)


class StuckThresholds(_Strict):
    repeated_call: int = Field(default=3, ge=2)
    alternation: int = Field(default=3, ge=2)
    same_failure: int = Field(default=3, ge=2)


class DailyBudget(_Strict):
    max_cost_usd: float = Field(default=50.0, ge=0)
    alert_threshold_usd: float = Field(default=30.0, ge=0)
    jump_factor: float = Field(default=3.0, gt=1)
    alert_window_s: float = Field(default=3600, gt=0)


class Budgets(_Strict):
    prices: dict[str, Price] = Field(default_factory=dict[str, Price])
    allow_unpriced: bool = False
    run: RunLimits = RunLimits()
    tiers: dict[str, TierOverrides] = Field(default_factory=dict[str, TierOverrides])
    stuck: StuckThresholds = StuckThresholds()
    daily: DailyBudget = DailyBudget()

    @model_validator(mode="after")
    def _tiers_within_run_bounds(self) -> Self:
        # A tier's limits are validated as RunLimits, so an override cannot pass a bound `run:` could not.
        for name in self.tiers:
            try:
                self._merged(name)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"tiers.{name}.{field}: {first['msg']}") from None
        return self

    def _merged(self, tier: str) -> RunLimits:
        changes = self.tiers[tier].model_dump(exclude_none=True)
        return RunLimits.model_validate({**self.run.model_dump(), **changes})

    def limits_for(self, tier: str | None) -> RunLimits:
        """The run limits with the tier's overrides applied (an unknown tier is a PolicyError)."""
        if tier is None:
            return self.run
        if tier not in self.tiers:
            raise PolicyError(f"budgets.yaml: no tier {tier!r} (known: {', '.join(sorted(self.tiers)) or 'none'})")
        return self._merged(tier)


class OwnerRule(_Strict):
    owner: str = Field(pattern=LOGIN)
    component: str | None = Field(default=None, description="A component of the ticket (case-insensitive).")
    path: str | None = Field(
        default=None,
        description="Glob over the repository paths the patch touched, e.g. internal/cache/** (protected.yaml's "
        "syntax: gitignore-like, ** crosses directories, * does not; case-sensitive; a path under a match matches).",
    )

    @field_validator("path")
    @classmethod
    def _glob_matches_something(cls, value: str | None) -> str | None:
        if value is not None and (why := pathglob.problem(value)) is not None:
            raise ValueError(why)
        return value


class Escalation(_Strict):
    default_owner: str = Field(pattern=LOGIN)
    labels: Seq[str] = ("needs-human",)
    owners: Seq[OwnerRule] = Field(
        default=(),
        description="In order, the first rule whose component or path matches names the owner (first rule wins); "
        "none matching: default_owner.",
    )

    def owner_for(self, components: list[str], paths: list[str]) -> str:
        """The first rule matching a component of the ticket (casefolded, as routing compares components) or a
        path the patch touched (the policies' glob syntax, `pathglob`), else the default."""
        folded = {c.casefold() for c in components}
        for rule in self.owners:
            if rule.component is not None and rule.component.casefold() in folded:
                return rule.owner
            if rule.path is not None and any(pathglob.matches(p, (rule.path,)) for p in paths):
                return rule.owner
        return self.default_owner


class _Loose(BaseModel):
    # access.yaml and tools.yaml belong to the platform; the agent reads only what it needs from them.
    model_config = ConfigDict(frozen=True, extra="ignore")


class _Identity(_Loose):
    roles: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    jira_projects: tuple[str, ...] = ()


class _Access(_Loose):
    identities: dict[str, _Identity] = Field(default_factory=dict[str, _Identity])


class _Role(_Loose):
    scopes: tuple[str, ...] = ()


class _Tools(_Loose):
    roles: dict[str, _Role] = Field(default_factory=dict[str, _Role])


class AgentPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    budgets: Budgets
    escalation: Escalation
    scopes: dict[str, frozenset[str]] = Field(
        default_factory=dict[str, frozenset[str]], description="identity -> scopes"
    )
    repos: dict[str, tuple[str, ...]] = Field(
        default_factory=dict[str, tuple[str, ...]], description="identity -> repos"
    )


class YamlFileError(PolicyError):
    """A YAML file that cannot be used (the strict loader's refusal, `yamlfiles`), named by its file name."""

    def __init__(self, path: Path, where: str, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}" if where == "(file)" else f"{path.name}: {where}: {reason}")
        self.path = path
        self.where = where
        self.reason = reason


def load_yaml_file(path: Path) -> Any:
    """Read and parse one YAML file (an empty file is None), refusing a repeated key or deep nesting.

    Raises:
        YamlFileError: a directory, unreadable, not UTF-8 text, invalid YAML, a repeated key, or
            nesting too deep; the one-line message names the file (and the line when known).
    """
    try:
        return yamlfiles.load_yaml_file(path, invalid="not valid YAML")
    except yamlfiles.YamlFileError as exc:
        raise YamlFileError(path, exc.where, exc.reason) from None


def quoted_number_hint(error: Mapping[str, Any]) -> str:
    """For a number given as text (quoted, or an exponent YAML reads as text: 1.0e12), how to write it."""
    return yamlfiles.quoted_number_hint(str(error.get("type")), error.get("input"))


M = TypeVar("M", bound=BaseModel)


def _load(path: Path, model: type[M], *, required: bool = True) -> M:
    if not path.exists():
        if required:
            raise PolicyError(f"{path.name}: missing")
        return model()
    data: Any = load_yaml_file(path) or {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ") + quoted_number_hint(first)  # a model check names its fields
        raise PolicyError(f"{path.name}: {field}: {msg}" if field else f"{path.name}: {msg}") from exc


def load_agent_policy(directory: Path = DEFAULT_POLICY_DIR) -> AgentPolicy:
    """Read budgets.yaml and escalation.yaml (required) and the identities' scopes (optional files).

    Raises:
        PolicyError: a file is missing, unreadable or invalid (the message names file and field).
    """
    budgets = _load(directory / "budgets.yaml", Budgets)
    escalation = _load(directory / "escalation.yaml", Escalation)
    access = _load(directory / "access.yaml", _Access, required=False)
    tools = _load(directory / "tools.yaml", _Tools, required=False)
    scopes = {
        name: frozenset(s for role in ident.roles for s in (tools.roles[role].scopes if role in tools.roles else ()))
        for name, ident in access.identities.items()
    }
    repos = {name: ident.repos for name, ident in access.identities.items()}
    return AgentPolicy(budgets=budgets, escalation=escalation, scopes=scopes, repos=repos)


def identity_grants(directory: Path, identity: str) -> tuple[frozenset[str], frozenset[str]] | None:
    """(repositories, Jira projects) `identity` may work on per `directory`'s access.yaml; None when access.yaml
    does not name it (a missing file names nobody). What the agent itself enforces at a run's start.

    Raises:
        PolicyError: access.yaml is unreadable or invalid (the message names the file and field).
    """
    found = _load(directory / "access.yaml", _Access, required=False).identities.get(identity)
    return None if found is None else (frozenset(found.repos), frozenset(found.jira_projects))


POLICY_SCHEMAS: dict[str, type[BaseModel]] = {"budgets": Budgets, "escalation": Escalation}


def write_schemas(directory: Path) -> list[Path]:
    out: list[Path] = []
    for name, model in POLICY_SCHEMAS.items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for written in write_schemas(DEFAULT_POLICY_DIR / "schema"):
        sys.stdout.write(f"wrote {written}\n")
