"""Rules: the first match wins and names itself; docs-only makes no classifier call; security goes to a human."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.router.policy import load_routing_policy, parse_routing_policy
from agent.router.route import route
from agent.router.rules import RuleSet
from agent.router.ticket import TicketFacts

from .conftest import GOOD_POLICY, POLICIES, ForbiddenClassifier

REPO_RULES = RuleSet(load_routing_policy(POLICIES))


def _policy(rules: list[dict]):  # type: ignore[no-untyped-def, type-arg]
    return parse_routing_policy({**GOOD_POLICY, "rules": rules})


@pytest.mark.parametrize(
    ("ticket", "tier", "rule"),
    [
        (TicketFacts.of("Improve wording", "a paragraph", labels=["DOCS-ONLY"]), "small", "docs-only-label"),
        (TicketFacts.of("Session cookie accepted after logout", labels=["Security"]), "human", "security-label"),
        (TicketFacts.of("Compaction drops rows", labels=["data-loss"]), "human", "data-loss-label"),
        (TicketFacts.of("Bump golang.org/x/net", "fixes CVE-2023-3978 in a dependency"), "human", "security-text"),
        (TicketFacts.of("Handler logs the password in plain text"), "human", "secret-leak-text"),
        (
            TicketFacts.of("Cache", "After a restart we lose all data written in the last minute"),
            "human",
            "data-loss-text",
        ),
        (TicketFacts.of("Pool never stops", "a goroutine leak in Pool.Close under load"), "strong", "concurrency-text"),
        (TicketFacts.of("Counter", "WARNING: DATA RACE\nRead at 0x00c by goroutine 7"), "strong", "concurrency-text"),
        (
            TicketFacts.of("Crash", "panic: runtime error: index out of range\n\ngoroutine 1 [running]:"),
            "strong",
            "crash-text",
        ),
        (TicketFacts.of("Fix typo in README", "pacakge -> package"), "small", "docs-title"),
        (TicketFacts.of("Clarify the retry section", "see docs/retries.md and README.md"), "small", "docs-paths"),
        (TicketFacts.of("Replace deprecated ioutil", "ioutil is deprecated since 1.16"), "small", "deprecated-ioutil"),
        (TicketFacts.of("Bump minimum Go version to 1.22"), "small", "go-version-bump"),
        (TicketFacts.of("Explain the cache settings", components=["Docs"]), "small", "docs-component"),
        (TicketFacts.of("Write up the API", issue_type="Documentation"), "small", "docs-type"),
    ],
)
async def test_the_repository_rules_route_these_tickets(policy, ticket: TicketFacts, tier: str, rule: str) -> None:  # type: ignore[no-untyped-def]
    decision = await route(ticket, policy, classifier=ForbiddenClassifier())
    assert (decision.tier, decision.rule, decision.decided_by) == (tier, rule, "rule")
    assert decision.reason == next(r.reason for r in policy.rules if r.name == rule)
    assert decision.model == policy.model_of(tier) and decision.confidence == 1.0


async def test_the_sample_auth_crash_is_a_model_ticket_not_a_human_one(policy) -> None:  # type: ignore[no-untyped-def]
    ticket = TicketFacts.of(
        "panic: nil pointer dereference in the auth handler for an unknown bearer token", components=["auth"]
    )
    decision = await route(ticket, policy, classifier=ForbiddenClassifier())
    assert (decision.tier, decision.rule) == ("strong", "crash-text")


async def test_a_docs_typo_that_reports_a_crash_is_not_a_docs_ticket(policy) -> None:  # type: ignore[no-untyped-def]
    ticket = TicketFacts.of("Typo in flag name makes the server crash on start")
    assert RuleSet(policy).first_match(ticket) is None  # `unless` vetoes docs-title; the classifier decides


def test_the_first_matching_rule_wins() -> None:
    rules = [
        {"name": "first", "when": {"text": "(?i)leak"}, "tier": "strong", "reason": "first"},
        {"name": "second", "when": {"labels": ["docs"]}, "tier": "small", "reason": "second"},
    ]
    ticket = TicketFacts.of("memory leak in docs builder", labels=["docs"])
    assert RuleSet(_policy(rules)).first_match(ticket).name == "first"  # type: ignore[union-attr]
    assert RuleSet(_policy(rules[::-1])).first_match(ticket).name == "second"  # type: ignore[union-attr]


def test_conditions_combine_with_and_and_lists_with_or() -> None:
    rules = [
        {
            "name": "auth-go",
            "when": {"components": ["auth", "login"], "paths_any": ["internal/auth/*"], "title": "(?i)token"},
            "tier": "human",
            "reason": "r",
        }
    ]
    rs = RuleSet(_policy(rules))
    hit = TicketFacts.of("Token refresh fails", "in internal/auth/refresh.go", components=["Login"])
    assert rs.first_match(hit) is not None
    assert rs.first_match(hit.model_copy(update={"components": ("billing",)})) is None
    assert rs.first_match(hit.model_copy(update={"paths": ("internal/cache/lru.go",)})) is None
    assert rs.first_match(hit.model_copy(update={"title": "Refresh fails"})) is None


def test_paths_all_needs_a_path_and_every_path_to_match() -> None:
    rs = RuleSet(_policy([{"name": "md", "when": {"paths_all": ["*.md", "docs/*"]}, "tier": "small", "reason": "r"}]))
    assert rs.first_match(TicketFacts.of("Update", "README.md and docs/setup.md")) is not None
    assert rs.first_match(TicketFacts.of("Update", "README.md and server.go")) is None
    assert rs.first_match(TicketFacts.of("Update", "no paths at all")) is None


def test_named_paths_come_from_title_prefix_files_and_package_dirs() -> None:
    t = TicketFacts.of(
        "net/http: Transport leaks", "see internal/pool/pool.go:42 and pkg/cache, https://x.io/a.go, go.mod"
    )
    assert t.paths == ("net/http", "internal/pool/pool.go", "go.mod", "pkg/cache")


def test_named_paths_keep_leading_dots_and_drop_paths_outside_the_repository() -> None:
    # `.strip("./")` made `.github/workflows/release.yml` `github/...` and `../x/y.go` `x/y.go`
    t = TicketFacts.of("CI", "The workflow .github/workflows/release.yml, ./docs/a.md, ../x/y.go and a/../b/c.go")
    assert t.paths == (".github/workflows/release.yml", "docs/a.md", "b/c.go")


def test_path_conditions_use_the_policies_glob_syntax() -> None:
    rules = [
        {"name": "ci", "when": {"paths_any": [".github/**"]}, "tier": "human", "reason": "ci"},
        {"name": "auth", "when": {"paths_any": ["**/auth/**"]}, "tier": "human", "reason": "auth"},
        {"name": "docs", "when": {"paths_all": ["docs/*"]}, "tier": "small", "reason": "docs"},
    ]
    rs = RuleSet(_policy(rules))

    def rule(body: str) -> str | None:
        hit = rs.first_match(TicketFacts.of("t", body))
        return hit.name if hit else None

    assert rule("The workflow .github/workflows/release.yml pushes") == "ci"
    assert rule("auth/session.go returns a stale session") == "auth"  # `**/` matches no directory too
    assert rule("internal/auth/session.go returns a stale session") == "auth"
    assert rule("docs/setup.md is out of date") == "docs"
    assert rule("docs/gen/main.go panics") is None  # `*` does not cross `/`
    assert rule("Docs/setup.md is out of date") is None  # case-sensitive, like git's paths


async def test_go_code_under_docs_is_not_a_docs_ticket(policy) -> None:  # type: ignore[no-untyped-def]
    ticket = TicketFacts.of(
        "Site generator writes wrong sitemap",
        "docs/gen/sitemap.go drops every second URL from the sitemap; the handler in docs/gen/server.go then "
        "serves stale pages.",
    )
    decision = await route(ticket, policy, classifier=None)
    assert decision.rule != "docs-paths" and decision.tier == "strong"
    md = await route(TicketFacts.of("Clarify", "docs/guide/setup.md and docs/gen/README.md"), policy, classifier=None)
    assert md.rule == "docs-paths"


def test_a_documentation_label_with_a_bug_label_is_not_a_docs_ticket(policy) -> None:  # type: ignore[no-untyped-def]
    rules = RuleSet(policy)
    assert rules.first_match(TicketFacts.of("Getting started page", labels=["documentation"])).name == "docs-label"  # type: ignore[union-attr]
    assert rules.first_match(TicketFacts.of("Getting started page", labels=["documentation", "bug"])) is None


@settings(max_examples=60, deadline=None)
@given(
    st.text(max_size=300),
    st.text(max_size=2000),
    st.lists(st.text(max_size=20), max_size=5),
    st.lists(st.text(max_size=20), max_size=3),
)
def test_the_repository_rules_take_any_ticket(title: str, body: str, labels: list[str], components: list[str]) -> None:
    rule = REPO_RULES.first_match(TicketFacts.of(title, body, labels=labels, components=components))
    assert rule is None or rule.tier in ("small", "strong", "human")
