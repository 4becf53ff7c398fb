"""GitHub's published webhook schemas (npm `@octokit/openapi-webhooks`, pinned), reduced to what we send.

`ensure_schemas()` runs `npm install --prefix <cache> @octokit/openapi-webhooks@<VERSION>` once and
writes `reduced.json`: the request-body schemas of the webhooks in `WEBHOOKS` plus the closure of
their `#/components/...` references (OpenAPI 3.1, i.e. JSON Schema 2020-12).

    python -m tests.webhooks.schemas        # what scripts/install-webhook-schemas.sh runs

`validator(name)` checks a payload; `example(name, values)` builds one: `values` placed into a
skeleton of the schema's required properties, each a typed placeholder, so no field GitHub
requires can be forgotten by a test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

VERSION = "12.1.0"
PACKAGE = f"@octokit/openapi-webhooks@{VERSION}"
REPO_ROOT = Path(__file__).resolve().parents[2]
# webhook name in the description -> the schema of its body
WEBHOOKS = {
    "push": "webhook-push",
    "ping": "webhook-ping",
    "issues-opened": "webhook-issues-opened",
    "issues-labeled": "webhook-issues-labeled",
    "issues-reopened": "webhook-issues-reopened",
    "issue-comment-created": "webhook-issue-comment-created",
    "star-created": "webhook-star-created",
}
_PLACEHOLDER = {"date-time": "2026-01-01T00:00:00Z", "uri": "https://example.invalid/", "email": "x@example.invalid"}


def cache_dir() -> Path:
    default = REPO_ROOT / ".goresolve" / "cache" / f"octokit-openapi-webhooks-{VERSION}"
    return Path(os.environ.get("GORESOLVE_OCTOKIT_WEBHOOKS_CACHE", default))


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def reduce_spec(full: dict[str, Any]) -> dict[str, Any]:
    """The schemas of WEBHOOKS with their reference closure. Raises KeyError when GitHub renamed one."""
    for hook, schema in WEBHOOKS.items():
        ref = full["webhooks"][hook]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        if ref != f"#/components/schemas/{schema}":
            raise KeyError(f"webhook {hook} has body {ref}, not {schema}")
    components: dict[str, dict[str, Any]] = {}
    pending = {f"#/components/schemas/{s}" for s in WEBHOOKS.values()}
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        target = full["components"][section][name]
        components.setdefault(section, {})[name] = target
        _refs(target, pending)
    return {"openapi": full["openapi"], "info": {"title": f"reduced {PACKAGE}"}, "components": components}


def ensure_schemas() -> Path:
    """Install the package (once) and return the reduced file. Raises RuntimeError without npm."""
    cache_root = cache_dir()
    reduced = cache_root / "reduced.json"
    full = cache_root / "node_modules" / "@octokit" / "openapi-webhooks" / "generated" / "api.github.com.json"
    if reduced.exists() and reduced.stat().st_mtime >= Path(__file__).stat().st_mtime:
        return reduced
    if not full.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(f"npm not found; install Node.js, or run: npm install --prefix {cache_root} {PACKAGE}")
        cache_root.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--prefix", str(cache_root), "--no-audit", "--no-fund", "--no-save", PACKAGE],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if proc.returncode != 0 or not full.exists():
            raise RuntimeError(f"npm install {PACKAGE} failed:\n{proc.stderr[-2000:]}")
    data = reduce_spec(json.loads(full.read_text(encoding="utf-8")))
    tmp = reduced.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(reduced)
    return reduced


@cache
def _doc() -> dict[str, Any]:
    return json.loads(ensure_schemas().read_text(encoding="utf-8"))


@cache
def validator(hook: str) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator for the body of webhook `hook` (a key of WEBHOOKS)."""
    doc = _doc()
    registry: Registry[Any] = Registry().with_resource("urn:webhooks", DRAFT202012.create_resource(doc))
    schema = {"$ref": f"urn:webhooks#/components/schemas/{WEBHOOKS[hook]}"}
    return Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def problems(hook: str, payload: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator(hook).iter_errors(payload)]


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        _, _, section, name = node["$ref"].split("/", 3)
        node = _doc()["components"][section][name]
    return node


def _shape(node: Any, values: Any = None) -> Any:
    node = _resolve(node)
    if "allOf" in node:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in (_resolve(p) for p in node["allOf"]):
            for name, prop in part.get("properties", {}).items():
                merged["properties"].setdefault(name, prop)  # the first part is the full definition
            merged["required"] += part.get("required", [])
        node = merged
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    if values is not None and not isinstance(values, dict | list):
        return values
    if values is None and "null" in kinds and not ("anyOf" in node or "oneOf" in node):
        return None
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [_resolve(o) for o in node[key]]
            if values is None:
                non_null = [o for o in options if o.get("type") != "null"]
                if len(non_null) < len(options):
                    return None
                return _shape(options[0])
            want = "object" if isinstance(values, dict) else "array"
            best = next((o for o in options if o.get("type") == want or (want == "object" and "properties" in o)), None)
            return _shape(best or options[0], values)
    if isinstance(values, list):
        return [_shape(node.get("items", {}), v) for v in values]
    if "object" in kinds or "properties" in node:
        given = dict(values or {})
        props = node.get("properties", {})
        out: dict[str, Any] = {}
        for name in node.get("required", []):
            if name not in given:
                out[name] = _shape(props.get(name, {}))
        for name, value in given.items():
            out[name] = _shape(props[name], value) if name in props else value
        return out
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return next((v for v in node["enum"] if v is not None), None)
    if "array" in kinds:
        return []
    if "string" in kinds:
        return _PLACEHOLDER.get(node.get("format", ""), "placeholder")
    if "integer" in kinds or "number" in kinds:
        return 1
    if "boolean" in kinds:
        return False
    return None


def example(hook: str, values: dict[str, Any]) -> dict[str, Any]:
    """A payload of webhook `hook` holding `values`; raises AssertionError if it does not conform."""
    payload = _shape({"$ref": f"#/components/schemas/{WEBHOOKS[hook]}"}, values)
    found = problems(hook, payload)
    assert not found, f"{hook} example does not match GitHub's schema: {found[:5]}"
    return payload


if __name__ == "__main__":
    path = ensure_schemas()
    print(f"{PACKAGE}: {path} ({path.stat().st_size} bytes)")
    sys.exit(0)
