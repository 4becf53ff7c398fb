"""GitHub closing keywords (`Fixes #1`, `closes owner/name#5`, `Resolved: <issue URL>`) in what github-pr publishes
get a zero-width space after the keyword, so merging the bot's pull request closes no issue a model (or the ticket
it read) named. The one exception: the pull request's own GitHub issue, which the agent's description resolves."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from servers.common.policy import Policies, Repo
from servers.github_pr.sanitise import ZWSP, sanitise_markdown, sanitise_title
from servers.github_pr.store import PullStore

from .conftest import FIX_PATCH, local_service, open_fix

OWN = frozenset({"#12", "acme/svc#12"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fixes #1", f"Fixes{ZWSP} #1"),
        ("Closes acme/other#5", f"Closes{ZWSP} acme/other#5"),
        ("fixed: #3, RESOLVED #4, close #5", f"fixed{ZWSP}: #3, RESOLVED{ZWSP} #4, close{ZWSP} #5"),
        ("**Fixes** #3 and _resolves_: #4", f"**Fixes{ZWSP}** #3 and _resolves{ZWSP}_: #4"),
        ("closes https://github.com/acme/other/issues/9", f"closes{ZWSP} https://github.com/acme/other/issues/9"),
        ("see a-fix #3 and prefix #4", f"see a-fix{ZWSP} #3 and prefix #4"),
        ("`Fixes #1` in code stays", "`Fixes #1` in code stays"),
        # the pull request's own issue, however it is spelled, stays a closing reference
        ("Resolves #12: Add subtracts", "Resolves #12: Add subtracts"),
        ("fixes ACME/svc#12 and fixes #0012", "fixes ACME/svc#12 and fixes #0012"),
        ("closes https://github.com/acme/svc/issues/12", "closes https://github.com/acme/svc/issues/12"),
        ("Resolves #12, fixes #13", f"Resolves #12, fixes{ZWSP} #13"),
        ("fixes other/svc#12", f"fixes{ZWSP} other/svc#12"),
    ],
)
def test_closing_keywords_are_neutralised_but_for_the_own_issue(text: str, expected: str) -> None:
    result = sanitise_markdown(text, closes=OWN)
    assert result.text == expected
    assert sanitise_markdown(result.text, closes=OWN).text == result.text
    assert sanitise_title(text, OWN).text == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # GitHub renders an entity as its character, so these read as `Fixes #5`
        ("Fixes &#35;5", f"Fixes{ZWSP} #5"),
        ("Fixes &num;5", f"Fixes{ZWSP} #5"),
        ("&#70;ixes #5", f"Fixes{ZWSP} #5"),
        ("&#x46;&#x69;&#x78;&#x65;&#x73; &#x23;5", f"Fixes{ZWSP} #5"),
        ("Resolves &#35;12", "Resolves #12"),
        # entities that would start Markdown structure stay as written
        ("&#35; not a heading", "&#35; not a heading"),
        ("&#49;. not a list", "&#49;. not a list"),
        ("`Fixes &#35;5`", "`Fixes &#35;5`"),
    ],
)
def test_closing_keywords_spelled_with_entities_are_neutralised(text: str, expected: str) -> None:
    result = sanitise_markdown(text, closes=OWN)
    assert result.text == expected
    assert sanitise_markdown(result.text, closes=OWN).text == result.text


def test_with_no_own_issue_every_closing_keyword_is_neutralised() -> None:
    result = sanitise_markdown("Resolves #12\n\n[^1]: fixes #2\n")
    assert result.text == f"Resolves{ZWSP} #12\n\n[^1]: fixes{ZWSP} #2\n"
    assert result.counts["closing_keywords"] == 2


@pytest.mark.parametrize(
    "text",
    [
        "fix a" + "-fixa" * 12_000,
        "fixes " + " " * 60_000,
        "fix a/" + "_fix" * 15_000,
        "fixhttp://" + ".fixhttp:/" * 6_000,
    ],
)
def test_looking_for_closing_keywords_stays_linear(text: str) -> None:
    start = time.process_time()
    sanitise_markdown(text)
    sanitise_title(text)
    assert time.process_time() - start < 5.0


def _issue_policies(policies: Policies) -> Policies:
    repos = {name: Repo(path=repo.path, github="acme/svc") for name, repo in policies.repos.repos.items()}
    return policies.model_copy(update={"repos": policies.repos.model_copy(update={"repos": repos})})


def test_the_agents_description_still_resolves_its_own_issue_and_nothing_else(
    tmp_path: Path, remote: Path, policies: Policies
) -> None:
    """The agent writes `Resolves #12: <title>` for GitHub issue 12 (agent/loop.py); a model's `Fixes #1` is inert."""
    policies = _issue_policies(policies)
    service = local_service(tmp_path, remote, policies)
    identity = policies.identity("agent")
    body = "Resolves #12: Add subtracts\n\nAlso fixes #1 and closes acme/svc#5; fixes acme/svc#12."
    ref = open_fix(service, policies, FIX_PATCH, ticket="12", title="Fix Add (fixes #7, fixes #12)", body=body)
    store = PullStore(tmp_path / "state" / "prs.sqlite")
    pull = store.get("svc", ref.number)
    assert pull.body.startswith(
        f"Resolves #12: Add subtracts\n\nAlso fixes{ZWSP} #1 and closes{ZWSP} acme/svc#5; fixes acme/svc#12.\n"
    )
    assert pull.title == f"Fix Add (fixes{ZWSP} #7, fixes #12)"
    # a comment closes nothing on GitHub, but it is published the same way, without the exception
    service.comment("agent", identity, "svc", ref.number, "Fixes #12 and fixes #3")
    assert store.comments("svc", ref.number) == [f"Fixes{ZWSP} #12 and fixes{ZWSP} #3"]


def test_a_jira_tickets_pull_request_closes_no_issue(tmp_path: Path, remote: Path, policies: Policies) -> None:
    service = local_service(tmp_path, remote, policies)
    ref = open_fix(service, policies, FIX_PATCH, body="Resolves SVC-7. Fixes #12.")
    body = PullStore(tmp_path / "state" / "prs.sqlite").get("svc", ref.number).body
    assert re.match(f"Resolves SVC-7. Fixes{ZWSP} #12.\n", body)
