"""routing.yaml: the repository's file loads and its schema is current; every bad file gets structured errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.policy import Budgets, Price, TierOverrides
from agent.router.errors import RoutingPolicyError
from agent.router.policy import json_schema, load_routing_policy, parse_routing_policy, write_schema

from .conftest import GOOD_POLICY, POLICIES

GOOD = GOOD_POLICY


def test_the_repository_policy_loads_with_priced_models(policy) -> None:  # type: ignore[no-untyped-def]
    assert policy.strongest == "strong" and policy.model_of("human") is None
    assert policy.tier_of_kind("security") == "human" and policy.tier_of_kind("docs") == "small"
    assert [r.name for r in policy.rules][:2] == ["security-label", "data-loss-label"]


def test_the_committed_schema_is_current(tmp_path: Path) -> None:
    written = write_schema(tmp_path)
    assert json.loads(written.read_text()) == json.loads((POLICIES / "schema" / written.name).read_text()), (
        "policies/schema/routing.schema.json is stale: run python -m agent.router.policy"
    )
    assert json_schema()["title"] == "RoutingPolicy"


def _with(change: dict) -> dict:  # type: ignore[type-arg]
    return {**GOOD, **change}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"rules": [{"name": "x", "when": {"text": "(unclosed"}, "tier": "small", "reason": "r"}]},
            "rules.0.when.text",
            "regular expression",
        ),
        ({"rules": [{"name": "x", "when": {}, "tier": "small", "reason": "r"}]}, "rules.0.when", "at least one of"),
        (
            {"rules": [{"name": "x", "when": {"labels": ["a"]}, "tier": "gold", "reason": "r"}]},
            "rules.0.tier",
            "no tier 'gold'",
        ),
        (
            {"rules": [{"name": "x", "when": {"labels": ["a"]}, "tier": "small", "reason": "r", "colour": 1}]},
            "rules.0.colour",
            "Extra inputs",
        ),
        (
            {"rules": [{"name": "Bad Name", "when": {"labels": ["a"]}, "tier": "small", "reason": "r"}]},
            "rules.0.name",
            "pattern",
        ),
        ({"strongest": "human"}, "strongest", "has no model"),
        ({"strongest": "platinum"}, "strongest", "no tier"),
        ({"kinds": {k: v for k, v in GOOD["kinds"].items() if k != "security"}}, "kinds.security", "missing"),
        ({"classifier": {"mode": "model"}}, "classifier.model", "required"),
        ({"classifier": {"threshold": 0.2}}, "classifier.threshold", "greater than or equal to 0.5"),
    ],
)
def test_a_bad_policy_names_the_field(change: dict, field: str, words: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(RoutingPolicyError) as caught:
        parse_routing_policy(_with(change))
    problems = {p.field: p.message for p in caught.value.problems}
    assert field in problems, problems
    assert words in problems[field]
    assert caught.value.message.startswith("routing.yaml: ")
    assert caught.value.to_dict()["file"] == "routing.yaml"


def test_every_problem_is_listed_not_only_the_first() -> None:
    bad = _with(
        {"strongest": "human", "rules": [{"name": "x", "when": {"labels": ["a"]}, "tier": "gold", "reason": "r"}]}
    )
    with pytest.raises(RoutingPolicyError) as caught:
        parse_routing_policy(bad)
    assert {p.field for p in caught.value.problems} == {"strongest", "rules.0.tier"}
    assert "(and 1 more)" in caught.value.message


def test_file_level_problems_are_structured_too(tmp_path: Path) -> None:
    with pytest.raises(RoutingPolicyError, match=r"routing.yaml: \(file\): missing"):
        load_routing_policy(tmp_path)
    (tmp_path / "routing.yaml").write_text("tiers: [unclosed\n")
    with pytest.raises(RoutingPolicyError) as caught:
        load_routing_policy(tmp_path)
    assert caught.value.problems[0].field.startswith("line ") and "not valid YAML" in caught.value.problems[0].message


def test_an_unpriced_model_is_refused_unless_policy_allows_it(tmp_path: Path) -> None:
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(GOOD))
    budgets = Budgets(prices={"gpt-4o-mini": Price(input=0.15, output=0.6)})
    with pytest.raises(RoutingPolicyError) as caught:
        load_routing_policy(tmp_path, budgets)
    assert [p.field for p in caught.value.problems] == ["tiers.strong.model"]
    assert load_routing_policy(tmp_path, budgets.model_copy(update={"allow_unpriced": True})).strongest == "strong"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from([*GOOD_POLICY, "when", "extra"]), _json, max_size=4))
def test_any_document_is_a_policy_or_a_structured_error(change: dict) -> None:  # type: ignore[type-arg]
    problems = []
    try:
        parse_routing_policy({**GOOD_POLICY, **change})
    except RoutingPolicyError as exc:  # anything else fails the test
        problems = exc.problems or [None]
    assert all(p is not None and p.field and p.message for p in problems)


def test_a_budgets_tier_that_routing_does_not_have_is_refused(tmp_path: Path) -> None:
    # a misspelt override (`smal`) was silently ignored: the routed run got the default caps
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(GOOD))
    budgets = Budgets(tiers={"smal": TierOverrides(max_cost_usd=0.0001)}, allow_unpriced=True)
    with pytest.raises(RoutingPolicyError) as caught:
        load_routing_policy(tmp_path, budgets)
    assert caught.value.file == "budgets.yaml"
    assert [p.field for p in caught.value.problems] == ["tiers.smal"]
    assert caught.value.message.startswith("budgets.yaml: tiers.smal: no routing tier 'smal'")
    assert all(tier in caught.value.message for tier in GOOD["tiers"])
    fixed = budgets.model_copy(update={"tiers": {"small": TierOverrides(max_cost_usd=0.0001)}})
    assert load_routing_policy(tmp_path, fixed).strongest == "strong"
