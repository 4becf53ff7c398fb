"""The packages whose tests can see a change to the named ones: their dependents in the same module.

A fix to `./calc` can break `./api`, whose code or tests import calc. A run with `dependents` also tests,
in each module it runs in, the packages whose tests depend on a named package: through the package's own
code (its imports, transitively), or through its test files' imports and what those import. Nearest
first, up to the runner's `max_dependents`: a package every other one imports would otherwise make the
run the whole module. One `go list -e -json=ImportPath,Imports,TestImports,XTestImports,Match` over the
module and the named patterns (run by the runner in the sandbox, before the patch is applied) gives all
of it without building: `Match` tells which packages the named patterns matched.
"""

from __future__ import annotations

from collections.abc import Iterable

from servers.go_test_runner.listing import json_objects

WHOLE_MODULE = "./..."
FIELDS = "ImportPath,Imports,TestImports,XTestImports,Match"


def go_list_args(packages: Iterable[str]) -> list[str]:
    """`go` arguments describing every package of the module, and which of them `packages` name."""
    return ["list", "-e", f"-json={FIELDS}", WHOLE_MODULE, *packages]


def _strings(value: object) -> set[str]:
    if not isinstance(value, list):
        return set()
    items: list[object] = value
    return {v for v in items if isinstance(v, str)}


def dependents(go_list_json: str, packages: list[str], limit: int | None = None) -> tuple[list[str], int]:
    """The import paths of the module's packages not named by `packages` whose tests depend on a named one,
    nearest first (by import distance, then name), at most `limit` of them; and how many more there were.
    Read from `go list` output of `go_list_args(packages)`.

    A package's code depending on a named package carries the dependency on to its importers; its test
    files only to the package itself (nothing imports a test).
    """
    if WHOLE_MODULE in packages:
        return [], 0
    named_patterns = set(packages)
    code_importers: dict[str, set[str]] = {}
    test_importers: dict[str, set[str]] = {}
    named: set[str] = set()
    for entry in json_objects(go_list_json):
        path = entry.get("ImportPath")
        if not isinstance(path, str):
            continue
        for imported in _strings(entry.get("Imports")):
            code_importers.setdefault(imported, set()).add(path)
        for imported in _strings(entry.get("TestImports")) | _strings(entry.get("XTestImports")):
            test_importers.setdefault(imported, set()).add(path)
        if _strings(entry.get("Match")) & named_patterns:
            named.add(path)
    distance: dict[str, int] = {}
    code_reaches, frontier, level = set(named), set(named), 0
    while frontier:  # breadth first along the code's imports; levels grow, so a first distance is the least
        level += 1
        reached: set[str] = set()
        for path in frontier:
            for importer in test_importers.get(path, set()):  # its tests see the change; nothing imports tests
                distance.setdefault(importer, level)
            for importer in code_importers.get(path, set()) - code_reaches:
                code_reaches.add(importer)
                reached.add(importer)
                distance.setdefault(importer, level)
        frontier = reached
    found = sorted((d, q) for q, d in distance.items() if q not in named)
    shown = found if limit is None else found[:limit]
    return [q for _, q in shown], len(found) - len(shown)
