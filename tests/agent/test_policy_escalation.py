"""escalation.yaml owner rules: components as routing compares them, paths in the policies' one glob syntax."""

from __future__ import annotations

import pytest

from agent.policy import Escalation, OwnerRule


def _escalation() -> Escalation:
    return Escalation(
        default_owner="platform-oncall",
        owners=(
            OwnerRule(component="ratelimit", owner="priya-raman"),
            OwnerRule(path="**/cache/**", owner="ana-sousa"),
            OwnerRule(path="docs/*.md", owner="docs-owner"),
            OwnerRule(path="*.go", owner="go-owner"),
        ),
    )


def test_a_component_matches_whatever_its_case() -> None:
    # routing compares components casefolded; owner rules compared them exactly ('RateLimit' fell through)
    assert _escalation().owner_for(["RateLimit"], []) == "priya-raman"


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        ("cache/lru.go", "ana-sousa"),  # fnmatch's '**/cache/**' needed a directory above cache/
        ("internal/cache/lru.go", "ana-sousa"),
        ("docs/guide.md", "docs-owner"),
        ("docs/gen/guide.md", "platform-oncall"),  # '*' does not cross '/' ...
        ("Docs/guide.md", "platform-oncall"),  # ... and paths are case-sensitive, as git's are
        ("README.md", "platform-oncall"),
    ],
)
def test_paths_match_with_the_policies_glob_syntax(path: str, owner: str) -> None:
    assert _escalation().owner_for([], [path]) == owner


def test_a_path_under_a_match_matches_as_in_protected_yaml() -> None:
    rules = Escalation(default_owner="platform-oncall", owners=(OwnerRule(path="internal/cache", owner="ana-sousa"),))
    assert rules.owner_for([], ["internal/cache/lru.go"]) == "ana-sousa"
    assert rules.owner_for([], ["internal/cachex/lru.go"]) == "platform-oncall"


def test_the_first_matching_rule_wins() -> None:
    assert _escalation().owner_for(["ratelimit"], ["internal/cache/lru.go"]) == "priya-raman"
    assert _escalation().owner_for([], ["main.go", "internal/cache/lru.go"]) == "ana-sousa"


def test_an_owner_path_that_matches_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'\.\.' segment"):
        OwnerRule(path="../cache/**", owner="ana-sousa")
