"""The model provider is an untrusted external API: an error that quotes the key it was sent reaches no record, and
the model name it reports does not pick the price a call is charged at. The agent's real gateway (build_model)
against the fake HTTP provider, driving the four real servers over stdio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.ledger import Ledger
from agent.llm import ModelConfig, build_model
from agent.llm.errors import ProviderError, without_secrets
from agent.llm.gateway import chain_names
from agent.loop import RunSettings
from agent.policy import AgentPolicy

from .llm_fake_server import Answer, FakeLLM, anthropic_message, openai_completion
from .workspace import TICKET, Workspace, World, make_workspace, pulls, run_model

KEY = "gr-local-7f3a9c2e1b8d4f6a0e5c3b1a9d7f2e4c"  # no credential pattern knows its shape: only its value can tell


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    tickets = {f"CALC-{n}": TICKET.replace("CALC-1", f"CALC-{n}") for n in range(1, 10)}
    return make_workspace(tmp_path_factory.mktemp("provider"), tickets=tickets)


def gpt4o(llm: FakeLLM) -> Any:
    return build_model(ModelConfig(provider="openai", model="gpt-4o", base_url=llm.url, api_key=SecretStr(KEY)))


def test_a_provider_error_quoting_the_key_leaves_it_in_no_record_ledger_or_draft(
    world: World, module_workspace: Workspace, policy: AgentPolicy, settings: RunSettings, ledger: Ledger, llm: FakeLLM
) -> None:
    said: list[str] = []

    def respond(body: dict[str, Any]) -> Answer:
        if len(llm.requests) == 1:
            edit = {"path": "calc.go", "search": "return a - b", "replace": "return a * b"}
            return Answer(200, openai_completion(calls=[("edit", edit)]))
        if len(llm.requests) == 2:
            return Answer(200, openai_completion(calls=[("run_tests", {})]))
        sent = llm.requests[-1]["headers"]["authorization"].removeprefix("Bearer ")
        said.append(sent)
        return Answer(400, {"error": {"message": f"Invalid API key in header: {sent}"}})

    llm.responder.append(respond)
    result = run_model(world, "CALC-2", gpt4o(llm), policy, settings)
    assert said and said[0] == KEY  # the provider did quote it
    assert result.exit == "escalated" and result.pr is not None, result.reason
    assert result.reason.startswith("model unavailable: gpt-4o: HTTP 400: Invalid API key in header: [secret removed]")
    run_dir = Path(str(result.run_dir))
    assert [p.name for p in run_dir.iterdir() if KEY in p.read_text()] == []
    row = ledger.run(result.run_id)
    assert row is not None and KEY not in str(row) and "[secret removed]" in str(row)
    pull = pulls(module_workspace).by_ticket("calc", "CALC-2")
    assert pull is not None and KEY not in pull.body and "[secret removed]" in pull.body
    spans = (run_dir / "spans.jsonl").read_text()
    assert KEY not in spans


def test_an_error_message_never_holds_a_header_credential_even_cut_short() -> None:
    from agent.llm._http import _short_error  # pyright: ignore[reportPrivateUsage]

    secret = "s" * 60 + "TAIL"
    raw = json.dumps({"error": {"message": "x" * 170 + f" key: {secret}"}}).encode()
    short = _short_error(raw, ("Bearer " + secret, secret))
    assert "sss" not in short and len(short) <= 200  # cut after the key went, never leaving part of it
    assert without_secrets(f"a {secret} b", (secret,)) == "a [secret removed] b"
    build_model(
        ModelConfig(provider="anthropic", model="claude-haiku-4-5", base_url="http://x", api_key=SecretStr(KEY))
    )
    assert KEY not in ProviderError(f"HTTP 401: bad x-api-key {KEY}").message


def test_a_servers_bearer_token_is_kept_out_of_model_error_messages(tmp_path: Path) -> None:
    from agent.servers import HttpEndpoints, http_servers

    token = "eyJhbGciOiJSUzI1NiJ9.server-token-for-tests"
    settings: dict[str, Any] = {"mcp_transport": "http"}
    for name in ("jira_read", "code_search", "go_test_runner", "github_pr"):
        (tmp_path / name).write_text(token + "\n", encoding="utf-8")
        settings[f"{name}_url"] = "http://127.0.0.1:1/mcp"
        settings[f"{name}_token_file"] = tmp_path / name
    http_servers(HttpEndpoints(**settings))
    assert token not in ProviderError(f"HTTP 400: a proxy quoting {token}").message


@pytest.mark.parametrize("reported", ["gpt-4o-mini", "gpt-4o-mini-2024-07-18", "some-free-model"])
def test_a_provider_naming_another_model_is_charged_at_the_configured_models_price(
    world: World, policy: AgentPolicy, settings: RunSettings, ledger: Ledger, llm: FakeLLM, reported: str
) -> None:
    def respond(body: dict[str, Any]) -> Answer:
        if body.get("tool_choice") == "none":
            made = openai_completion("the sign in Add", prompt=3000, completion=50)
        else:
            made = openai_completion(calls=[("escalate", {"reason": "cannot fix it"})], prompt=3000, completion=20)
        made["model"] = reported
        return Answer(200, made)

    llm.responder.append(respond)
    ticket = {"gpt-4o-mini": "CALC-3", "gpt-4o-mini-2024-07-18": "CALC-4"}.get(reported, "CALC-5")
    result = run_model(world, ticket, gpt4o(llm), policy, settings)
    assert result.exit == "escalated" and result.model_calls == 2, result.reason
    at_gpt4o = (result.input_tokens * 2.50 + result.output_tokens * 10.0) / 1e6  # policies/budgets.yaml
    assert result.cost_usd == pytest.approx(at_gpt4o)
    assert ledger.day_spend() == pytest.approx(at_gpt4o)


def test_only_a_configured_model_or_its_dated_snapshot_picks_the_price(policy: AgentPolicy) -> None:
    from agent.llm.pricing import PriceBook, is_snapshot_of
    from agent.llm.types import Usage

    assert is_snapshot_of("gpt-4o-2024-08-06", "gpt-4o") and is_snapshot_of("gpt-4o", "gpt-4o")
    assert is_snapshot_of("claude-3-5-sonnet-20241022", "claude-3-5-sonnet")
    assert not is_snapshot_of("gpt-4o-mini", "gpt-4o") and not is_snapshot_of("gpt-4o-mini-2024-07-18", "gpt-4o")
    book, usage = PriceBook(policy.budgets), Usage(input_tokens=1_000_000, output_tokens=0)
    assert book.charge("gpt-4o-mini-2024-07-18", ["gpt-4o-mini"], usage) == pytest.approx(0.15)
    assert book.charge("gpt-4o-mini", ["gpt-4o"], usage) == pytest.approx(2.50)
    # a fallback chain: its own second model is priced as itself, anything else at the dearest of the chain
    assert book.charge("gpt-4o-mini", ["gpt-4o", "gpt-4o-mini"], usage) == pytest.approx(0.15)
    assert book.charge("other", ["gpt-4o-mini", "gpt-4o"], usage) == pytest.approx(2.50)


def test_billed_replies_the_agent_cannot_use_are_charged_to_the_run_and_the_ledger(
    world: World, policy: AgentPolicy, settings: RunSettings, ledger: Ledger, llm: FakeLLM
) -> None:
    """A 200 with no choice but a usage: the gateway retried it (three requests here, four in production), each
    billed, and the run reported 0 tokens and $0, nothing in the ledger: a provider answering billed garbage
    spent outside the run and daily caps."""

    def respond(body: dict[str, Any]) -> Answer:
        garbage = openai_completion("", prompt=1000, completion=10)
        garbage["choices"] = []
        return Answer(200, garbage)

    llm.responder.append(respond)
    result = run_model(world, "CALC-6", gpt4o(llm), policy, settings)
    assert result.exit == "escalated" and "not a chat completion" in result.reason, result.reason
    sent = len(llm.requests)
    assert sent == 3 and result.model_calls == 0
    assert (result.input_tokens, result.output_tokens) == (1000 * sent, 10 * sent)
    charged = (1000 * sent * 2.50 + 10 * sent * 10.0) / 1e6  # gpt-4o in policies/budgets.yaml
    assert result.cost_usd == pytest.approx(charged)
    assert ledger.day_spend() == pytest.approx(charged)


def _with_run_cap(policy: AgentPolicy, max_cost_usd: float) -> AgentPolicy:
    run = policy.budgets.run.model_copy(update={"max_cost_usd": max_cost_usd})
    return policy.model_copy(update={"budgets": policy.budgets.model_copy(update={"run": run})})


def test_a_retry_after_billed_garbage_must_fit_in_the_run_budget(
    world: World, policy: AgentPolicy, settings: RunSettings, ledger: Ledger, llm: FakeLLM
) -> None:
    """Each garbled reply was billed a call's worst case; the budget check reserved one, and the gateway then
    retried twice more unchecked: the run was charged three worst cases against a cap of two and a half. Now an
    attempt that follows billed ones is made only while what they cost and its own worst case still fit."""

    def respond(body: dict[str, Any]) -> Answer:
        garbage = openai_completion("", prompt=10_000_000, completion=10_000_000)  # cut to the request's most
        garbage["choices"] = []
        return Answer(200, garbage)

    llm.responder.append(respond)
    probe = run_model(world, "CALC-8", gpt4o(llm), policy, settings)  # the default cap takes all three attempts
    assert len(llm.requests) == 3 and probe.exit == "escalated", probe.reason
    per_reply = probe.cost_usd / 3
    cap = round(per_reply * 2.5, 4)
    llm.requests.clear()
    result = run_model(world, "CALC-7", gpt4o(llm), _with_run_cap(policy, cap), settings)
    assert result.exit == "budget_exceeded", result.reason
    spent = f"${2 * per_reply:.4f} spent"
    assert result.reason.startswith(f"no attempt after the billed ones: cost budget: {spent} + up to $"), result.reason
    assert len(llm.requests) == 2  # one billed reply and a worst case fit in the cap; two and another do not
    assert result.cost_usd == pytest.approx(2 * per_reply) and result.cost_usd <= cap
    assert ledger.day_spend() == pytest.approx(probe.cost_usd + result.cost_usd) and ledger.held() == 0


def test_the_model_name_and_finish_reason_a_provider_reports_reach_the_trace_short_and_without_the_key(
    world: World, policy: AgentPolicy, settings: RunSettings, llm: FakeLLM
) -> None:
    """Before, both went onto the model-call span as sent: the key echoed in them, and a name of any length."""

    def respond(body: dict[str, Any]) -> Answer:
        if len(llm.requests) == 1:
            answer = openai_completion(calls=[("escalate", {"reason": "cannot reproduce"})])
        else:
            answer = openai_completion("Root cause: unknown.")
        answer["model"] = f"gpt-4o {KEY} " + "x" * 5000
        answer["choices"][0]["finish_reason"] = f"stop {KEY}"
        return Answer(200, answer)

    llm.responder.append(respond)
    result = run_model(world, "CALC-9", gpt4o(llm), policy, settings)
    assert result.exit == "escalated", result.reason
    spans = [json.loads(line) for line in (Path(str(result.run_dir)) / "spans.jsonl").read_text().splitlines()]
    said = [s["attributes"] for s in spans if "gen_ai.response.model" in s.get("attributes", {})]
    assert said, "no model-call span"
    for attributes in said:
        assert KEY not in json.dumps(attributes)
        assert len(attributes["gen_ai.response.model"]) <= 200
        assert attributes["gen_ai.response.finish_reasons"] == ["stop [secret removed]"]


def test_a_fallback_model_that_answers_is_priced_as_itself(
    world: World, policy: AgentPolicy, settings: RunSettings, ledger: Ledger, llm: FakeLLM
) -> None:
    """Before, the chain's names were read through one wrapper only (build_model puts Redacting outermost): every
    answer was priced as the primary, here gpt-4o-mini, 20 times cheaper than the claude-sonnet-4-5 that gave it."""

    def respond(body: dict[str, Any]) -> Answer:
        if llm.requests[-1]["path"].endswith("/chat/completions"):
            return Answer(502, {"error": {"message": "bad gateway"}})
        if sum(r["path"].endswith("/messages") for r in llm.requests) == 1:
            return Answer(200, anthropic_message(calls=[("escalate", {"reason": "cannot reproduce"})], input=10_000))
        return Answer(200, anthropic_message("Root cause: unknown.", input=10_000))

    llm.responder.append(respond)
    fallback = ModelConfig(provider="anthropic", model="claude-sonnet-4-5", base_url=llm.url, api_key=SecretStr(KEY))
    config = ModelConfig(
        provider="openai", model="gpt-4o-mini", base_url=llm.url, api_key=SecretStr(KEY), fallbacks=(fallback,)
    )
    model = build_model(config)
    assert chain_names(model) == ["gpt-4o-mini", "claude-sonnet-4-5"]
    result = run_model(world, "CALC-5", model, policy, settings)
    assert result.exit == "escalated", result.reason
    answered = sum(r["path"].endswith("/messages") for r in llm.requests)
    sonnet = (result.input_tokens * 3.00 + result.output_tokens * 15.00) / 1e6  # policies/budgets.yaml
    assert answered == result.model_calls >= 1
    assert result.cost_usd == pytest.approx(sonnet) and ledger.day_spend() == pytest.approx(sonnet)
