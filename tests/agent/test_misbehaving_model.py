"""A model that misbehaves (arguments nested past the decoder, a failing adapter, calls left unanswered when the run
stops, too many calls in one answer, cycles, enormous answers) never costs the run its record: each run here ends
with a saved run.json, transcript and ledger row, against the four real servers over stdio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.handoff import MAX_HANDOFF_BYTES
from agent.ledger import Ledger
from agent.llm import ChatRequest, ModelConfig, build_model, reply
from agent.llm.types import ChatResponse, Usage
from agent.loop import NOT_RUN_SECOND_TEST, NOT_RUN_STOPPED, NOT_RUN_TOO_MANY, RunSettings
from agent.policy import AgentPolicy

from .llm_fake_server import Answer, FakeLLM, anthropic_message, openai_completion
from .workspace import TICKET, Workspace, World, make_workspace, pulls, run_model
from .workspace import run_scripted as run

FIX = {"path": "calc.go", "search": "return a - b", "replace": "return a + b"}
WRONG = {"path": "calc.go", "search": "return a - b", "replace": "return a * b"}
DEEP = "[" * 20_000 + "]" * 20_000  # past json.loads' depth (its RecursionError)


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace of its own: each test has its own ticket, and no other module's pull requests share its remote."""
    tickets = {f"CALC-{n}": TICKET.replace("CALC-1", f"CALC-{n}") for n in range(1, 20)}
    return make_workspace(tmp_path_factory.mktemp("misbehaving"), tickets=tickets)


