"""The strict YAML loader (`yamlfiles`): a repeated key, deep nesting, a directory or bytes that are not UTF-8
text are refused with one line naming the file (and the line), never the last key silently winning.

The servers (`servers.common.yamlfile`, a ConfigError) and the agent (`agent.policy`, a PolicyError) only
re-raise its refusal as their own error.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import yamlfiles
from agent import policy as agent_policy
from goresolve.cli import app
from servers.common import yamlfile
from servers.common.errors import ConfigError
from servers.common.policy import load_policies
from servers.common.settings import DEFAULT_POLICY_DIR
from servers.jira_read.local import load_tickets
from tests.conftest import write_policies

runner = CliRunner()


def test_a_repeated_key_is_refused_naming_both_lines() -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        yamlfiles.safe_load("identities:\n  a: {roles: [x]}\nroles: {}\nidentities:\n  b: {roles: [y]}\n")
    assert yamlfiles.describe(caught.value) == ("line 4", "duplicate key 'identities' (first at line 1)")
    with pytest.raises(yaml.YAMLError, match="duplicate key 'allow_go_mod'"):
        yamlfiles.safe_load("paths: []\nnested:\n  allow_go_mod: false\n  allow_go_mod: true\n")
    with pytest.raises(yaml.YAMLError, match="duplicate key 'x'"):
        yamlfiles.safe_load("{x: 1, y: 2, x: 3}")


def test_ordinary_yaml_loads_as_safe_load_does() -> None:
    text = (
        "base: &base {wall_clock_s: 60, max_tokens: 10}\n"
        "tiers:\n  cheap:\n    <<: *base\n    wall_clock_s: 30\n"  # a merge key then an override: not a duplicate
        "list: [{a: 1}, {a: 2}]\n"
        "same_key_in_siblings: {a: {k: 1}, b: {k: 2}}\n"
    )
    assert yamlfiles.safe_load(text) == yaml.safe_load(text)
    assert yamlfiles.safe_load(text)["tiers"]["cheap"] == {"wall_clock_s": 30, "max_tokens": 10}
    assert yamlfiles.safe_load("") is None
    depth = yamlfiles.MAX_DEPTH - 1  # exactly at the bound (the scalar is a level)
    nested = "{a: " * depth + "x" + "}" * depth
    assert yamlfiles.safe_load(nested) == yaml.safe_load(nested)


def test_deep_nesting_is_refused_before_the_stack_runs_out() -> None:
    depth = yamlfiles.MAX_DEPTH
    for text in ("x: " + "[" * 5000 + "]" * 5000, "{a: " * depth + "x" + "}" * depth, "- " * 5000 + "x\n"):
        with pytest.raises(yaml.YAMLError) as caught:
            yamlfiles.safe_load(text)
        assert yamlfiles.describe(caught.value)[1] == f"nested deeper than {depth} levels"


def test_a_syntax_error_is_worded_as_the_caller_asks() -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        yamlfiles.safe_load("a: [unclosed\n")
    where, reason = yamlfiles.describe(caught.value)
    assert where == "line 2" and reason.startswith("invalid YAML (")
    assert yamlfiles.describe(caught.value, invalid="not valid YAML")[1].startswith("not valid YAML (")


def test_a_bad_file_is_one_line_naming_it(tmp_path: Path) -> None:
    cases = {
        "dup.yaml": ("a: 1\nb: 2\na: 3\n", "line 3: duplicate key 'a' (first at line 1)"),
        "bin.yaml": (b"\x89PNG\r\n\x1a\n\xff\xfe", "not UTF-8 text (byte 0)"),
        "deep.yaml": ("k: " + "{a: " * 5000 + "1" + "}" * 5000, "nested deeper than"),
        "bad.yaml": ("a: [unclosed\n", "line 2: invalid YAML ("),
    }
    for name, (body, expected) in cases.items():
        path = tmp_path / name
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
        with pytest.raises(yamlfiles.YamlFileError) as caught:
            yamlfiles.load_yaml_file(path)
        message = caught.value.message
        assert message.startswith(f"{path}: ") and expected in message and "\n" not in message, message
        assert str(caught.value) == message and caught.value.path == path
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(yamlfiles.YamlFileError, match=r"dir\.yaml: is a directory, not a file$"):
        yamlfiles.load_yaml_file(tmp_path / "dir.yaml")
    with pytest.raises(yamlfiles.YamlFileError, match=r"none\.yaml: cannot read: No such file"):
        yamlfiles.load_yaml_file(tmp_path / "none.yaml")
    (tmp_path / "ok.yaml").write_text("a: 1\n")
    assert yamlfiles.load_yaml_file(tmp_path / "ok.yaml") == {"a": 1}
    (tmp_path / "empty.yaml").write_text("")
    assert yamlfiles.load_yaml_file(tmp_path / "empty.yaml") is None


def test_the_servers_and_the_agent_re_raise_the_refusal_as_their_own_error(tmp_path: Path) -> None:
    (tmp_path / "dup.yaml").write_text("a: 1\na: 2\n")
    (tmp_path / "bad.yaml").write_text("a: [unclosed\n")
    with pytest.raises(ConfigError) as config:
        yamlfile.load_yaml_file(tmp_path / "dup.yaml")
    assert config.value.message == f"{tmp_path / 'dup.yaml'}: line 2: duplicate key 'a' (first at line 1)"
    assert isinstance(config.value, yamlfile.YamlFileError) and config.value.where == "line 2"
    with pytest.raises(ConfigError, match=r"bad\.yaml: line 2: invalid YAML"):
        yamlfile.load_yaml_file(tmp_path / "bad.yaml")
    # the agent names the file only (its messages are shown beside the policy directory)
    with pytest.raises(agent_policy.PolicyError) as policy:
        agent_policy.load_yaml_file(tmp_path / "dup.yaml")
    assert policy.value.message == "dup.yaml: line 2: duplicate key 'a' (first at line 1)"
    assert isinstance(policy.value, agent_policy.YamlFileError) and policy.value.reason.startswith("duplicate key")
    with pytest.raises(agent_policy.PolicyError, match=r"^bad\.yaml: line 2: not valid YAML \("):
        agent_policy.load_yaml_file(tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    ("file", "appended", "expected"),
    [
        # a second block that would replace the identities a reviewer read above it
        ("access.yaml", "identities:\n  reader: {roles: [agent]}\n", "duplicate key 'identities'"),
        ("protected.yaml", "max_patch_bytes: 1\nmax_patch_bytes: 2\n", "duplicate key 'max_patch_bytes'"),
    ],
)
def test_policies_with_a_repeated_key_do_not_load(tmp_path: Path, file: str, appended: str, expected: str) -> None:
    directory = write_policies(tmp_path / "p")
    path = directory / file
    path.write_text((path.read_text() if path.exists() else "") + appended)
    with pytest.raises(ConfigError) as caught:
        load_policies(directory)
    assert caught.value.message.startswith(f"{path}: line ") and expected in caught.value.message


def test_policy_check_refuses_binary_directory_and_deep_files(tmp_path: Path) -> None:
    cases: dict[str, Callable[[Path], object]] = {
        "access.yaml": lambda p: p.write_bytes(b"\x00\xff\xfe binary"),
        "budgets.yaml": lambda p: p.mkdir(),
        "protected.yaml": lambda p: p.write_text("paths:\n" + "  " + "- " * 5000 + "x\n"),
        "routing.yaml": lambda p: p.write_text("tiers: {}\ntiers: {}\n"),
    }
    for name, make in cases.items():
        directory = tmp_path / name.removesuffix(".yaml") / "policies"
        shutil.copytree(DEFAULT_POLICY_DIR, directory)
        (directory.parent / "examples" / "sample-service").mkdir(parents=True)  # repos.yaml's relative path
        target = directory / name
        target.unlink()
        make(target)
        result = runner.invoke(app, ["policy", "check", str(directory)])
        assert result.exit_code != 0, (name, result.output)
        assert "unexpected" not in result.output and name in result.output, (name, result.output)


def test_repo_add_names_a_repeated_key_instead_of_an_unexpected_error(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, policy_dir)
    access = policy_dir / "access.yaml"
    before = access.read_text() + "identities:\n  triage-bot: {roles: [agent]}\n"
    access.write_text(before)
    repo = tmp_path / "svc"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    result = runner.invoke(app, ["repo", "add", str(repo), "--policy-dir", str(policy_dir)])
    assert result.exit_code != 0
    assert "duplicate key 'identities'" in result.output and "unexpected" not in result.output, result.output
    assert access.read_text() == before


def test_a_jira_ticket_file_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "SVC-1.yaml").write_text("key: SVC-1\nfields: {summary: a}\nkey: SVC-2\n")
    with pytest.raises(ConfigError, match=r"SVC-1\.yaml: line 3: duplicate key 'key' \(first at line 1\)"):
        load_tickets(tmp_path)
