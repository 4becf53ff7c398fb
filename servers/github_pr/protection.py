"""The GitHub backend's start-up check: serve a repository only if its default branch requires review.

A token that can push and open pull requests could otherwise merge through the API. The check
reads classic branch protection (needs administration:read) and repository rulesets (readable with
metadata access); either one requiring at least one approving review is enough. Anything it cannot
verify counts as unprotected: the server fails closed, unless policy accepts the risk per repo.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from servers.common.errors import NotFound, UpstreamFailure
from servers.common.policy import Repo

from .github import GitHubBackend


def unprotected_reason(backend: GitHubBackend, name: str) -> str | None:
    """Why `name`'s default branch is not known to require an approving review; None when it is.

    Raises:
        NotFound: the repository is not visible to the token.
        RateLimited, UpstreamFailure: GitHub failed.
    """
    repo = backend.repository(name)
    calls = backend.calls
    branch = repo.default_branch
    required = 0
    try:
        protection = calls("branch protection", lambda: repo.get_branch(branch).get_protection())
        reviews: Any = protection.raw_data.get("required_pull_request_reviews") or {}
        required = int(reviews.get("required_approving_review_count", 0))
    except NotFound:
        pass  # no classic protection, or not readable by this token: rulesets may still require reviews
    except UpstreamFailure as exc:
        if exc.status != 403:
            raise
    rules: Any = calls(
        "branch rules",
        lambda: repo.requester.requestJsonAndCheck("GET", f"{repo.url}/rules/branches/{branch}")[1],
    )
    for rule in rules or []:
        if isinstance(rule, dict) and rule.get("type") == "pull_request":
            params: Any = rule.get("parameters") or {}
            required = max(required, int(params.get("required_approving_review_count", 0)))
    if required >= 1:
        return None
    return f"default branch {branch} of {repo.full_name} does not require an approving review"


def refused_repos(backend: GitHubBackend, policies: Mapping[str, Repo]) -> dict[str, str]:
    """Repos (policy name -> reason) the server must not serve.

    A repo whose policy sets `accept_unprotected_default_branch` is served anyway (the caller logs it).

    Raises:
        RateLimited, UpstreamFailure: GitHub failed while checking.
    """
    refused: dict[str, str] = {}
    for name in backend.names:
        try:
            reason = unprotected_reason(backend, name)
        except NotFound as exc:
            reason = exc.message
        policy = policies.get(name)
        if reason is not None and not (policy is not None and policy.accept_unprotected_default_branch):
            refused[name] = reason
    return refused
