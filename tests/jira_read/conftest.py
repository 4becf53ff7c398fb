"""Fixtures for the Jira backends: a fake Jira on 127.0.0.1 (Cloud and Data Center flavours).

Every response the fake serves is validated against Atlassian's API description; a test whose fake
served anything off-contract fails at teardown with the list of violations.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.jira_fake import FakeJira

SAMPLES = Path(__file__).resolve().parents[2] / "servers" / "jira_read" / "samples"


def copy_reference_tickets(target: Path) -> Path:
    """The bundled tickets these tests were written against (OPS-1, SVC-1..SVC-8), without the demo's
    SVC-1xx tickets, which follow the sample service; the JQL expectations stay fixed."""
    target.mkdir(parents=True, exist_ok=True)
    for path in SAMPLES.iterdir():
        if re.fullmatch(r"(?:OPS|SVC)-\d\.(?:yaml|json)", path.name):
            shutil.copy(path, target / path.name)
    return target


@pytest.fixture(scope="session")
def reference_tickets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_reference_tickets(tmp_path_factory.mktemp("tickets"))


def _serve(fake: FakeJira) -> Iterator[FakeJira]:
    with fake:
        yield fake
    if fake.violations:
        pytest.fail("fake Jira served responses that break the API description:\n" + "\n".join(fake.violations))


@pytest.fixture
def jira_fake(monkeypatch: pytest.MonkeyPatch, reference_tickets: Path) -> Iterator[FakeJira]:
    """A fake Jira Cloud (REST v3, basic auth with e-mail + API token), comments/search paged by 2."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a CI proxy must never see the fake's traffic
    yield from _serve(FakeJira(deployment="cloud", tickets_dir=reference_tickets))


@pytest.fixture
def jira_fake_dc(monkeypatch: pytest.MonkeyPatch, reference_tickets: Path) -> Iterator[FakeJira]:
    """A fake Jira Data Center (REST v2, bearer PAT), comments/search paged by 2."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield from _serve(FakeJira(deployment="datacenter", tickets_dir=reference_tickets))


@pytest.fixture(params=["cloud", "datacenter"])
def any_jira_fake(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, reference_tickets: Path
) -> Iterator[FakeJira]:
    """Each flavour of the fake in turn."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield from _serve(FakeJira(deployment=request.param, tickets_dir=reference_tickets))
