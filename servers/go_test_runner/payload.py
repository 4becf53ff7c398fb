"""Strict models for what a caller may ask the runner to do, validated before anything runs.

The payload is treated like input from a public web form: every string is matched against a
narrow pattern, flags come from an allow-list, and `go_test_args` turns a validated request into an
argument list (never a shell string). `validate_request` turns pydantic's errors into one short
`InvalidInput` message the model can act on.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from servers.common.errors import InvalidInput

MAX_COUNT = 10
MAX_TIMEOUT_S = 1800
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
_SEGMENT = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.~+-]*(?:\.\.\.)?|\.\.\.)$")
_RUN = re.compile(r"^[\x21-\x7e]{1,200}$")
_DURATION = re.compile(r"^(\d{1,5})(ms|s|m|h)$")
_SIMPLE_FLAGS = frozenset({"-race", "-short", "-failfast", "-cover"})


def _ref(value: str) -> str:
    if not _REF.fullmatch(value) or ".." in value or "@{" in value or value.endswith((".lock", "/")) or "//" in value:
        raise ValueError("not a branch, tag or commit name")
    return value


def _package(value: str) -> str:
    """`./...`, `./internal/auth`, `.`, or an import path such as `example.com/mod/pkg/...`."""
    if value in (".", "./..."):
        return value
    body = value[2:] if value.startswith("./") else value
    segments = body.split("/")
    if not body or not all(_SEGMENT.fullmatch(s) for s in segments) or ".." in segments:
        raise ValueError(
            "a package is an import path or a relative pattern inside the module (./..., ./internal/auth); "
            "no absolute paths, '..', leading '-', whitespace or shell characters"
        )
    return value


def _duration_seconds(text: str) -> float:
    m = _DURATION.fullmatch(text)
    if m is None:
        raise ValueError("-timeout takes a duration such as 90s, 5m or 1h")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    return int(m.group(1)) * scale


def _flag(value: str) -> str:
    if value in _SIMPLE_FLAGS:
        return value
    name, sep, arg = value.partition("=")
    if name == "-count" and sep and arg.isdigit() and 1 <= int(arg) <= MAX_COUNT:
        return value
    if name == "-shuffle" and sep and (arg in ("on", "off") or (arg.isdigit() and len(arg) <= 19)):
        return value
    if name == "-timeout" and sep and 0 < _duration_seconds(arg) <= MAX_TIMEOUT_S:
        return value
    raise ValueError(
        f"flag {value[:40]!r} is not allowed; allowed: -race, -short, -failfast, -cover, "
        f"-count=N (1..{MAX_COUNT}), -shuffle=on|off|N, -timeout=D (at most {MAX_TIMEOUT_S}s)"
    )


def _unique_names(flags: list[str]) -> list[str]:
    names = [f.partition("=")[0] for f in flags]
    if len(set(names)) != len(names):
        raise ValueError("a flag may be given only once")
    return flags


RepoName = Annotated[str, Field(pattern=_REPO.pattern, description="Repository name from repos.yaml.")]
Ref = Annotated[
    str, Field(min_length=1, max_length=200, description="Branch, tag or commit to test."), AfterValidator(_ref)
]
Package = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_package)]
Flag = Annotated[str, Field(min_length=2, max_length=40), AfterValidator(_flag)]
Patch = Annotated[str | None, Field(default=None, max_length=10_000_000, description="Unified diff to apply first.")]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    repo: RepoName
    ref: Ref
    patch: Patch = None
    packages: list[Package] = Field(min_length=1, max_length=50)


class RunTestsRequest(_Request):
    """Arguments of `run_tests`."""

    run: str | None = Field(default=None, pattern=_RUN.pattern, description="Test name pattern (go test -run).")
    flags: Annotated[list[Flag], AfterValidator(_unique_names)] = Field(default_factory=list[str], max_length=8)
    timeout_s: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_S, description="Hard timeout of the call.")
    dependents: bool = Field(
        default=False, description="Also test the packages of the module whose tests depend on these."
    )

    def go_test_timeout_s(self) -> float | None:
        """The `-timeout` flag's value in seconds, if given."""
        for flag in self.flags:
            if flag.startswith("-timeout="):
                return _duration_seconds(flag.partition("=")[2])
        return None


def go_test_args(req: RunTestsRequest, alarm_s: int, packages: list[str] | None = None) -> list[str]:
    """Arguments after `go test -json`: flags, then `-run=PATTERN` as one argument, then packages
    (`packages`: the request's as go names them from the module it runs in).

    `alarm_s` becomes `-timeout` unless the caller chose one: go's own alarm then fires before the
    hard kill, so the report can name the tests that were running.
    """
    args = [] if req.go_test_timeout_s() is not None else [f"-timeout={max(1, alarm_s)}s"]
    args += req.flags
    if req.run is not None:
        args.append(f"-run={req.run}")
    return [*args, *(req.packages if packages is None else packages)]


class CheckBuildRequest(_Request):
    """Arguments of `check_build`."""


M = TypeVar("M", bound=BaseModel)


def validate_request(model: type[M], data: dict[str, Any]) -> M:
    """Validate a payload, or raise one short message naming the field.

    Raises:
        InvalidInput: any field fails validation (the first error is reported).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {message}"[:300]) from None
