"""The API descriptions the fakes are checked against live in the repository, with their version noted."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

from tests.fakes import jira_contract

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_jira_descriptions_are_inside_the_repository() -> None:
    for spec in (jira_contract.SPEC, jira_contract.SEARCH_JQL_SPEC):
        assert spec.resolve().is_relative_to(REPO_ROOT), spec
        assert spec.is_file(), spec


def test_the_readme_pins_the_jira_description_by_hash() -> None:
    notes = (jira_contract.SPECS / "README.md").read_text(encoding="utf-8")
    pinned = re.search(r"SHA-256 is `([0-9a-f]{64})`", notes)
    assert pinned is not None
    digest = hashlib.sha256(gzip.decompress(jira_contract.SPEC.read_bytes())).hexdigest()
    assert digest == pinned.group(1)
    assert "e9edd0efc751bbc5b2a2c33f8755f9ed04e14158" in notes  # the source commit


def test_the_description_loads_and_knows_the_issue_path() -> None:
    _api, data = jira_contract._load(jira_contract.SPEC)
    assert "/rest/api/3/issue/{issueIdOrKey}" in data["paths"]
