"""What the model may call: the servers' read-only tools plus five local ones, and how calls are checked.

Local tools: `view` and `edit` (the overlay), `run_tests` (go-test-runner on the overlay's diff),
`submit` and `escalate`. Server tools that write (open a PR, comment, assign) are the loop's, never the
model's; `read_file` and the server's `run_tests`/`check_build` are wrapped by the local tools.
Every proposed call is validated against the tool's JSON Schema before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from mcp_types import Tool
from pydantic import BaseModel, ConfigDict, Field

import jqlscope
from agent.llm.types import ToolDef

# server tools the loop keeps for itself (writes, and reading a GitHub ticket: the model gets its text in the
# prompt) or wraps in a local tool
LOOP_ONLY = frozenset(
    {
        "open_pull_request",
        "comment",
        "assign",
        "request_review",
        "get_github_issue",
        "read_file",
        "run_tests",
        "check_build",
        "check_patch",
    }
)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ViewArgs(_Args):
    path: str = Field(min_length=1, max_length=300, description="File path relative to the repository root.")
    start_line: int = Field(default=1, ge=1)
    end_line: int | None = Field(default=None, ge=1)


class EditArgs(_Args):
    path: str = Field(min_length=1, max_length=300)
    search: str = Field(max_length=20_000, description="Exact existing text (occurs once). Empty: create the file.")
    replace: str = Field(max_length=50_000)


class RunTestsArgs(_Args):
    packages: list[str] | None = Field(
        default=None, max_length=20, description="Default: the packages your edits touch (./... if none)."
    )
    run: str | None = Field(default=None, max_length=200, description="go test -run pattern.")
    dependents: bool = Field(
        default=False,
        description="Also test the packages whose tests import these (slower; submit runs them in any case).",
    )


class SubmitArgs(_Args):
    title: str = Field(min_length=5, max_length=120, description="Pull request title, one line.")
    summary: str = Field(min_length=10, max_length=4000, description="What changed and why (Markdown).")


class EscalateArgs(_Args):
    reason: str = Field(min_length=5, max_length=2000, description="Why a human should take over.")


LOCAL: dict[str, tuple[type[_Args], str]] = {
    "view": (ViewArgs, "Show numbered lines of a repository file (with your edits applied)."),
    "edit": (EditArgs, "Replace one exact occurrence of `search` with `replace` in a file (your working copy)."),
    "run_tests": (RunTestsArgs, "Run go test on your current edits; failures come with their first lines."),
    "submit": (SubmitArgs, "Finish: the loop re-runs the tests and opens a pull request when they pass."),
    "escalate": (EscalateArgs, "Give up and hand the ticket to a human, saying why."),
}


def local_tool_defs() -> list[ToolDef]:
    return [ToolDef(name, desc, model.model_json_schema()) for name, (model, desc) in LOCAL.items()]


# the model's tools for reading tickets, by where a ticket is filed: a run offers those of its own ticket's
# tracker only (a GitHub issue's run has no use for Jira search, nor a Jira ticket's for GitHub comments)
TICKET_TOOLS = {
    "jira": frozenset({"get_issue", "get_comments", "search_issues"}),
    "github": frozenset({"get_github_issue_comments"}),
}


def model_facing(tools: dict[str, tuple[str, Tool]], source: str | None = None) -> list[ToolDef]:
    """The servers' read-only tools the model may call (the servers already filtered by policy); with a
    ticket `source`, without the ticket tools of the other trackers."""
    other = [names for tracker, names in TICKET_TOOLS.items() if source is not None and tracker != source]
    hidden = frozenset[str]().union(*other)
    out: list[ToolDef] = []
    for name, (_, tool) in sorted(tools.items()):
        ann = tool.annotations
        if name in LOOP_ONLY or name in LOCAL or name in hidden or ann is None or not ann.read_only_hint:
            continue
        out.append(ToolDef(name, tool.description or "", tool.input_schema))
    return out


class FormatError(Exception):
    """A call the model got wrong; the message is a short correction."""


def parse_call(name: str, raw: str, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Decode and validate one proposed call.

    Raises:
        FormatError: unknown tool, arguments that are not a JSON object (or nested past the decoder's depth), or
            arguments off the schema.
    """
    if name not in schemas:
        raise FormatError(f"unknown tool {name[:60]!r}; available: {', '.join(sorted(schemas))}")
    try:
        args = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"arguments for {name} are not valid JSON ({exc.msg} at char {exc.pos}); resend the call"
        ) from None
    except RecursionError:  # brackets nested past what the decoder follows: no tool's arguments look like that
        raise _too_deep(name) from None
    if not isinstance(args, dict):
        raise FormatError(f"arguments for {name} must be a JSON object")
    try:
        json.dumps(args, ensure_ascii=False).encode()
    except RecursionError:
        raise _too_deep(name) from None
    except UnicodeEncodeError:  # a lone \ud800-style escape: valid JSON, but no server can be sent it
        raise FormatError(
            f"arguments for {name} hold an unpaired surrogate escape (such as \\ud800); write the characters themselves"
        ) from None
    try:
        errors = sorted(Draft202012Validator(schemas[name]).iter_errors(args), key=lambda e: list(e.path))
    except RecursionError:  # a schema that descends into a value nested past Python's stack
        raise _too_deep(name) from None
    if errors:
        first: SchemaError = errors[0]
        where = "/".join(str(p) for p in first.path) or "(arguments)"
        raise FormatError(f"{name}: {where}: {_schema_problem(first)}")
    if name == "submit" and isinstance(args.get("title"), str):
        args["title"] = one_line_title(args["title"])
    return args


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def one_line_title(title: str) -> str:
    """A pull request title as github-pr takes it: one line, its whitespace (newlines and tabs included) collapsed
    to single spaces, stripped.

    Raises:
        FormatError: a control or bidirectional control character is left, or fewer than 5 characters are.
    """
    line = " ".join(title.split())
    if _CONTROL.search(line) or _BIDI.search(line):
        raise FormatError(
            "submit: title: must be one line of text without control characters (escape sequences, NUL, ...) "
            "or bidirectional controls; resend with a plain title"
        )
    if len(line) < 5:
        raise FormatError("submit: title: fewer than 5 characters once its whitespace is collapsed")
    return line


