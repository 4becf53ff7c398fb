"""Choosing and building the backend from settings (a table; the unused SDK is never imported)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from servers.common.errors import ConfigError, GoresolveError
from servers.common.gitenv import is_repository
from servers.common.logging import get_logger
from servers.common.policy import Policies
from servers.common.repo_names import repo_slug

from .models import PullRequestBackend
from .settings import GitHubPrSettings

log = get_logger(__name__)

Built = tuple[PullRequestBackend, dict[str, str]]


def _local(settings: GitHubPrSettings, policies: Policies) -> Built:
    from . import git
    from .local import LocalBackend
    from .store import PullStore

    remotes: dict[str, Path] = {}
    refused: dict[str, str] = {}
    default_dir = settings.work_dir() / "remotes"
    for name, repo in policies.repos.repos.items():
        target = (settings.remotes_dir or default_dir) / f"{repo_slug(name)}.git"
        source = Path(repo.path) if repo.path else None
        if source is not None and not source.is_absolute():
            source = (settings.policy_dir / source).resolve()
        made = (target / "HEAD").exists()
        try:
            if source is not None:
                git.ensure_bare(source, target)
        except GoresolveError as exc:
            refused[name] = exc.message if made else "no local remote could be made"
            log.warning("local remote unavailable", repo=name, error=exc.message, detail=exc.detail)
            continue
        if made and source is not None and is_repository(source):
            try:
                git.refresh_bare(source, target, settings.branch_prefix)
            except GoresolveError as exc:  # the remote still serves, as it was
                log.warning("local remote not refreshed", repo=name, error=exc.message, detail=exc.detail)
        if (target / "HEAD").exists():
            remotes[name] = target
    store = PullStore(settings.work_dir() / "prs.sqlite")
    return LocalBackend(remotes, store, settings.work_dir(), settings.issues_dir, settings.bot_name), refused


def _github(settings: GitHubPrSettings, policies: Policies) -> Built:
    from .github import GitHubBackend, connect
    from .github_calls import Calls, RetryPolicy
    from .protection import refused_repos

    if settings.token is None:
        raise ConfigError("github-pr: the github backend needs a token (setting GORESOLVE_GITHUB_PR_TOKEN)")
    names = {name: repo.github for name, repo in policies.repos.repos.items() if repo.github}
    client = connect(
        settings.token.get_secret_value(),
        base_url=settings.base_url,
        timeout_s=settings.timeout_s,
        seconds_between_writes=settings.seconds_between_writes,
        max_body_bytes=settings.max_response_bytes,
    )
    policy = RetryPolicy(
        max_retries=settings.max_retries, max_wait_s=settings.max_retry_wait_s, deadline_s=settings.deadline_s
    )
    backend = GitHubBackend(client, names, Calls(policy), login=settings.github_login)
    try:
        refused = refused_repos(backend, policies.repos.repos)
    except GoresolveError as exc:  # cannot verify protection: serve nothing rather than guess
        log.error("branch protection check failed", error=exc.message, detail=exc.detail)
        refused = dict.fromkeys(names, "branch protection could not be verified at start")
    for name, repo in policies.repos.repos.items():
        if name not in names:
            refused[name] = "no GitHub name in policy (repos.yaml `github`)"
        elif repo.accept_unprotected_default_branch:
            log.warning("serving a repo whose default branch may be unprotected (accepted by policy)", repo=name)
    for name, reason in refused.items():
        log.warning("repository not served", repo=name, reason=reason)
    return backend, refused


BACKENDS: dict[str, Callable[[GitHubPrSettings, Policies], Built]] = {"local": _local, "github": _github}


def make_backend(settings: GitHubPrSettings, policies: Policies) -> Built:
    """The configured backend and the repositories it must refuse (name -> reason).

    Raises:
        ConfigError: the github backend without a token.
    """
    return BACKENDS[settings.backend](settings, policies)
