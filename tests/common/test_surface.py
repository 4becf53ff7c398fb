"""Tool-surface rules: four explicit annotations, no top-level anyOf/oneOf, deterministic fingerprint."""

from __future__ import annotations

import pytest
from mcp_types import Tool, ToolAnnotations

from servers.common.tools import check_surface, fingerprint

FULL = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def tool(name: str = "t", annotations: ToolAnnotations | None = FULL, schema: dict[str, object] | None = None) -> Tool:
    return Tool(name=name, description="d", input_schema=schema or {"type": "object"}, annotations=annotations)


def test_complete_surface_passes() -> None:
    check_surface([tool()])


@pytest.mark.parametrize("missing", ["read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"])
def test_each_missing_annotation_is_refused(missing: str) -> None:
    with pytest.raises(ValueError, match="four annotations"):
        check_surface([tool(annotations=FULL.model_copy(update={missing: None}))])


def test_no_annotations_is_refused() -> None:
    with pytest.raises(ValueError, match="four annotations"):
        check_surface([tool(annotations=None)])


@pytest.mark.parametrize("key", ["anyOf", "oneOf", "allOf"])
def test_top_level_combinators_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match=key):
        check_surface([tool(schema={"type": "object", key: [{"required": ["a"]}, {"required": ["b"]}]})])


def test_fingerprint_ignores_order_and_sees_every_change() -> None:
    a, b = tool("a"), tool("b")
    assert fingerprint([a, b]) == fingerprint([b, a])
    changed = b.model_copy(update={"description": "other"})
    assert fingerprint([a, b]) != fingerprint([a, changed])
