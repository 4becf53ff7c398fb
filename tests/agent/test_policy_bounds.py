"""The agent's policy files: a tier cannot override past the run limits' bounds, a cache read cannot be priced
above the uncached input, and a repeated key in budgets.yaml or routing.yaml is refused, not last-one-wins."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.llm.pricing import PriceBook
from agent.llm.types import Usage
from agent.policy import DEFAULT_POLICY_DIR, Budgets, PolicyError, Price, RunLimits, load_agent_policy
from agent.router.errors import RoutingPolicyError
from agent.router.policy import load_routing_policy


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, target)
    return target


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"wall_clock_s": 1.0e12}, "wall_clock_s"),
        ({"max_output_tokens": 100_000_000}, "max_output_tokens"),
    ],
)
def test_a_tier_override_is_held_to_the_run_limits_bounds(override: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError, match=rf"tiers\.cheap\.{field}: Input should be less than or equal to"):
        Budgets.model_validate({"tiers": {"cheap": override}})
    with pytest.raises(ValidationError):
        RunLimits.model_validate({**RunLimits().model_dump(), **override})  # the same bound


def test_a_tier_within_bounds_overrides_and_validates(policy_dir: Path) -> None:
    budgets = Budgets.model_validate({"tiers": {"cheap": {"wall_clock_s": 60, "max_output_tokens": 1024}}})
    limits = budgets.limits_for("cheap")
    assert (limits.wall_clock_s, limits.max_output_tokens, limits.max_steps) == (60, 1024, RunLimits().max_steps)
    assert budgets.limits_for(None) == budgets.run
    assert load_agent_policy(policy_dir).budgets.tiers  # the shipped tiers are within bounds


def test_policy_loading_names_the_tier_field(policy_dir: Path) -> None:
    path = policy_dir / "budgets.yaml"
    path.write_text(path.read_text().replace("tiers:", "tiers:\n  huge: {wall_clock_s: 1.0e+12}", 1))
    with pytest.raises(PolicyError) as caught:
        load_agent_policy(policy_dir)
    assert caught.value.message == "budgets.yaml: tiers.huge.wall_clock_s: Input should be less than or equal to 86400"


def test_a_cached_input_price_above_input_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"cached_input 30\.0 is above input 3\.0"):
        Budgets.model_validate({"prices": {"m": {"input": 3.0, "output": 15.0, "cached_input": 30.0}}})
    # at or below input, the worst case the budget check assumes bounds what any call can cost
    book = PriceBook(Budgets(prices={"m": Price(input=3.0, output=15.0, cached_input=3.0)}))
    actual = book.cost("m", Usage(input_tokens=100_000, output_tokens=2048, cached_tokens=100_000))
    assert actual <= book.worst_case("m", 100_000, 2048)


def test_budgets_loading_names_the_price(policy_dir: Path) -> None:
    path = policy_dir / "budgets.yaml"
    path.write_text(path.read_text().replace("prices:", "prices:\n  dear: {input: 1, cached_input: 2, output: 1}", 1))
    with pytest.raises(PolicyError, match=r"^budgets\.yaml: prices\.dear: cached_input 2\.0 is above input 1\.0"):
        load_agent_policy(policy_dir)


def test_a_second_run_block_in_budgets_is_refused(policy_dir: Path) -> None:
    path = policy_dir / "budgets.yaml"
    path.write_text(path.read_text() + "run:\n  max_cost_usd: 1000\n")
    with pytest.raises(PolicyError, match=r"^budgets\.yaml: line \d+: duplicate key 'run' \(first at line \d+\)$"):
        load_agent_policy(policy_dir)


def test_a_budgets_directory_or_binary_escalation_is_named(policy_dir: Path) -> None:
    (policy_dir / "budgets.yaml").unlink()
    (policy_dir / "budgets.yaml").mkdir()
    with pytest.raises(PolicyError, match=r"^budgets\.yaml: is a directory, not a file$"):
        load_agent_policy(policy_dir)
    (policy_dir / "budgets.yaml").rmdir()
    shutil.copy(DEFAULT_POLICY_DIR / "budgets.yaml", policy_dir / "budgets.yaml")
    (policy_dir / "escalation.yaml").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(PolicyError, match=r"^escalation\.yaml: not UTF-8 text \(byte 0\)$"):
        load_agent_policy(policy_dir)


def test_a_repeated_key_in_routing_is_a_structured_problem(policy_dir: Path) -> None:
    path = policy_dir / "routing.yaml"
    path.write_text(path.read_text() + "rules: []\n")
    with pytest.raises(RoutingPolicyError) as caught:
        load_routing_policy(policy_dir)
    problem = caught.value.problems[0]
    assert problem.field.startswith("line ")
    assert problem.message.startswith("duplicate key 'rules'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # each was coerced (or, for .inf, accepted) although a wrong type is documented to stop the process
        ('allow_unpriced: "yes"', "budgets.yaml: allow_unpriced: Input should be a valid boolean"),
        ("run: {max_steps: true}", "budgets.yaml: run.max_steps: Input should be a valid integer"),
        (
            'run: {max_tokens: "5000"}',
            "budgets.yaml: run.max_tokens: Input should be a valid integer (got the text '5000': write a number "
            "without quotes; an exponent needs its sign, 1.0e+6)",
        ),
        ("daily: {max_cost_usd: .inf}", "budgets.yaml: daily.max_cost_usd: Input should be a finite number"),
        ("daily: {jump_factor: .inf}", "budgets.yaml: daily.jump_factor: Input should be a finite number"),
        ("prices: {m: {input: .nan, output: 1}}", "budgets.yaml: prices.m.input: Input should be a finite number"),
    ],
)
def test_a_wrong_type_or_an_infinite_number_in_budgets_is_refused(policy_dir: Path, text: str, message: str) -> None:
    (policy_dir / "budgets.yaml").write_text(text + "\n")
    with pytest.raises(PolicyError) as caught:
        load_agent_policy(policy_dir)
    assert caught.value.message == message


def test_a_wrong_type_in_escalation_or_routing_is_refused(policy_dir: Path) -> None:
    (policy_dir / "escalation.yaml").write_text("default_owner: someone\nlabels: needs-human\n")
    with pytest.raises(PolicyError, match=r"^escalation.yaml: labels: Input should be a valid tuple"):
        load_agent_policy(policy_dir)
    routing = policy_dir / "routing.yaml"
    routing.write_text(routing.read_text().replace("threshold: 0.95", 'threshold: "0.95"', 1))
    budgets = Budgets(allow_unpriced=True)
    with pytest.raises(RoutingPolicyError) as caught:
        load_routing_policy(policy_dir, budgets)
    fields = {p.field for p in caught.value.problems}
    assert "classifier.threshold" in fields, caught.value.problems
