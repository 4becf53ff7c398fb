"""policies/routing.yaml: tiers and their models, the rules (first match wins), the classifier settings.

Validated by pydantic at load; every problem is reported with its dotted field path
(`RoutingPolicyError.problems`), never a traceback. The JSON Schema is committed as
policies/schema/routing.schema.json (`python -m agent.router.policy` rewrites it).

A rule's `when` holds conditions on labels, issue type, components, named paths and text
patterns: every condition given must hold (AND); inside a list, any entry may match (OR). `unless`
takes the same conditions and vetoes the rule when all of its conditions hold.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import pathglob
from agent.policy import DEFAULT_POLICY_DIR, Budgets, Seq, YamlFileError, load_yaml_file, quoted_number_hint
from agent.router.errors import PolicyProblem, RoutingPolicyError

Kind = Literal["docs", "trivial", "bug", "concurrency", "performance", "feature", "security"]
KINDS: tuple[Kind, ...] = ("docs", "trivial", "bug", "concurrency", "performance", "feature", "security")
NAME = r"^[a-z][a-z0-9-]{0,62}$"


class _Strict(BaseModel):
    # strict: a wrong type is an error, never coerced; numbers are finite
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


def _check_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc.msg} at position {exc.pos}") from None
    return value


def _check_globs(value: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in value:
        if (why := pathglob.problem(pattern)) is not None:
            raise ValueError(why)
    return value


class Condition(_Strict):
    labels: Seq[str] = Field(default=(), description="Any of these labels (case-insensitive).")
    issue_types: Seq[str] = Field(default=(), description="Any of these issue types (case-insensitive).")
    components: Seq[str] = Field(default=(), description="Any of these components (case-insensitive).")
    paths_any: Seq[str] = Field(
        default=(),
        description="Globs (gitignore-like, as protected.yaml's paths: ** crosses directories, * does not; "
        "case-sensitive); some path or package named in the ticket matches one of them or lies under a match.",
    )
    paths_all: Seq[str] = Field(
        default=(),
        description="Globs (the syntax of paths_any), each matching a whole path (docs/* takes docs/a.md, not "
        "docs/gen/main.go); the ticket names at least one path and every one matches one of them.",
    )
    title: str | None = Field(default=None, description="Regular expression searched in the title.")
    body: str | None = Field(default=None, description="Regular expression searched in the body.")
    text: str | None = Field(default=None, description="Regular expression searched in the title and the body.")

    _regex = field_validator("title", "body", "text")(_check_regex)
    _globs = field_validator("paths_any", "paths_all")(_check_globs)

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not any(getattr(self, name) for name in type(self).model_fields):
            raise ValueError("a condition needs at least one of " + ", ".join(type(self).model_fields))
        return self


class Rule(_Strict):
    name: str = Field(pattern=NAME)
    when: Condition
    unless: Condition | None = None
    tier: str
    reason: str = Field(min_length=1, max_length=300, description="Recorded with the decision.")


class Tier(_Strict):
    model: str | None = Field(
        default=None,
        description="Model for the agent run (with GORESOLVE_AGENT_ROUTE_MODELS; otherwise the configured model "
        "runs every tier); null means a human takes it.",
    )
    description: str = ""


class RunEstimate(_Strict):
    """Tokens of one agent run, for the expected-cost comparison (the model's price comes from budgets.yaml)."""

    steps: int = Field(default=15, ge=1, le=1000)
    input_tokens_per_step: int = Field(default=6061, ge=1)
    output_tokens_per_step: int = Field(default=500, ge=1)


class ClassifierSettings(_Strict):
    mode: Literal["offline", "model", "none"] = Field(
        default="offline",
        description=(
            "offline: nearest labelled examples + cheap features; model: one gateway call; none: no classifier."
        ),
    )
    threshold: float = Field(
        default=0.9, ge=0.5, le=1.0, description="Calibrated confidence needed to leave the strongest tier."
    )
    k: int = Field(default=7, ge=1, le=50, description="Neighbours the offline classifier looks at.")
    model: str | None = Field(default=None, description="The gateway model for mode 'model'.")
    max_tokens: int = Field(default=200, ge=16, le=4096)
    retries: int = Field(default=1, ge=0, le=3, description="Retries after an answer that does not fit the schema.")


class RoutingPolicy(_Strict):
    tiers: dict[str, Tier]
    strongest: str = Field(description="The model tier for anything uncertain.")
    kinds: dict[Kind, str] = Field(description="The tier each kind of ticket belongs to.")
    rules: Seq[Rule] = ()
    classifier: ClassifierSettings = ClassifierSettings()
    expected_run: RunEstimate = RunEstimate()

    def reference_problems(self) -> list[PolicyProblem]:
        """Problems across fields: tiers that do not exist, a strongest tier without a model, missing kinds."""
        problems: list[PolicyProblem] = []
        if self.strongest not in self.tiers:
            problems.append(PolicyProblem("strongest", f"no tier {self.strongest!r}"))
        elif self.tiers[self.strongest].model is None:
            problems.append(PolicyProblem("strongest", f"tier {self.strongest!r} has no model"))
        problems += [PolicyProblem(f"kinds.{kind}", "missing") for kind in KINDS if kind not in self.kinds]
        problems += [
            PolicyProblem(f"kinds.{kind}", f"no tier {tier!r}")
            for kind, tier in self.kinds.items()
            if tier not in self.tiers
        ]
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.tier not in self.tiers:
                problems.append(PolicyProblem(f"rules.{i}.tier", f"no tier {rule.tier!r}"))
            if rule.name in seen:
                problems.append(PolicyProblem(f"rules.{i}.name", f"{rule.name!r} is used twice"))
            seen.add(rule.name)
        if self.classifier.mode == "model" and not self.classifier.model:
            problems.append(PolicyProblem("classifier.model", "required when classifier.mode is 'model'"))
        return problems

    def model_of(self, tier: str) -> str | None:
        return self.tiers[tier].model

    def tier_of_kind(self, kind: str) -> str:
        return self.kinds[kind]  # type: ignore[index]

    def check_prices(self, budgets: Budgets, file: str = "routing.yaml") -> None:
        """Every tier's model (and the classifier's) must have a price in budgets.yaml, unless unpriced is allowed;
        every tier budgets.yaml overrides must be one of routing's tiers (a misspelt one would never apply).

        Raises:
            RoutingPolicyError: budgets.yaml overrides a tier routing does not have (named as budgets.yaml's
                problem), or a model has no price.
        """
        known = ", ".join(self.tiers)
        unknown = [
            PolicyProblem(f"tiers.{name}", f"no routing tier {name!r} (routing.yaml's tiers: {known})")
            for name in budgets.tiers
            if name not in self.tiers
        ]
        if unknown:
            raise RoutingPolicyError("budgets.yaml", unknown)
        if budgets.allow_unpriced:
            return
        problems = [
            PolicyProblem(f"tiers.{name}.model", f"{tier.model!r} has no price in budgets.yaml")
            for name, tier in self.tiers.items()
            if tier.model is not None and not _priced(tier.model, budgets)
        ]
        model = self.classifier.model
        if self.classifier.mode == "model" and model is not None and not _priced(model, budgets):
            problems.append(PolicyProblem("classifier.model", f"{model!r} has no price in budgets.yaml"))
        if problems:
            raise RoutingPolicyError(file, problems)


def _priced(model: str, budgets: Budgets) -> bool:
    return model in budgets.prices or any(model.startswith(name + "-") for name in budgets.prices)


def _problems(exc: ValidationError) -> list[PolicyProblem]:
    return [
        PolicyProblem(
            ".".join(str(p) for p in error["loc"]) or "(top level)",
            str(error["msg"]).removeprefix("Value error, ") + quoted_number_hint(error),
        )
        for error in exc.errors()
    ]


def parse_routing_policy(data: Any, file: str = "routing.yaml") -> RoutingPolicy:
    """Validate already-loaded YAML.

    Raises:
        RoutingPolicyError: with every problem found.
    """
    try:
        policy = RoutingPolicy.model_validate(data)
    except ValidationError as exc:
        raise RoutingPolicyError(file, _problems(exc)) from None
    problems = policy.reference_problems()
    if problems:
        raise RoutingPolicyError(file, problems)
    return policy


def load_routing_policy(directory: Path = DEFAULT_POLICY_DIR, budgets: Budgets | None = None) -> RoutingPolicy:
    """Read and validate `<directory>/routing.yaml`; with `budgets`, also check every model has a price.

    Raises:
        RoutingPolicyError: the file is missing, not YAML, invalid, or names an unpriced model.
    """
    path = directory / "routing.yaml"
    if not path.exists():
        raise RoutingPolicyError(path.name, [PolicyProblem("(file)", "missing")])
    try:
        data: Any = load_yaml_file(path)  # refuses a repeated key, deep nesting, a directory, non-UTF-8
    except YamlFileError as exc:
        raise RoutingPolicyError(path.name, [PolicyProblem(exc.where, exc.reason)]) from None
    policy = parse_routing_policy(data if data is not None else {}, path.name)
    if budgets is not None:
        policy.check_prices(budgets, path.name)
    return policy


SCHEMA_NAME = "routing.schema.json"


def json_schema() -> dict[str, Any]:
    return RoutingPolicy.model_json_schema()


def write_schema(directory: Path) -> Path:
    """Write routing.schema.json into `directory` (policies/schema)."""
    path = directory / SCHEMA_NAME
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.stdout.write(f"wrote {write_schema(DEFAULT_POLICY_DIR / 'schema')}\n")
