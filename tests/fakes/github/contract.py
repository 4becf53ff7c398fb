"""Shapes and checks for the GitHub fake, both taken from GitHub's own REST description.

`Contract.shape(schema_ref, values)` builds a response object: the values the fake models (numbers,
refs, titles, people...) placed into a skeleton of the schema's *required* properties, each filled
with a typed placeholder (`null` where nullable, the first enum value, `example.invalid` URLs). So
the fake writes only what it means, and a field GitHub requires can never be forgotten.

`Contract.violations(...)` then validates the response the fake actually serves with openapi-core,
against the operation and status it answered. Statuses an operation does not document (GitHub
sends 429 and 5xx on any path) are checked against `basic-error`, the body GitHub uses for them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from .spec import ensure_spec

HOST = "https://api.github.com"
_PLACEHOLDER = {"date-time": "2026-01-01T00:00:00Z", "uri": "https://example.invalid/", "email": "x@example.invalid"}


class Contract:
    """The reduced GitHub description, loaded once per session."""

    def __init__(self, path: Path) -> None:
        self.data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        # The description is GitHub's own; skipping its self-check keeps loading fast.
        self.api = OpenAPI.from_dict(self.data, config=Config(spec_validator_cls=None))

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            _, _, section, name = node["$ref"].split("/", 3)
            node = self.data["components"][section][name]
        return node

    def shape(self, schema: str | dict[str, Any], values: Any = None) -> Any:
        """An instance of `schema` (a component name or a schema) with `values` merged in."""
        node = self.resolve({"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema)
        if "allOf" in node:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in node["allOf"]:
                part = self.resolve(part)
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
            node = merged
        if values is not None and not isinstance(values, dict | list):
            return values
        if values is None and node.get("nullable"):
            return None
        for key in ("anyOf", "oneOf"):
            if key in node:
                options = [self.resolve(o) for o in node[key]]
                if values is None:
                    return self.shape(options[0])
                kind = "object" if isinstance(values, dict) else "array"
                best = next(
                    (o for o in options if o.get("type") == kind or (kind == "object" and "properties" in o)), None
                )
                return self.shape(best or options[0], values)
        kind = node.get("type")
        if isinstance(values, list):
            items = node.get("items", {})
            return [self.shape(items, v) for v in values]
        if kind == "object" or "properties" in node:
            given: dict[str, Any] = dict(values or {})
            props = node.get("properties", {})
            out: dict[str, Any] = {}
            for name in node.get("required", []):
                if name not in given:
                    out[name] = self.shape(props.get(name, {}))
            for name, value in given.items():
                out[name] = self.shape(props[name], value) if name in props else value
            return out
        if values is not None:
            return values
        if kind == "array":
            return []
        if "enum" in node:
            return node["enum"][0]
        if kind == "string":
            return _PLACEHOLDER.get(node.get("format", ""), "placeholder")
        return {"integer": 1, "number": 1, "boolean": False}.get(kind or "")

    def request_violations(
        self, method: str, path: str, template: str, params: dict[str, str], query: dict[str, str], body: bytes
    ) -> list[str]:
        """What is wrong with a request the client sent (path and query parameters, JSON body); [] when valid."""
        request = MockRequest(
            HOST, method.lower(), path, path_pattern=template, view_args=params, args=query, data=body or None
        )
        try:
            self.api.validate_request(request)
        except Exception as exc:  # openapi-core raises a family of errors; each is a violation
            cause = exc.__cause__ or exc
            return [f"request {method} {path}: {type(exc).__name__}: {cause}"[:2000]]
        return []

    def violations(
        self, method: str, path: str, template: str, status: int, body: bytes, headers: dict[str, str]
    ) -> list[str]:
        """What is wrong with this response according to GitHub's description; [] when it conforms.

        `template` is the operation's path template: a `{ref}` like `heads/a/b` spans slashes, which
        path matching alone cannot tell apart from other operations.
        """
        where = f"{method} {path} -> {status}"
        request = MockRequest(HOST, method.lower(), path, path_pattern=template)
        response = MockResponse(body, status_code=status, headers=headers, content_type="application/json")
        try:
            self.api.validate_response(request, response)
        except ResponseNotFound:
            if status < 400:
                return [f"{where}: status not described for this operation"]
            schema = self.data["components"]["schemas"]["basic-error"]
            return [f"{where}: {e.message}" for e in OAS30Validator(schema).iter_errors(json.loads(body))]
        except Exception as exc:  # openapi-core raises a family of errors; each is a violation
            cause = exc.__cause__ or exc
            return [f"{where}: {type(exc).__name__}: {cause}"[:2000]]
        return []


@cache
def contract() -> Contract:
    """The session's contract (installs the description on first use; see spec.ensure_spec)."""
    return Contract(ensure_spec())
