"""The agent's policy files: a repeated key in budgets.yaml or routing.yaml is refused, not last-one-wins; a
directory or binary file in a policy file's place is named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.policy import DEFAULT_POLICY_DIR, PolicyError, load_agent_policy
from agent.router.errors import RoutingPolicyError
from agent.router.policy import load_routing_policy


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, target)
    return target


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
