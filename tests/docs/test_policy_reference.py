"""docs/policy-reference.md is generated from the policy JSON Schemas and must match them."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys
from types import ModuleType

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_policy_reference.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_policy_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_reference_is_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_every_policy_file_and_field_is_documented() -> None:
    text = (ROOT / "docs" / "policy-reference.md").read_text()
    for path in sorted((ROOT / "policies" / "schema").glob("*.schema.json")):
        schema = json.loads(path.read_text())
        assert f"## `{path.name.removesuffix('.schema.json')}.yaml`" in text
        for model in [schema, *schema.get("$defs", {}).values()]:
            for field in model.get("properties", {}):
                assert f"| `{field}` |" in text, (path.name, field)


def test_a_changed_schema_makes_the_check_fail(tmp_path: pathlib.Path) -> None:
    gen = _script()
    for path in (ROOT / "policies" / "schema").glob("*.schema.json"):
        (tmp_path / path.name).write_text(path.read_text())
    schema = json.loads((tmp_path / "repos.schema.json").read_text())
    schema["$defs"]["Repo"]["properties"]["new_field"] = {"type": "string", "description": "added"}
    (tmp_path / "repos.schema.json").write_text(json.dumps(schema))
    rendered = gen.render(tmp_path)
    assert "| `new_field` | string |" in rendered
    assert rendered != (ROOT / "docs" / "policy-reference.md").read_text()
