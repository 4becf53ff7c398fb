"""Choosing a Jira backend from settings. Implementations are imported lazily, so the stdio default
(local ticket files) never loads the `jira` package."""

from __future__ import annotations

from servers.common.errors import ConfigError
from servers.jira_read.models import JiraBackend
from servers.jira_read.settings import JiraReadSettings


def make_backend(settings: JiraReadSettings) -> JiraBackend:
    """Build the configured backend.

    Raises:
        ConfigError: a remote backend without URL or token, or unreadable ticket files.
    """
    if settings.backend == "local":
        from servers.jira_read.local import LocalJiraBackend

        return LocalJiraBackend(settings.tickets_dir)
    if not settings.url or settings.api_token is None:
        raise ConfigError("settings GORESOLVE_JIRA_READ_URL and GORESOLVE_JIRA_READ_API_TOKEN are required")
    from servers.jira_read.cloud import CloudJiraBackend

    cloud = settings.backend == "cloud"
    if cloud and not settings.user:
        raise ConfigError("setting GORESOLVE_JIRA_READ_USER (the account e-mail) is required for Jira Cloud")
    return CloudJiraBackend(
        url=settings.url,
        auth="basic" if cloud else "pat",
        user=settings.user,
        token=settings.api_token,
        api_version=3 if cloud else 2,
        timeout_s=settings.timeout_s,
        max_retries=settings.max_retries,
        max_retry_wait_s=settings.max_retry_wait_s,
        max_body_bytes=settings.max_response_bytes,
    )
