"""Hostile payloads: validation never crashes, and nothing that passes it can escape the argument list."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.common.errors import InvalidInput
from servers.go_test_runner.payload import (
    MAX_COUNT,
    CheckBuildRequest,
    RunTestsRequest,
    go_test_args,
    validate_request,
)
from servers.go_test_runner.runner import Runner

FAST = settings(max_examples=300, deadline=None)
NASTY = ";|&$`()<>*?![]{}~\\'\" \t\n\r\x00-./=:@#%^+,"
nasty_text = st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | nasty_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["repo", "ref", "patch", "packages", "run", "flags", "timeout_s", "extra"]
payloads = st.dictionaries(st.sampled_from(FIELDS), json_values | st.lists(nasty_text, max_size=5), max_size=8)

FORBIDDEN_FLAGS = [
    "-exec=/bin/sh", "-exec", "-toolexec=evil", "-o=/tmp/x", "-o", "-c", "-ldflags=-X main.x=1", "-gcflags=all=-N",
    "-modfile=/tmp/go.mod", "-overlay=/tmp/o.json", "-json", "-args", "-count=0", f"-count={MAX_COUNT + 1}",
    "-timeout=99999h", "-timeout=1d", "-v", "-run=x", "-coverprofile=/etc/passwd", "--race", "-race ", "-mod=mod",
    "-vet=off", "-p=64", "-cpu=1", "-bench=.", "-fuzz=Fuzz", "-test.run=X", "-shuffle=yes",
]  # fmt: skip


@FAST
@given(payloads)
def test_any_payload_either_validates_or_is_a_short_invalid_input(data: dict[str, Any]) -> None:
    for model in (RunTestsRequest, CheckBuildRequest):
        try:
            req = validate_request(model, data)
        except InvalidInput as exc:
            message = exc.message
        else:
            assert isinstance(req, model)
            continue
        assert 0 < len(message) <= 300


@pytest.mark.parametrize("flag", FORBIDDEN_FLAGS)
def test_flags_outside_the_allow_list_are_refused(flag: str) -> None:
    with pytest.raises(InvalidInput, match="flags"):
        validate_request(RunTestsRequest, {"repo": "r", "ref": "main", "packages": ["./..."], "flags": [flag]})


@pytest.mark.parametrize(
    "package",
    ["/etc", "../x", "./../x", "a/../../b", "-exec", "./a b", "./a;b", "$(id)", "`id`", "a|b", "~/x", "", "./", ".//x"],
)
def test_hostile_packages_are_refused(package: str) -> None:
    with pytest.raises(InvalidInput, match="packages"):
        validate_request(RunTestsRequest, {"repo": "r", "ref": "main", "packages": [package]})


@pytest.mark.parametrize("ref", ["-n", "--upload-pack=x", "a..b", "HEAD@{1}", "x.lock", "a b", "a;b", "", "../x"])
def test_hostile_refs_are_refused(ref: str) -> None:
    with pytest.raises(InvalidInput, match="ref"):
        validate_request(RunTestsRequest, {"repo": "r", "ref": ref, "packages": ["./..."]})


valid_packages = st.lists(
    st.sampled_from(["./...", ".", "./internal/auth", "example.com/m/pkg/...", "./a-b_c.d", "./x..."]),
    min_size=1,
    max_size=5,
)
valid_flags = st.lists(
    st.sampled_from(
        ["-race", "-short", "-failfast", "-cover", "-count=3", "-shuffle=on", "-shuffle=42", "-timeout=90s"]
    ),
    max_size=4,
    unique_by=lambda f: f.partition("=")[0],
)


@FAST
@given(valid_packages, valid_flags, st.none() | st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126)))
def test_the_argument_list_has_no_injection_points(packages: list[str], flags: list[str], run: str | None) -> None:
    data = {"repo": "r", "ref": "main", "packages": packages, "flags": flags, "run": run[:200] if run else None}
    try:
        req = validate_request(RunTestsRequest, data)
    except InvalidInput:
        assert run is not None and (run == "" or len(run) > 200)
        return
    args = go_test_args(req, 60)
    # Every argument starting with "-" is an allow-listed flag, -run=..., or our own -timeout.
    for arg in args:
        if arg.startswith("-"):
            assert arg in req.flags or arg.startswith(("-run=", "-timeout="))
    assert args[-len(packages) :] == packages
    assert sum(a.startswith("-run=") for a in args) == (1 if run else 0)
    worktree = pathlib.Path("/work/tree")
    for pkg in packages:
        if pkg.startswith("."):
            resolved = (worktree / pkg.removesuffix("...").rstrip("/")).resolve()
            assert resolved.is_relative_to(worktree)


@pytest.mark.parametrize(
    "pattern",
    ["$(touch${{IFS}}{m})", "`touch${{IFS}}{m}`", ";touch${{IFS}}{m}", "|touch${{IFS}}{m}", "&&touch${{IFS}}{m}"],
)
async def test_shell_syntax_in_run_never_reaches_a_shell(runner: Runner, tmp_path: pathlib.Path, pattern: str) -> None:
    marker = tmp_path / "pwned"
    req = validate_request(
        RunTestsRequest, {"repo": "pass", "ref": "main", "packages": ["./util"], "run": pattern.format(m=marker)}
    )
    result = await runner.run_tests(req)
    assert not marker.exists()
    assert result.exit_code is not None  # go ran and treated it as a (non-matching or invalid) regexp
