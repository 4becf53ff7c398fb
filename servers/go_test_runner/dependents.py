"""The packages whose tests can see a change to the named ones: their dependents in the same module.

A fix to `./calc` can break `./api`, whose code or tests import calc. A run with `dependents` also tests,
in each module it runs in, every package whose tests depend on a named package: through the package's
own code (its transitive `Deps`), or through its test files' imports and what those import. One
`go list -e -json=ImportPath,Deps,TestImports,XTestImports,Match` over the module and the named patterns
(run by the runner in the sandbox, before the patch is applied) gives all of it without building: `Match`
tells which packages the named patterns matched.
"""

from __future__ import annotations

from collections.abc import Iterable

from servers.go_test_runner.listing import json_objects

WHOLE_MODULE = "./..."
FIELDS = "ImportPath,Deps,TestImports,XTestImports,Match"


def go_list_args(packages: Iterable[str]) -> list[str]:
    """`go` arguments describing every package of the module, and which of them `packages` name."""
    return ["list", "-e", f"-json={FIELDS}", WHOLE_MODULE, *packages]


def _strings(value: object) -> set[str]:
    if not isinstance(value, list):
        return set()
    items: list[object] = value
    return {v for v in items if isinstance(v, str)}


def dependents(go_list_json: str, packages: list[str]) -> list[str]:
    """The import paths of the module's packages not named by `packages` whose tests depend on a named one,
    from `go list` output of `go_list_args(packages)`; sorted."""
    named_patterns = set(packages)
    if WHOLE_MODULE in named_patterns:
        return []
    deps: dict[str, set[str]] = {}
    tests: dict[str, set[str]] = {}
    named: set[str] = set()
    for entry in json_objects(go_list_json):
        path = entry.get("ImportPath")
        if not isinstance(path, str):
            continue
        deps[path] = _strings(entry.get("Deps"))
        tests[path] = _strings(entry.get("TestImports")) | _strings(entry.get("XTestImports"))
        if _strings(entry.get("Match")) & named_patterns:
            named.add(path)
    out: list[str] = []
    for path, imported in tests.items():
        if path in named:
            continue
        reach = deps[path] | imported
        for test_import in imported:
            reach |= deps.get(test_import, set())
        if reach & named:
            out.append(path)
    return sorted(out)
