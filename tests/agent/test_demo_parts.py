"""The parts around the demo and `goresolve resolve` that need no Go: routing before the loop (a human tier
hands over at once, with the hand-off posted on the ticket's GitHub issue; a model tier sets the limits and
the model), ticket arguments, the live display, and the live-model switch. On the in-process fake servers."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.mcpserver import MCPServer
from rich.console import Console

from agent.llm import ChatModel, ChatRequest, Message, PriceBook, ScriptedModel, reply
from agent.loop import RunSettings, run_ticket
from agent.policy import AgentPolicy
from agent.router import Router, load_routing_policy
from agent.servers import InProcessServer, ServersConfig
from agent.testing import FakeWorld, developer
from goresolve.demo import RENAMED, DemoError, Display, World, demo_model, ensure_embedding_model, logs_to_file
from goresolve.resolve import ResolveError, ticket_of

from .faults import fault_policy

ROUTING = """\
tiers:
  small: {model: gpt-4o-mini}
  strong: {model: scripted}
  human: {model: null}
strongest: strong
kinds: {docs: small, trivial: small, bug: strong, concurrency: strong, performance: strong, feature: strong,
        security: human}
classifier: {mode: none}
rules:
  - {name: billing-people, when: {components: [billing]}, tier: human, reason: billing goes to people}
  - {name: sums, when: {text: "(?i)difference"}, tier: small, reason: arithmetic slip}