def saved(settings: RunSettings, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    run_dir = settings.state_dir / "agent" / "runs" / run_id
    record = json.loads((run_dir / "run.json").read_text())
    transcript = [json.loads(line) for line in (run_dir / "transcript.jsonl").read_text().splitlines()]
    return record, transcript


def test_arguments_nested_past_the_decoder_are_a_format_error_and_the_run_is_recorded(
    world: World, policy: AgentPolicy, settings: RunSettings, ledger: Ledger
) -> None:
    result, model = run(world, "CALC-1", [("view", DEEP)] * 3, policy, settings)
    assert (result.outcome, result.exit) == ("escalated", "format_errors"), result.reason
    # the steps; then the hypothesis, its tools defined and none callable
    assert [r.tool_choice for r in model.requests if r.tools] == ["auto", "auto", "auto", "none"]
    record, transcript = saved(settings, result.run_id)
    assert record["exit"] == "format_errors"
    errors = [e["message"] for e in transcript if e["kind"] == "format_error"]
    assert errors == ["arguments for view are nested too deeply; send a flat JSON object"] * 3
    row = ledger.run(result.run_id)
    assert row is not None and row.outcome == "escalated"


def test_an_unexpected_exception_is_an_error_with_its_type_and_trace_never_its_message(
    world: World, policy: AgentPolicy, settings: RunSettings, ledger: Ledger
) -> None:
    def broken_adapter(request: ChatRequest) -> Any:
        raise ValueError("payload the model sent: sk-proj-" + "Ab12" * 12)

    result, _ = run(world, "CALC-2", [("view", {"path": "calc.go"}), broken_adapter], policy, settings)
    assert (result.outcome, result.exit) == ("error", "internal_error")
    assert result.reason == f"internal error: an unexpected ValueError in the agent (trace {result.trace_id})"
    record, transcript = saved(settings, result.run_id)
    assert (record["exit"], record["reason"]) == ("internal_error", result.reason)
    entry = transcript[-1]
    assert entry["kind"] == "internal_error" and entry["error"] == "ValueError"
    assert any("broken_adapter" in frame for frame in entry["frames"])
    assert "sk-proj" not in Path(record["run_dir"], "transcript.jsonl").read_text()
    row = ledger.run(result.run_id)
    assert row is not None and (row.outcome, row.exit) == ("error", "internal_error")


def failing_tests(prefix: str, n: int) -> str:
    return 'package calc\n\nimport "testing"\n\n' + "".join(
        f'func Test{prefix}{i:03d}(t *testing.T) {{ t.Fatalf("generated failure {i}: the value is wrong") }}\n'
        for i in range(n)
    )


def test_a_hand_off_of_seven_hundred_failing_tests_stays_a_short_read_and_its_draft_opens(
    world: World, policy: AgentPolicy, settings: RunSettings, module_workspace: Workspace
) -> None:
    calls = [
        ("edit", {"path": "gen_a_test.go", "search": "", "replace": failing_tests("GenA", 350)}),
        ("edit", {"path": "gen_b_test.go", "search": "", "replace": failing_tests("GenB", 350)}),
        ("run_tests", {}),
        ("escalate", {"reason": "too many failures"}),
        reply("The generated tests fail by construction."),
    ]
    result, _ = run(world, "CALC-4", calls, policy, settings)
    assert (result.outcome, result.exit) == ("escalated", "escalated"), result.reason
    assert result.handoff is not None
    assert len(result.handoff.encode()) <= MAX_HANDOFF_BYTES < 10_000
    assert "| 1 | `gen_a_test.go`, `gen_a_test.go:TestGenA000`, `gen_a_test.go:TestGenA001`, +699 more | `.` |" in (
        result.handoff
    )
    assert "- +691 more" in result.handoff  # 701 failing (TestAdd too), ten shown
    assert "The generated tests fail by construction." in result.handoff
    assert result.pr is not None and result.extra["handoff_notes"] == []
    pull = pulls(module_workspace).by_ticket("calc", "CALC-4")
    assert pull is not None and pull.draft and pull.assignees == ["ana-sousa"]
    assert "- +691 more" in pull.body and len(pull.body.encode()) < MAX_HANDOFF_BYTES + 200  # with github-pr's footer


def test_a_draft_github_pr_refuses_twice_is_named_in_the_reason(
    world: World, policy: AgentPolicy, settings: RunSettings, module_workspace: Workspace
) -> None:
    """A patch holding a credential: go-test-runner runs it, github-pr refuses to publish it, with the full hand-off
    and again with its first lines; the result says no draft was opened and nobody assigned."""
    leaky = 'package calc\n\nimport "testing"\n\nfunc TestKey(t *testing.T) {\n\tt.Fatal("AKIAQ3ZT7XK2LMNB4RWP")\n}\n'
    calls = [
        ("edit", {"path": "key_test.go", "search": "", "replace": leaky}),
        ("run_tests", {}),
        ("escalate", {"reason": "cannot fix"}),
        reply("The key test fails by construction."),
    ]
    result, _ = run(world, "CALC-5", calls, policy, settings)
    assert result.outcome == "escalated" and result.pr is None
    assert result.reason.startswith(
        "the model escalated: cannot fix (no draft pull request, nobody assigned: github-pr refused it: "
    )
    assert "aws_access_key" in result.reason and "AKIAQ3ZT7XK2LMNB4RWP" not in result.reason
    notes = result.extra["handoff_notes"]
    assert [n.split(":")[0] for n in notes] == ["draft pull request refused"] * 2
    assert pulls(module_workspace).by_ticket("calc", "CALC-5") is None


def test_a_credential_in_test_output_or_the_models_words_is_in_no_hand_off_record_or_draft(
    world: World, policy: AgentPolicy, settings: RunSettings, module_workspace: Workspace, ledger: Ledger
) -> None:
    key = "AKIAQ3ZT7XK2LMNB4RWP"
    leaky = (  # the key is whole only in the test's output, never in the patch
        'package calc\n\nimport "testing"\n\nfunc TestLeak(t *testing.T) {\n'
        '\tk := "AKIA" + "Q3ZT7XK2LMNB4RWP"\n\tt.Fatalf("config key %s rejected", k)\n}\n'
    )
    calls = [
        ("edit", {"path": "leak_test.go", "search": "", "replace": leaky}),
        ("run_tests", {}),
        ("escalate", {"reason": f"cannot fix: the key {key} is rejected"}),
        reply(f"The configuration key {key} is refused by TestLeak."),
    ]
    result, _ = run(world, "CALC-6", calls, policy, settings)
    assert result.outcome == "escalated" and result.handoff is not None
    assert result.reason == "the model escalated: cannot fix: the key [credential removed: aws_access_key] is rejected"
    assert "config key [credential removed: aws_access_key] rejected" in result.handoff
    assert "The configuration key [credential removed: aws_access_key] is refused" in result.handoff
    assert result.pr is not None and result.extra["handoff_notes"] == []  # github-pr took the draft
    pull = pulls(module_workspace).by_ticket("calc", "CALC-6")
    assert pull is not None and key not in pull.body and pull.assignees == ["ana-sousa"]
    run_dir = Path(str(result.run_dir))
    assert key not in (run_dir / "handoff.md").read_text() and key not in (run_dir / "run.json").read_text()
    row = ledger.run(result.run_id)
    assert row is not None and key not in row.reason


# --- calls the run's stop leaves unanswered ------------------------------------------------------------------------

HYPOTHESIS = "MODEL-HYPOTHESIS: the operator in Add is wrong."


def unanswered_openai(body: dict[str, Any]) -> list[str]:
    answered = {m.get("tool_call_id") for m in body["messages"] if m["role"] == "tool"}
    calls = [c["id"] for m in body["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    return [c for c in calls if c not in answered]


def unanswered_anthropic(body: dict[str, Any]) -> list[str]:
    """tool_use ids without a tool_result in the very next (user) turn: what Anthropic refuses."""
    missing: list[str] = []
    messages = body["messages"]
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or not isinstance(m["content"], list):
            continue
        nxt = messages[i + 1]["content"] if i + 1 < len(messages) and messages[i + 1]["role"] == "user" else []
        results = {b.get("tool_use_id") for b in nxt if isinstance(b, dict)} if isinstance(nxt, list) else set()
        missing += [b["id"] for b in m["content"] if b["type"] == "tool_use" and b["id"] not in results]
    return missing


def strict_provider(provider: str, script: list[list[tuple[str, dict[str, Any]]]]) -> Any:
    """Like the real APIs: 400 for a history with a tool call left unanswered, and (Anthropic) for a history with
    tool blocks but no tools defined; unique call ids; a request whose tool choice is none gets the hypothesis."""
    steps = iter(script)
    ids = iter(range(10_000))

    def answer(body: dict[str, Any]) -> Answer:
        missing = (unanswered_openai if provider == "openai" else unanswered_anthropic)(body)
        if missing:
            return Answer(400, {"error": {"message": f"tool calls without results: {', '.join(missing)}"}})
        if provider == "anthropic" and not body.get("tools") and '"tool_use"' in json.dumps(body["messages"]):
            message = "Requests which include tool_use or tool_result blocks must define tools."
            return Answer(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})
        if body.get("tool_choice") in ("none", {"type": "none"}):
            made = openai_completion(HYPOTHESIS) if provider == "openai" else anthropic_message(HYPOTHESIS)
            return Answer(200, made)
        calls = next(steps)
        made = openai_completion(calls=calls) if provider == "openai" else anthropic_message(calls=calls)
        if provider == "openai":
            for c in made["choices"][0]["message"]["tool_calls"]:
                c["id"] = f"call_{next(ids)}"
        else:
            for block in made["content"]:
                block["id"] = f"toolu_{next(ids)}"
        return Answer(200, made)

    return answer


@pytest.mark.parametrize(("provider", "ticket"), [("openai", "CALC-7"), ("anthropic", "CALC-8")])
def test_calls_cut_off_by_an_escalate_are_answered_so_the_models_hypothesis_reaches_the_hand_off(
    world: World, policy: AgentPolicy, settings: RunSettings, llm: FakeLLM, provider: str, ticket: str
) -> None:
    script = [
        [("edit", WRONG)],
        [("run_tests", {})],
        [("view", {"path": "calc.go"}), ("escalate", {"reason": "I could not find the right operator"}), ("view", {})],
    ]
    llm.responder.append(strict_provider(provider, script))
    if provider == "openai":
        config = ModelConfig(provider="openai", model="gpt-4o-mini", base_url=llm.url, api_key=SecretStr("k"))
    else:
        config = ModelConfig(provider="anthropic", model="claude-haiku-4-5", base_url=llm.url, api_key=SecretStr("k"))
    result = run_model(world, ticket, build_model(config), policy, settings)
    assert result.exit == "escalated" and result.handoff is not None, result.reason
    assert HYPOTHESIS in result.handoff
    last = json.dumps(llm.requests[-1]["body"])
    assert last.count(NOT_RUN_STOPPED) == 2  # the escalate and the view after it; the view before it ran
    _, transcript = saved(settings, result.run_id)
    prefix = "call" if provider == "openai" else "toolu"
    assert [e["calls"] for e in transcript if e["kind"] == "not_run"] == [[f"{prefix}_3", f"{prefix}_4"]]


def test_one_answer_runs_the_tests_once_and_at_most_eight_calls(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    """Twelve run_tests in one answer ran twelve real `go test` runs, none of them an attempt. Now the first runs;
    the others are answered "not run", past the eighth call with that reason (the history stays valid, and none
    of it counts as a format error)."""
    result, model = run(
        world,
        "CALC-17",
        [reply("", *[("run_tests", {}) for _ in range(10)]), ("escalate", {"reason": "cannot fix"})],
        policy,
        settings,
    )
    assert result.exit == "escalated", result.reason
    _, transcript = saved(settings, result.run_id)
    assert [e["name"] for e in transcript if e["kind"] == "tool"] == ["run_tests"]
    assert [e["result"] for e in transcript if e["kind"] == "not_run" and e["result"] != NOT_RUN_STOPPED] == [
        *[NOT_RUN_SECOND_TEST] * 7,
        *[NOT_RUN_TOO_MANY] * 2,
    ]
    assert all(e["kind"] != "format_error" for e in transcript)
    answered = [m for m in model.requests[1].messages if m.role == "tool"]
    assert len(answered) == 10  # every call of the answer has its result in the next request


def test_an_oversized_answer_is_a_format_error_and_does_not_ride_along_in_later_requests(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    """A 10 MB edit ended the run on the token budget a call later (it stayed in the history); now it is one format
    error, and the history keeps the call's name and id with empty arguments."""
    huge = {"path": "calc.go", "search": "return a - b", "replace": "x" * (10 * 1024 * 1024)}
    answer = reply("", ("edit", huge), ("view", {}))
    size = sum(len(c.arguments) + len(c.name) + len(c.id) for c in answer.tool_calls)  # names and ids count too
    # charged as a provider honouring max_tokens would (its usage is clamped to it), not by the answer's size
    charged = ChatResponse(answer, Usage(2000, 4096), "scripted", "tool_calls")
    result, model = run(world, "CALC-18", [charged, ("escalate", {"reason": "cannot fix"})], policy, settings)
    assert result.exit == "escalated", result.reason
    assert model.requests[1].size_bytes() < 200_000
    answered = [m.content for m in model.requests[1].messages if m.role == "tool"]
    assert answered[0].startswith(f"error: your answer was {size} bytes; the limit is 262144 bytes")
    assert answered[1].startswith("not run: your answer was ")
    _, transcript = saved(settings, result.run_id)
    assert [e["message"][:20] for e in transcript if e["kind"] == "format_error"] == [f"your answer was {size}"[:20]]
    assert max(len(json.dumps(e)) for e in transcript) < 100_000


def test_an_unexpected_exception_wrapped_by_a_task_group_is_named_by_what_it_wraps(
    world: World, policy: AgentPolicy, settings: RunSettings
) -> None:
    """An error raised while the MCP clients' task groups unwind arrives as an ExceptionGroup of one: the record
    named only "ExceptionGroup", with frames of contextlib, and the real error and where it was raised were lost."""

    def broken_adapter(request: ChatRequest) -> Any:
        def deep() -> None:
            raise AttributeError("'list' object has no attribute 'encode'")

        try:
            deep()
        except AttributeError as exc:
            raise ExceptionGroup("unhandled errors in a TaskGroup", [exc]) from None

    result, _ = run(world, "CALC-4", [("view", {"path": "calc.go"}), broken_adapter], policy, settings)
    assert result.reason == f"internal error: an unexpected AttributeError in the agent (trace {result.trace_id})"
    _, transcript = saved(settings, result.run_id)
    assert transcript[-1]["error"] == "AttributeError" and any("deep" in f for f in transcript[-1]["frames"])