# Problems whose jsonschema message quotes the whole value first (`'xxxx…' is too long`): cut to 200 characters,
# the reason went. Said from the keyword and its limit instead.
_SCHEMA_PROBLEMS = {
    "maxLength": "longer than {} characters",
    "minLength": "shorter than {} characters",
    "maxItems": "more than {} items",
    "minItems": "fewer than {} items",
    "maximum": "greater than the maximum {}",
    "minimum": "less than the minimum {}",
    "type": "not of type {}",
    "pattern": "does not match the pattern {}",
    "enum": "not one of {}",
    "const": "not {}",
    "anyOf": "not valid under any of the schemas it may take",
    "oneOf": "not valid under exactly one of the schemas it may take",
}


def _schema_problem(error: SchemaError) -> str:
    """What is wrong with the value, short and whole: from the failed keyword and its limit when jsonschema's message
    would quote the value (which can be 50,000 characters long), else its message cut to 200 characters."""
    said = _SCHEMA_PROBLEMS.get(str(error.validator))
    if said is None:
        return error.message[:200]
    return said.format(json.dumps(error.validator_value, ensure_ascii=False)[:120])


def _too_deep(name: str) -> FormatError:
    return FormatError(f"arguments for {name} are nested too deeply; send a flat JSON object")


def jql_in_project(jql: str, project: str) -> str:
    """`jql` confined to the Jira project `project`: `project in ("P") AND (<condition>) [ORDER BY <ordering>]`.

    jira-read confines a query to every project the identity may read; a run reads its own ticket's project only,
    so it wraps the model's query once more, by the same rule (`jqlscope`), before the server does.

    Raises:
        ValueError: the query could step outside the parentheses, or is too long (the message says why).
    """
    return jqlscope.restrict(jql, [project])


_FENCE_CLOSE = re.compile(r"</?untrusted[^>]*>", re.IGNORECASE)


def fence(source: str, text: str) -> str:
    """Wrap untrusted text so it reads as data; an embedded fence marker cannot close the block."""
    body = _FENCE_CLOSE.sub("[removed fence marker]", text)
    # derived from the content (no text can contain its own hash), so a request is reproducible for replay
    nonce = hashlib.sha256(f"{source}\0{body}".encode()).hexdigest()[:8]
    return f'<untrusted source="{source}" id="{nonce}">\n{body}\n</untrusted id="{nonce}">'