"""


def router(tmp_path: Path, policy: AgentPolicy, text: str = ROUTING) -> Router:
    (tmp_path / "routing.yaml").write_text(text)
    return Router(load_routing_policy(tmp_path, policy.budgets))


def with_issue_comments(world: FakeWorld, posted: list[dict[str, Any]]) -> ServersConfig:
    """The fake servers plus a `comment_on_issue` tool, recording what it was sent."""
    issues: MCPServer[Any] = MCPServer("github-issues")

    def comment_on_issue(repo: str, number: int, body: str) -> dict[str, Any]:
        posted.append({"repo": repo, "number": number, "body": body})
        return {"id": len(posted), "url": f"local:{repo}/issues/{number}#comment-{len(posted)}"}

    @issues.resource("goresolve://surface", mime_type="application/json")
    def surface() -> str:  # pyright: ignore[reportUnusedFunction]
        return json.dumps({"fingerprint": "sha256:" + hashlib.sha256(b"github-issues").hexdigest()})

    issues.add_tool(comment_on_issue)
    base = world.servers()
    return ServersConfig(servers=(*base.servers, InProcessServer("github-issues", issues)))


def test_a_human_tier_hands_over_before_any_model_call_and_posts_on_the_github_issue(tmp_path: Path) -> None:
    policy = fault_policy(1.0)
    posted: list[dict[str, Any]] = []
    model = ScriptedModel([])
    settings = RunSettings(repo="calc", state_dir=tmp_path, router=router(tmp_path, policy))
    world = FakeWorld()
    result = anyio.run(run_ticket, "#7", model, with_issue_comments(world, posted), policy, settings)
    assert world.calls[0] == "get_github_issue" and "get_issue" not in world.calls  # read through github-pr
    assert (result.outcome, result.exit) == ("escalated", "escalated")
    assert result.reason == "routed to a human (human): billing goes to people"
    assert model.requests == [] and result.model_calls == 0 and result.pr is None
    assert [(p["repo"], p["number"]) for p in posted] == [("calc", 7)]
    assert "routed to a human" in posted[0]["body"] and result.trace_id in posted[0]["body"]
    assert result.extra["handoff_notes"] == ["no attempt worth keeping: hand-off posted on issue #7"]


def test_a_github_issue_without_a_comment_tool_says_nothing_was_posted(tmp_path: Path) -> None:
    policy = fault_policy(1.0)
    settings = RunSettings(repo="calc", state_dir=tmp_path, router=router(tmp_path, policy))
    result = anyio.run(run_ticket, "#7", ScriptedModel([]), FakeWorld().servers(), policy, settings)
    assert result.outcome == "escalated"
    assert result.extra["handoff_notes"] == ["github-pr offers no comment_on_issue: nothing posted on issue #7"]


def test_a_jira_ticket_with_nothing_worth_keeping_says_where_the_hand_off_went(tmp_path: Path) -> None:
    policy = fault_policy(1.0)
    posted: list[dict[str, Any]] = []
    settings = RunSettings(repo="calc", state_dir=tmp_path, router=router(tmp_path, policy))
    result = anyio.run(
        run_ticket, "CALC-3", ScriptedModel([]), with_issue_comments(FakeWorld(), posted), policy, settings
    )
    assert result.outcome == "escalated" and posted == []
    assert result.extra["handoff_notes"] == [
        "no attempt worth keeping and no GitHub issue for this ticket: hand-off saved with the run"
    ]


@pytest.mark.parametrize("key", ["calc#7", "#7"])
def test_a_github_issue_is_read_through_github_pr_and_resolved_to_a_pull_request(tmp_path: Path, key: str) -> None:
    world = FakeWorld()
    settings = RunSettings(repo="calc", state_dir=tmp_path)
    result = anyio.run(run_ticket, key, ScriptedModel(developer), world.servers(), fault_policy(1.0), settings)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    assert world.calls[0] == "get_github_issue" and "get_issue" not in world.calls
    # github-pr names a GitHub issue `#7` in its branch and commit (a Jira ticket by its key)
    assert list(world.pulls) == ["#7"] and world.pulls["#7"]["body"].startswith("Resolves #7: `Add returns")


def test_a_run_offers_the_model_the_ticket_tools_of_its_own_tracker_only(tmp_path: Path) -> None:
    asked: list[str] = []

    def reads_the_discussion_first(request: ChatRequest) -> Message:
        if not any(m.role == "tool" for m in request.messages):
            asked.extend(t.name for t in request.tools)
            if "get_github_issue_comments" in asked:
                return reply("", ("get_github_issue_comments", {"repo": "calc", "number": 7}))
        return developer(request)

    world = FakeWorld()
    settings = RunSettings(repo="calc", state_dir=tmp_path)
    model = ScriptedModel(reads_the_discussion_first)
    result = anyio.run(run_ticket, "#7", model, world.servers(), fault_policy(1.0), settings)
    assert (result.outcome, result.exit) == ("pr", "submitted"), result.reason
    assert "get_github_issue_comments" in asked and "get_issue" not in asked and "get_github_issue" not in asked
    shown = next(m.content for m in model.requests[1].messages if m.role == "tool")
    assert "It started after the refactor of calc.go." in shown and '"trust":"untrusted"' in shown.replace(" ", "")

    asked.clear()
    result = anyio.run(run_ticket, "CALC-3", ScriptedModel(reads_the_discussion_first), FakeWorld().servers(),
                       fault_policy(1.0), RunSettings(repo="calc", state_dir=tmp_path / "jira"))  # fmt: skip
    assert result.outcome == "pr", result.reason
    assert "get_issue" in asked and "get_github_issue_comments" not in asked


def test_a_github_issue_of_another_repository_is_refused_before_any_model_call(tmp_path: Path) -> None:
    world = FakeWorld()
    model = ScriptedModel(developer)
    settings = RunSettings(repo="calc", state_dir=tmp_path)
    result = anyio.run(run_ticket, "acme/other#7", model, world.servers(), fault_policy(1.0), settings)
    assert result.outcome == "error" and model.requests == []
    assert "ticket acme/other#7 is an issue of acme/other, not of calc" in result.reason
    assert "get_github_issue" not in world.calls and world.pulls == {}


@pytest.mark.parametrize(("key", "scope"), [("calc#7", "issue:read"), ("CALC-7", "jira:read")])
def test_reading_the_ticket_needs_the_scope_of_its_tracker_only(tmp_path: Path, key: str, scope: str) -> None:
    policy = fault_policy(1.0)
    scopes = {"local-dev": policy.scopes["local-dev"] - {scope}}
    settings = RunSettings(repo="calc", state_dir=tmp_path)
    denied = anyio.run(
        run_ticket, key, ScriptedModel(developer), FakeWorld().servers(), policy.model_copy(update={"scopes": scopes}),
        settings,
    )  # fmt: skip
    assert denied.outcome == "error" and f"lacks scopes {scope}" in denied.reason
    other = "jira:read" if scope == "issue:read" else "issue:read"
    scopes = {"local-dev": policy.scopes["local-dev"] - {other}}
    allowed = anyio.run(
        run_ticket, key, ScriptedModel(developer), FakeWorld().servers(), policy.model_copy(update={"scopes": scopes}),
        settings,
    )  # fmt: skip
    assert allowed.outcome == "pr", allowed.reason


def test_a_model_tier_sets_the_run_limits_and_picks_the_model(tmp_path: Path) -> None:
    policy = fault_policy(1.0)
    text = ROUTING.replace("components: [billing]", "components: [nothing-here]")
    asked: list[str] = []

    def models(name: str) -> ChatModel:
        asked.append(name)
        return ScriptedModel(developer, name="scripted")

    events: list[tuple[str, dict[str, Any]]] = []
    settings = RunSettings(
        repo="calc",
        state_dir=tmp_path,
        router=router(tmp_path, policy, text),
        models=models,
        on_event=lambda kind, event: events.append((kind, event)),
    )
    result = anyio.run(run_ticket, "CALC-4", ScriptedModel([]), FakeWorld().servers(), policy, settings)
    assert result.outcome == "pr", result.reason
    assert asked == ["gpt-4o-mini"] and result.tier == "small"
    route = next(e for k, e in events if k == "route")
    assert (route["tier"], route["decided_by"], route["reason"]) == ("small", "rule", "arithmetic slip")
    assert route["limits"]["max_cost_usd"] == policy.budgets.limits_for("small").max_cost_usd
    kinds = [k for k, _ in events]
    assert kinds.index("route") < kinds.index("context") < kinds.index("tool_call") < kinds.index("opening_pr")
    # the whole decision is in the run record: the transcript's start entry
    start = next(
        json.loads(line)
        for line in (tmp_path / "agent" / "runs" / result.run_id / "transcript.jsonl").read_text().splitlines()
        if json.loads(line).get("kind") == "start"
    )
    assert start["route"]["rule"] == "sums" and start["route"]["decided_by"] == "rule"
    assert start["route"]["latency_ms"] >= 0 and len(start["route"]["trace_id"]) == 32


def test_a_routing_model_call_is_charged_to_the_run_and_its_ledger(tmp_path: Path) -> None:
    from agent.ledger import Ledger
    from agent.router.classifier import ModelClassifier

    policy = fault_policy(1.0)
    text = ROUTING.replace("classifier: {mode: none}", "classifier: {mode: model, model: scripted, threshold: 0.5}")
    text = text.replace("components: [billing]", "components: [nothing-here]").replace("(?i)difference", "^$")
    (tmp_path / "routing.yaml").write_text(text)
    routing = load_routing_policy(tmp_path, policy.budgets)
    answer = reply("", ("route_ticket", {"kind": "bug", "confidence": 0.9, "reason": "wrong output"}))
    classifier = ModelClassifier(ScriptedModel([answer]), routing, PriceBook(policy.budgets))
    ledger = Ledger(tmp_path / "ledger.sqlite")
    events: list[tuple[str, dict[str, Any]]] = []
    settings = RunSettings(
        repo="calc",
        state_dir=tmp_path,
        ledger=ledger,
        router=Router(routing, classifier),
        on_event=lambda kind, event: events.append((kind, event)),
    )
    result = anyio.run(run_ticket, "CALC-4", ScriptedModel(developer), FakeWorld().servers(), policy, settings)
    route = next(e for k, e in events if k == "route")
    assert route["decided_by"] == "classifier" and route["ticket_kind"] == "bug" and route["cost_usd"] > 0
    by_tier = ledger.by("tier")
    ledger.close()
    assert by_tier["routing"] == pytest.approx(route["cost_usd"])
    assert result.cost_usd == pytest.approx(sum(by_tier.values()))


def test_the_display_shows_each_event_on_one_line() -> None:
    out = io.StringIO()
    display = Display(Console(file=out, width=200), None)
    display("route", {"tier": "strong", "model": "scripted", "decided_by": "rule", "reason": "a crash", "limits": {}})
    display("context", {"tokens": 812, "tool": "triage", "units": ["// a.go:1-9 A (func)", "// b.go:3-4 B (type)"]})
    display("tool_call", {"name": "edit", "arguments": {"path": "a.go", "search": "x := 1", "replace": "x := 2"}})
    display("tests_started", {"packages": ["./a"], "run": "^TestA$", "flags": ["-race"], "patched": True})
    display("tests_done", {"ok": False, "summary": "1 failed", "failures": [{"test": "TestA", "first_line": "boom"}]})
    display("escalating", {"exit": "failed_attempts", "reason": "3 failed test-driven attempts"})
    screen = out.getvalue()
    for text in (
        "tier strong · model scripted",
        "context ≈812 tokens from triage: a.go:1-9, b.go:3-4",
        "- x := 1",
        "+ x := 2",
        "go test -race ./a -run '^TestA$' (with the patch, sandboxed)",
        "✘ 1 failed",
        "TestA: boom",
        "failed_attempts: 3 failed test-driven attempts",
    ):
        assert text in screen, text


MODEL_VARIABLES = ("PROVIDER", "MODEL", "BASE_URL", "API_KEY", "CASSETTE")


def _no_model_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*RENAMED, *(f"GORESOLVE_AGENT_{v}" for v in MODEL_VARIABLES)]:
        monkeypatch.delenv(name, raising=False)


def test_the_demo_replays_its_recording_unless_the_agent_settings_name_a_live_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_model_in_env(monkeypatch)
    recorded = demo_model("SVC-101")
    assert not recorded.live and recorded.label.startswith("recording of scripted")
    # the same variables `goresolve resolve` reads
    monkeypatch.setenv("GORESOLVE_AGENT_PROVIDER", "openai")
    monkeypatch.setenv("GORESOLVE_AGENT_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("GORESOLVE_AGENT_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("GORESOLVE_AGENT_API_KEY", "sk-test")
    live = demo_model("SVC-101")
    assert live.live and live.label == "gpt-4o-mini (live, openai)"
    assert live.config is not None and live.config.base_url == "http://127.0.0.1:9/v1"
    # before, a live demo ran each routed tier on the model routing.yaml names (claude-sonnet-4-5 sent to an
    # OpenAI-compatible endpoint); as for `goresolve resolve`, only GORESOLVE_AGENT_ROUTE_MODELS does that
    assert live.routed is None and recorded.routed is None
    monkeypatch.setenv("GORESOLVE_AGENT_ROUTE_MODELS", "true")
    routed = demo_model("SVC-101").routed
    assert routed is not None and routed("gpt-4o").name == "gpt-4o"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GORESOLVE_AGENT_MODEL": "gpt-4o-mini"}, "GORESOLVE_AGENT_MODEL is set but GORESOLVE_AGENT_PROVIDER is not"),
        ({"GORESOLVE_AGENT_PROVIDER": "anthropic"}, "GORESOLVE_AGENT_MODEL is not set"),
        ({"GORESOLVE_AGENT_PROVIDER": "gemini", "GORESOLVE_AGENT_MODEL": "x"}, "setting GORESOLVE_AGENT_PROVIDER"),
        ({"GORESOLVE_MODEL": "gpt-4o-mini"}, "GORESOLVE_MODEL is no longer read: set GORESOLVE_AGENT_MODEL"),
        ({"GORESOLVE_MODEL_API_KEY": "sk-secret"}, "set GORESOLVE_AGENT_API_KEY"),
        # before, found only at the first model call, after the previous demo was removed and the index rebuilt
        (
            {"GORESOLVE_AGENT_PROVIDER": "openai", "GORESOLVE_AGENT_MODEL": "x", "GORESOLVE_AGENT_BASE_URL": "a-url"},
            "setting GORESOLVE_AGENT_BASE_URL: Value error, an http:// or https:// URL",
        ),
    ],
)
def test_a_half_named_or_renamed_live_model_stops_the_demo_instead_of_replaying(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    _no_model_in_env(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DemoError) as caught:
        demo_model("SVC-101")
    assert message in caught.value.message and "sk-secret" not in caught.value.message


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("SVC-12", "SVC-12"),
        ("https://acme.atlassian.net/browse/SVC-12", "SVC-12"),
        ("https://acme.atlassian.net/jira/software/projects/SVC/boards/1?selectedIssue=SVC-77", "SVC-77"),
        ("acme/svc#12", "acme/svc#12"),
        ("svc#12", "svc#12"),
        ("#12", "#12"),
        ("https://github.com/acme/svc/issues/12", "acme/svc#12"),
        ("https://github.example.com/acme/svc/issues/12/", "acme/svc#12"),  # GitHub Enterprise
    ],
)
def test_a_ticket_is_a_key_a_github_issue_or_an_issue_url(value: str, key: str) -> None:
    env: dict[str, str] = {}
    assert ticket_of(value, env) == (key, None) and env == {}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_github_issue_saved_from_the_api_is_a_github_ticket(tmp_path: Path, suffix: str) -> None:
    saved = tmp_path / f"login-panic{suffix}"
    saved.write_text(json.dumps({"number": 41, "title": "Login panics", "body": "nil map", "labels": []}))
    env: dict[str, str] = {}
    assert ticket_of(str(saved), env) == ("#41", None) and env == {}
    # Jira's shape stays a Jira ticket, even with a number and a title beside its fields
    (tmp_path / "SVC-7.json").write_text(json.dumps({"key": "SVC-7", "number": 3, "title": "x", "fields": {}}))
    assert ticket_of(str(tmp_path / "SVC-7.json"), {}) == ("SVC-7", "SVC")


@pytest.mark.parametrize(
    ("value", "key"),
    [("#12", "svc#12"), ("svc#12", "svc#12"), ("acme/svc#12", "svc#12"), ("SVC-12", "SVC-12")],
)
def test_a_github_issue_is_named_after_the_runs_repository(tmp_path: Path, value: str, key: str) -> None:
    from agent.cli import AgentSettings
    from goresolve.resolve import prepare

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "repos.yaml").write_text("repos:\n  svc: {path: /nonexistent/svc, github: acme/svc}\n")
    settings = AgentSettings(policy_dir=tmp_path / "policies")
    with prepare(value, "svc", settings, Console(file=io.StringIO())) as prepared:
        assert (prepared.key, prepared.repo) == (key, "svc")
    # a GitHub issue event names the repository as GitHub does
    with prepare(value, "acme/svc", settings, Console(file=io.StringIO())) as prepared:
        assert (prepared.key, prepared.repo) == (key, "svc")
    with (
        pytest.raises(
            ResolveError, match="acme/other#12 is an issue of acme/other, but --repo svc is GitHub's acme/svc"
        ),
        prepare("acme/other#12", "svc", settings, Console(file=io.StringIO())),
    ):
        pass


def test_a_ticket_file_is_served_by_the_local_backend_from_its_directory(tmp_path: Path) -> None:
    (tmp_path / "bug.yaml").write_text("key: BUG-7\nfields: {summary: x}\n")
    env: dict[str, str] = {}
    assert ticket_of(str(tmp_path / "bug.yaml"), env) == ("BUG-7", "BUG")
    assert env == {"GORESOLVE_JIRA_READ_BACKEND": "local", "GORESOLVE_JIRA_READ_TICKETS_DIR": str(tmp_path)}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("key: BUG-7\n", "BUG-7"),
        ("key:\nfields: {}\n", "OPS-3"),
        ("fields: {}\n", "OPS-3"),
        ('{"key": "BUG-9"}', "BUG-9"),
    ],
)
def test_a_ticket_files_key_is_its_key_field_else_its_name(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / ("OPS-3.json" if text.startswith("{") else "OPS-3.yaml")
    path.write_text(text)
    assert ticket_of(str(path), {})[0] == key


@pytest.mark.parametrize(
    ("text", "message"),
    [("key: bug 7\n", "its key 'bug 7' is not a Jira issue key"), ("key: [unclosed\n", "not a readable ticket file")],
)
def test_a_bad_ticket_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "OPS-3.yaml").write_text(text)
    with pytest.raises(ResolveError, match=message):
        ticket_of(str(tmp_path / "OPS-3.yaml"), {})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("svc-12", "is not a Jira key"),
        ("https://example.com/issues", "no Jira issue key"),
        ("https://github.com/acme/svc/pull/12", "no Jira issue key .* or GitHub issue"),
        ("acme/svc#0", "is not a Jira key .*, a GitHub issue"),
        ("missing.yaml", "no ticket file"),
    ],
)
def test_a_bad_ticket_is_one_clear_error(value: str, message: str) -> None:
    with pytest.raises(ResolveError, match=message):
        ticket_of(value, {})


def test_during_the_demo_log_lines_go_to_its_file_and_only_warnings_reach_the_screen(tmp_path: Path) -> None:
    root = logging.getLogger()
    screen = io.StringIO()
    handler = logging.StreamHandler(screen)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    saved = (root.handlers[:], root.level)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    log = logging.getLogger("goresolve.test")
    try:
        with logs_to_file(tmp_path / "demo" / "demo.log"):
            log.info("routed ticket=SVC-101")
            log.warning("index is stale")
        log.info("after the demo")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert (tmp_path / "demo" / "demo.log").read_text().splitlines() == [
        "INFO routed ticket=SVC-101",
        "WARNING index is stale",
    ]
    assert screen.getvalue().splitlines() == ["WARNING index is stale", "INFO after the demo"]
    assert handler.level == logging.NOTSET  # the screen's own level is back


def test_the_demo_installs_a_missing_embedding_model_once_before_anything_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers.code_search import cli as code_search_cli
    from servers.code_search import minilm

    installed: list[Path] = []
    monkeypatch.setattr(code_search_cli, "model_install", lambda models: installed.append(models))
    world = World(
        tmp_path, tmp_path / "demo", tmp_path / "r.git", tmp_path / "p", tmp_path / "s", "c", tmp_path / "g", None
    )
    out = io.StringIO()
    ensure_embedding_model(world, Console(file=out, width=200))
    assert installed == [tmp_path / "models"]  # where `goresolve model install` puts it and the router reads it
    assert "installing it first" in out.getvalue()

    installed.clear()
    monkeypatch.setattr(minilm, "built_model", lambda models: models / "minilm.onnx")
    ensure_embedding_model(world, Console(file=io.StringIO()))
    assert installed == []  # already there: not a word, nothing installed


def test_a_demo_with_a_bad_model_setting_keeps_the_previous_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands the previous demo printed (prs, git diff) name its state: a demo that cannot run keeps it."""
    from typer.testing import CliRunner

    from goresolve.cli import app

    previous = tmp_path / "demo" / "state" / "github-pr" / "prs.sqlite"
    previous.parent.mkdir(parents=True)
    previous.write_text("the previous demo's pull requests")
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GORESOLVE_AGENT_PROVIDER", "bogus")
    done = CliRunner().invoke(app, ["demo"])
    assert done.exit_code == 1 and "GORESOLVE_AGENT_PROVIDER" in done.output and "Traceback" not in done.output
    assert previous.read_text() == "the previous demo's pull requests"


