"""Policy files: validated strictly, errors name the file and the field, schema kept in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers.common.errors import ConfigError
from servers.common.policy import json_schemas, load_policies
from tests.conftest import REPO_ROOT, TEST_POLICIES, write_policies


def test_bundled_policies_load() -> None:
    policies = load_policies(REPO_ROOT / "policies")
    assert "jira:read" in policies.scopes_of("local-dev")
    assert policies.scopes_of("nobody") == frozenset()


def test_committed_json_schema_is_current() -> None:
    for name, schema in json_schemas().items():
        path = REPO_ROOT / "policies" / "schema" / f"{name}.schema.json"
        assert path.exists(), f"missing {path}: run `goresolve policy schema`"
        assert json.loads(path.read_text()) == schema, f"{path} is stale: run `goresolve policy schema`"


@pytest.mark.parametrize(
    ("file", "body", "expected"),
    [
        ("access.yaml", "identities:\n  a: {roles: [triage], colour: blue}\n", "identities.a.colour"),
        ("access.yaml", "identities:\n  a: {roles: []}\n", "identities.a.roles"),
        ("access.yaml", "identities:\n  a: {roles: [triage], jira_projects: [lower]}\n", "identities.a.jira_projects"),
        ("access.yaml", "identities:\n  a: {roles: [ghost]}\n", "identities.a.roles.0"),
        ("access.yaml", "identities:\n  a: {roles: [triage], repos: [nowhere]}\n", "identities.a.repos.0"),
        ("tools.yaml", "roles:\n  triage: {scopes: [jira:write]}\n", "roles.triage.scopes.0"),
        ("protected.yaml", "max_patch_bytes: -1\n", "max_patch_bytes"),
        # a wrong type was coerced ("no" -> false, "200000" -> 200000): it is refused
        (
            "protected.yaml",
            "existing_tests_read_only: 'no'\n",
            "'existing_tests_read_only': Input should be a valid boolean",
        ),
        ("protected.yaml", "max_patch_bytes: '200000'\n", "valid integer (got the text '200000': write a number"),
        ("protected.yaml", "static_analysis: 0\n", "field 'static_analysis': Input should be a valid boolean"),
        (
            "access.yaml",
            "identities:\n  a: {roles: triage}\n",
            "field 'identities.a.roles': Input should be a valid tuple",
        ),
        ("protected.yaml", "paths: ['../secrets/**']\n", "field 'paths': Value error, '../secrets/**' has a '..'"),
        ("protected.yaml", "allow_non_go: ['./']\n", "field 'allow_non_go': Value error, './' names no path"),
        ("access.yaml", "identities: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_policy_names_file_and_field(tmp_path: Path, file: str, body: str, expected: str) -> None:
    directory = write_policies(tmp_path / "p")
    (directory / file).write_text(body)
    with pytest.raises(ConfigError) as err:
        load_policies(directory)
    assert str(directory / file) in err.value.message
    assert expected in err.value.message


def test_missing_required_file_is_named(tmp_path: Path) -> None:
    directory = write_policies(tmp_path / "p", {k: v for k, v in TEST_POLICIES.items() if k != "tools.yaml"})
    with pytest.raises(ConfigError, match=r"tools\.yaml: required"):
        load_policies(directory)


def test_policies_are_frozen(tmp_path: Path) -> None:
    policies = load_policies(write_policies(tmp_path / "p"))
    with pytest.raises(ValueError, match="frozen"):
        policies.access.identities["reader"].roles = ("agent",)  # type: ignore[misc]


def test_a_protected_pattern_with_dot_slash_or_doubled_slashes_protects_its_path(tmp_path: Path) -> None:
    # './internal/auth/keys.go' and 'internal//auth/keys.go' were accepted and matched nothing
    from servers.common import diffs

    directory = write_policies(tmp_path / "p")
    (directory / "protected.yaml").write_text("paths: ['./internal/auth/keys.go', 'cmd//tool/*.go']\n")
    paths = load_policies(directory).protected.paths
    assert diffs.matching_glob("internal/auth/keys.go", paths) == "./internal/auth/keys.go"
    assert diffs.matching_glob("sub/internal/auth/keys.go", paths) is None  # './' anchors at the root, like '/'
    assert diffs.matching_glob("cmd/tool/main.go", paths) == "cmd//tool/*.go"
    assert diffs.matching_glob("Internal/auth/keys.go", paths) is None  # case-sensitive, as git's paths are
