"""A credential in the repository never reaches the model's provider, and a fix never loses it.

The loop runs on the four real stdio servers with the gateway's `Redacting` around the scripted model:
the model reads a file holding a cloud key, sees a marker in its place, has the edits that would write
the marker or search for it refused with the reason, fixes the bug, and the pull request's branch still
holds the key byte for byte.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from agent.cli import trace_tree
from agent.ledger import Ledger
from agent.llm import Redacting
from agent.loop import RunSettings
from agent.policy import load_agent_policy

from .workspace import FILES as WORLD_FILES
from .workspace import TICKET, Workspace, World, make_workspace, pulls, pushed, run_scripted, served

KEY = "AKIAZ7Q4W2XK9LMN3PRT"  # the shape of an AWS access key id; no such key exists
KEY_LINE = f'// sandboxKey signs requests to the billing sandbox.\nconst sandboxKey = "{KEY}"\n'
CALC = WORLD_FILES["calc.go"].replace("// Add returns", KEY_LINE + "\n// Add returns")
MARKER = "[credential removed: aws_access_key]"


@pytest.fixture(scope="module")
def key_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    files = {**WORLD_FILES, "calc.go": CALC}
    return make_workspace(tmp_path_factory.mktemp("key-world"), files, tickets={"CALC-1": TICKET})


@pytest.fixture(scope="module")
def world(key_workspace: Workspace) -> Iterator[World]:
    with served(key_workspace) as w:
        yield w


def test_the_model_never_sees_the_key_and_the_fix_keeps_it(
    world: World, key_workspace: Workspace, tmp_path: Path
) -> None:
    calls = [
        ("view", {"path": "calc.go"}),
        # the line as the model saw it: not in the file
        ("edit", {"path": "calc.go", "search": f'const sandboxKey = "{MARKER}"', "replace": "const sandboxKey = x"}),
        # a replacement that would write the marker where the key is
        ("edit", {"path": "calc.go", "search": "return a - b", "replace": f'return a + b // "{MARKER}"'}),
        ("edit", {"path": "calc.go", "search": "return a - b", "replace": "return a + b"}),
        ("run_tests", {}),
        ("submit", {"title": "Add returns the sum", "summary": "Add now adds b instead of subtracting it."}),
    ]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    settings = RunSettings(repo="calc", state_dir=tmp_path / "agent", ledger=ledger, test_timeout_s=120)
    try:
        policy = load_agent_policy(key_workspace.policy_dir)
        result, model = run_scripted(world, "CALC-1", calls, policy, settings, wrap=Redacting)
    finally:
        ledger.close()
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason

    sent = [m.content for request in model.requests for m in request.messages]
    assert not any(KEY in text for text in sent)  # not in the code-search context, the view, or test output
    assert "The ticket has no comments." in model.requests[0].messages[1].content  # jira-read counted none
    shown = [m.content for m in model.requests[-1].messages if m.role == "tool"]
    assert f'const sandboxKey = "{MARKER}"' in shown[0]
    assert "search text not found in calc.go: it contains [credential removed: …]" in shown[1]
    assert "replace contains [credential removed: …]" in shown[2]
    assert shown[3] == "edited calc.go"
    spans = [json.loads(line) for line in (Path(str(result.run_dir)) / "spans.jsonl").read_text().splitlines()]
    removed = [s["attributes"]["goresolve.credentials_removed"] for s in spans if s["name"].startswith("chat ")]
    assert len(removed) == len(model.requests) and min(removed) >= 1  # the code-search context holds it from the first
    transcript = (Path(str(result.run_dir)) / "transcript.jsonl").read_text()
    assert KEY not in transcript and MARKER in transcript  # the saved run shows what the model was sent
    shown_trace = io.StringIO()
    Console(file=shown_trace, width=200).print(trace_tree(spans))  # what `goresolve trace RUN_ID` prints
    assert f"{removed[0]} credential(s) removed" in shown_trace.getvalue()

    pull = pulls(key_workspace).by_ticket("calc", "CALC-1")
    assert pull is not None and not pull.draft
    fixed = pushed(key_workspace, pull.head_sha, "calc.go")
    assert fixed == CALC.replace("return a - b", "return a + b")  # the key is still there, byte for byte