def test_ctrl_c_stops_the_demo_inside_its_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT cancels the demo where it is, so the servers' `async with` closes them; a second one meanwhile is
    ignored, and the caller gets DemoInterrupted (one line, exit 130), not a KeyboardInterrupt."""
    import os
    import signal

    from goresolve import demo

    closed: list[str] = []

    async def forever(world: World, console: Console, tickets: tuple[str, ...]) -> list[Any]:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            await anyio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C while it stops
            await anyio.sleep(30)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)  # the servers' shutdown takes a moment
                closed.append("servers")
        return []

    monkeypatch.setattr(demo, "_run_demo", forever)
    world = World(tmp_path, tmp_path / "demo", tmp_path / "r.git", tmp_path, tmp_path, "c", tmp_path / "g", None)
    with pytest.raises(demo.DemoInterrupted) as stopped:
        anyio.run(demo.run_demo, world, Console(file=io.StringIO()))
    assert closed == ["servers"]
    assert "interrupted" in stopped.value.message and "\n" not in stopped.value.message


def test_a_demo_error_is_raised_as_itself_through_the_signal_watch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from goresolve import demo

    async def broken(world: World, console: Console, tickets: tuple[str, ...]) -> list[Any]:
        raise DemoError("the servers could not start: x")

    monkeypatch.setattr(demo, "_run_demo", broken)
    world = World(tmp_path, tmp_path / "demo", tmp_path / "r.git", tmp_path, tmp_path, "c", tmp_path / "g", None)
    with pytest.raises(DemoError, match="could not start"):  # not an ExceptionGroup
        anyio.run(demo.run_demo, world, Console(file=io.StringIO()))


def test_the_demo_command_exits_130_in_one_line_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from goresolve import demo
    from goresolve.cli import app

    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path))

    def interrupted(data_dir: Path, console: Console, **_: Any) -> World:
        raise KeyboardInterrupt  # Ctrl-C before the servers start

    monkeypatch.setattr(demo, "prepare_world", interrupted)
    done = CliRunner().invoke(app, ["demo"])
    assert done.exit_code == 130, done.output
    assert done.output.strip().splitlines() == [
        "error: interrupted: the demo stopped and its servers were shut down; `goresolve demo` starts over"
    ]


def _policies_with(tmp_path: Path, access_extra: str) -> Path:
    """A copy of the shipped policies where local-dev is granted a repository the user registered too."""
    import shutil

    from goresolve import demo

    copy = tmp_path / "policies"
    shutil.copytree(demo.POLICIES, copy, ignore=shutil.ignore_patterns("schema"))
    repos = copy / "repos.yaml"
    repos.write_text(repos.read_text() + "  acme/my-service:\n    path: /nowhere/my-service\n")
    access = copy / "access.yaml"
    access.write_text(access.read_text().replace("repos: [sample-service]", "repos: [sample-service, acme/my-service]"))
    access.write_text(access.read_text() + access_extra)
    return copy


def test_the_demo_runs_after_the_user_registered_a_repository_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, after `goresolve repo add`, the demo's copy of access.yaml still granted the user's repository while
    its repos.yaml held the sample alone: every server refused to start, after the previous demo was deleted."""
    import yaml

    from goresolve import demo

    monkeypatch.setattr(demo, "POLICIES", _policies_with(tmp_path, ""))
    world = demo.prepare_world(tmp_path / "data", Console(file=io.StringIO()))
    access = yaml.safe_load((world.policy_dir / "access.yaml").read_text())
    assert access["identities"]["local-dev"]["repos"] == ["sample-service"]
    from servers.common.policy import load_policies

    assert list(load_policies(world.policy_dir).repos.repos) == ["sample-service"]


def test_policies_the_servers_refuse_stop_the_demo_before_the_previous_one_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from goresolve import demo

    broken = "  ghost:\n    roles: [no-such-role]\n"
    monkeypatch.setattr(demo, "POLICIES", _policies_with(tmp_path, broken))
    data = tmp_path / "data"
    previous = demo.demo_pr_db(data)
    previous.parent.mkdir(parents=True)
    previous.write_text("the previous demo's pull requests")
    with pytest.raises(DemoError, match=r"identities\.ghost\.roles\.0.*unknown role"):
        demo.prepare_world(data, Console(file=io.StringIO()))
    assert previous.read_text() == "the previous demo's pull requests"
    assert [p.name for p in data.iterdir() if p.name.startswith(".demo-policies-")] == []
