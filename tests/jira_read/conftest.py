"""Fixtures for the Jira backends: a fake Jira on 127.0.0.1 (Cloud and Data Center flavours).

Every response the fake serves is validated against Atlassian's API description; a test whose fake
served anything off-contract fails at teardown with the list of violations.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.jira_fake import FakeJira


def _serve(fake: FakeJira) -> Iterator[FakeJira]:
    with fake:
        yield fake
    if fake.violations:
        pytest.fail("fake Jira served responses that break the API description:\n" + "\n".join(fake.violations))


@pytest.fixture
def jira_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJira]:
    """A fake Jira Cloud (REST v3, basic auth with e-mail + API token), comments/search paged by 2."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a CI proxy must never see the fake's traffic
    yield from _serve(FakeJira(deployment="cloud"))


@pytest.fixture
def jira_fake_dc(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJira]:
    """A fake Jira Data Center (REST v2, bearer PAT), comments/search paged by 2."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield from _serve(FakeJira(deployment="datacenter"))


@pytest.fixture(params=["cloud", "datacenter"])
def any_jira_fake(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJira]:
    """Each flavour of the fake in turn."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield from _serve(FakeJira(deployment=request.param))
