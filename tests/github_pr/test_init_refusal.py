"""github-pr refuses what go-test-runner's analyzer refuses at package initialisation, though it runs no
analyzer: a patch whose code exits, changes test flags or asks testing.Testing() when its package loads
is refused (the analyzer's rule names) and nothing is pushed; an exit in `main` or an ordinary function is
a normal fix and opens its pull request."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from servers.common.errors import InvalidInput
from servers.common.policy import Policies
from servers.common.tamper.guard import check_applied
from servers.github_pr.store import PullStore
from tests.fakes.github_fake import FakeGitHub
from tests.support import call

from .conftest import MAIN_GO, git, local_service, make_policies, open_fix, service_on_github
from .test_server_contract import OPEN, make_server


def diff(path: str, new: str, old: str | None = None) -> str:
    """A git-style diff that writes `new` to `path` (a new file when `old` is None)."""
    head = f"diff --git a/{path} b/{path}\n" + ("new file mode 100644\n" if old is None else "")
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        new.splitlines(keepends=True),
        "/dev/null" if old is None else f"a/{path}",
        f"b/{path}",
    )
    return head + "".join(lines)


def calc_with(imports: str, tail: str) -> str:
    return MAIN_GO.replace("package calc\n", f"package calc\n\nimport {imports}\n", 1) + tail


# A new non-test file whose init exits (go-test-runner: exit_at_init).
STATS_INIT = diff("stats/init.go", 'package stats\n\nimport "os"\n\nfunc init() { os.Exit(0) }\n')

REFUSED = {
    "new non-test file": (STATS_INIT, "stats/init.go", "exit_at_init"),
    "modified file": (diff("calc.go", calc_with('"os"', "\nfunc init() {\n\tos.Exit(0)\n}\n"), MAIN_GO), "calc.go",
                      "exit_at_init"),
    "aliased import": (diff("exit.go", 'package calc\n\nimport quit "os"\n\nfunc init() { quit.Exit(0) }\n'),
                       "exit.go", "exit_at_init"),
    "var initializer": (diff("calc.go", calc_with('"os"', "\nvar _ = func() int { os.Exit(0); return 0 }()\n"),
                             MAIN_GO), "calc.go", "exit_at_init"),
    "test flag at init": (diff("flags.go", 'package calc\n\nimport "flag"\n\nvar _ = flag.Set("test.run", "^$")\n'),
                          "flags.go", "flag_at_init"),
    "testing.Testing() in code": (
        diff("calc.go", calc_with('"testing"', "\nvar underTest = testing.Testing()\n"), MAIN_GO),
        "calc.go",
        "testing_testing",
    ),
}  # fmt: skip

FIXED_ADD = MAIN_GO.replace("return a - b", "return a + b")
ALLOWED = {
    "os.Exit in main": diff(
        "cmd/calc/main.go",
        'package main\n\nimport (\n\t"fmt"\n\t"os"\n\n\t"example.com/calc"\n)\n\nfunc main() {\n'
        "\tif len(os.Args) != 3 {\n\t\tos.Exit(2)\n\t}\n\tfmt.Println(calc.Add(1, 2))\n}\n",
    ),
    "os.Exit in an ordinary function": diff(
        "calc.go", calc_with('"os"', "\n// MustAdd exits on overflow.\nfunc MustAdd(a, b int) int {\n"
                             "\tif a > 1<<30 {\n\t\tos.Exit(1)\n\t}\n\treturn Add(a, b)\n}\n")
        .replace("return a - b", "return a + b"),
        MAIN_GO,
    ),
}  # fmt: skip


async def test_the_reproduction_is_refused_by_the_tool_and_nothing_is_pushed(
    tmp_path: Path, remote: Path, policies: Policies
) -> None:
    result = await call(make_server(tmp_path, remote, policies), "open_pull_request", {**OPEN, "patch": STATS_INIT})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "patch refused by policy as git applied it:\nstats/init.go:5: exit_at_init: " in text
    assert "Traceback" not in text
    assert git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=remote) == "refs/heads/main"


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_local_backend_refuses_code_run_at_package_init(
    case: str, tmp_path: Path, remote: Path, policies: Policies
) -> None:
    patch, path, rule = REFUSED[case]
    with pytest.raises(InvalidInput) as refused:
        open_fix(local_service(tmp_path, remote, policies), policies, patch)
    assert f"{path}:" in refused.value.message and f": {rule}: " in refused.value.message
    assert git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=remote) == "refs/heads/main"
    assert PullStore(tmp_path / "state" / "prs.sqlite").all() == []


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_an_exit_outside_package_init_opens_the_pull_request(
    case: str, tmp_path: Path, remote: Path, policies: Policies
) -> None:
    ref = open_fix(local_service(tmp_path, remote, policies), policies, ALLOWED[case])
    assert ref.created
    assert git("rev-parse", ref.branch, cwd=remote) == ref.head_sha


def test_the_github_backend_refuses_it_and_writes_nothing(fake: FakeGitHub) -> None:
    with pytest.raises(InvalidInput, match=r"stats/init.go:5: exit_at_init"):
        open_fix(service_on_github(fake), make_policies("svc"), STATS_INIT)
    writes = {"git/create-blob", "git/create-tree", "git/create-commit", "git/create-ref", "pulls/create"}
    assert writes.isdisjoint(fake.calls)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_check_applied_without_the_analyzer_refuses_it(case: str, policies: Policies) -> None:
    patch, path, rule = REFUSED[case]
    policy = policies.protected.model_copy(update={"static_analysis": False})  # github-pr's policy
    base_files = {path: MAIN_GO if path == "calc.go" else None}
    verdict = check_applied(patch, policy, base_files=base_files, base=None, patched=None)
    assert (path, rule) in {(r.path, r.rule) for r in verdict.reasons}, verdict.render()


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_check_applied_without_the_analyzer_allows_an_exit_elsewhere(case: str, policies: Policies) -> None:
    policy = policies.protected.model_copy(update={"static_analysis": False})
    patch = ALLOWED[case]
    base_files = {"calc.go": MAIN_GO} if "a/calc.go" in patch else {"cmd/calc/main.go": None}
    verdict = check_applied(patch, policy, base_files=base_files, base=None, patched=None)
    assert verdict.allowed, verdict.render()
