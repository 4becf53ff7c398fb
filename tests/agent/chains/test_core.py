"""The chain framework: typed wiring, model steps that validate and retry, spans, budget and ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from pydantic import BaseModel, Field

from agent.chains.core import Chain, ChainContext, ChainLimits, FakeStep, ModelStep, ToolStep
from agent.chains.errors import ChainBudgetExceeded, InvalidModelOutput, ModelUnavailable
from agent.ledger import Ledger
from agent.llm import PriceBook, ScriptedModel, reply
from agent.llm.types import ChatRequest
from agent.policy import Budgets, Price
from agent.telemetry import run_spans, tracer


class Ticket(BaseModel):
    text: str


class Answer(BaseModel):
    service: str = Field(pattern=r"^[a-z][a-z0-9-]+$")
    messages: list[str] = Field(min_length=1)


class Summary(BaseModel):
    line: str


def step(max_attempts: int = 3) -> ModelStep[Ticket, Answer]:
    return ModelStep(
        "requirements",
        Ticket,
        Answer,
        instructions="Name the service.",
        render=lambda t: t.text,
        max_attempts=max_attempts,
    )


async def summarise(answer: Answer, ctx: ChainContext) -> Summary:
    return Summary(line=f"{answer.service}: {', '.join(answer.messages)}")


def chain(model_step: ModelStep[Ticket, Answer] | FakeStep[Ticket, Answer]) -> Chain[Ticket, Summary]:
    return Chain("demo", Ticket, Summary, [model_step, ToolStep("summarise", Answer, Summary, summarise)])


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "ledger.sqlite")
    yield led
    led.close()


def priced_context(model: ScriptedModel, ledger: Ledger | None = None, **limits: float) -> ChainContext:
    prices = PriceBook(Budgets(prices={"scripted": Price(input=1.0, output=2.0)}))
    return ChainContext(
        model=model, prices=prices, ledger=ledger, run_id="run-1", tier="small", limits=ChainLimits(**limits)
    )


async def test_invalid_model_output_is_sent_back_and_the_corrected_answer_is_used() -> None:
    model = ScriptedModel(
        [
            reply("", ("answer", {"service": "Orders Service", "messages": []})),
            reply("not json at all"),
            reply("", ("answer", {"service": "orders", "messages": ["shop.v1.Order"]})),
        ]
    )
    result = await chain(step()).run(Ticket(text="We need an orders service."), priced_context(model))
    assert result == Summary(line="orders: shop.v1.Order")
    assert len(model.requests) == 3
    first_fix = model.requests[1].messages[-1]
    assert first_fix.role == "tool" and first_fix.tool_call_id == "call_0"
    assert "service: String should match pattern" in first_fix.content
    assert "messages: List should have at least 1 item" in first_fix.content
    second_fix = model.requests[2].messages[-1]
    assert second_fix.role == "user" and "Invalid JSON" in second_fix.content
    assert model.requests[0].tools[0].parameters == Answer.model_json_schema()


async def test_bounded_retries_end_in_a_structured_error_naming_the_step() -> None:
    model = ScriptedModel([reply("", ("answer", {"service": "x"}))] * 5)
    with pytest.raises(InvalidModelOutput) as caught:
        await chain(step(max_attempts=2)).run(Ticket(text="t"), priced_context(model))
    assert len(model.requests) == 2
    error = caught.value.to_dict()
    assert error["kind"] == "invalid_model_output" and error["step"] == "requirements" and error["attempts"] == 2
    assert "messages: Field required" in error["reason"]


async def test_every_model_call_is_priced_onto_the_ledger_under_the_run(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            reply("", ("answer", {"service": "", "messages": ["a"]})),
            reply("", ("answer", {"service": "svc", "messages": ["a"]})),
        ]
    )
    ctx = priced_context(model, ledger)
    await chain(step()).run(Ticket(text="t"), ctx)
    assert ctx.model_calls == 2 and ctx.cost_usd > 0
    assert ledger.by("run_id") == pytest.approx({"run-1": ctx.cost_usd})
    assert ledger.by("tier") == pytest.approx({"small": ctx.cost_usd})
    expected = (ctx.usage.input_tokens * 1.0 + ctx.usage.output_tokens * 2.0) / 1e6
    assert ctx.cost_usd == pytest.approx(expected)


async def test_the_budget_is_checked_before_the_call(ledger: Ledger) -> None:
    model = ScriptedModel([reply("", ("answer", {"service": "svc", "messages": ["a"]}))])
    ctx = priced_context(model, ledger, max_tokens=200)
    with pytest.raises(ChainBudgetExceeded) as caught:
        await chain(step()).run(Ticket(text="t"), ctx)
    assert model.requests == [] and ledger.by("run_id") == {}
    assert caught.value.step == "requirements" and "token budget" in caught.value.reason
    cheap = priced_context(ScriptedModel([]), None, max_cost_usd=0.0001)
    with pytest.raises(ChainBudgetExceeded, match="cost budget"):
        await chain(step()).run(Ticket(text="t"), cheap)


async def test_a_failing_model_is_a_chain_error_not_an_llm_error() -> None:
    ctx = priced_context(ScriptedModel([]))  # exhausted at once
    with pytest.raises(ModelUnavailable, match="script has 0 responses"):
        await chain(step()).run(Ticket(text="t"), ctx)


async def test_every_step_is_a_span_under_the_chain_span() -> None:
    sink = run_spans()
    model = ScriptedModel([reply("", ("answer", {"service": "svc", "messages": ["a"]}))])
    with tracer().start_as_current_span("test root") as root:
        await chain(step()).run(Ticket(text="t"), priced_context(model))
    spans = {s["name"]: s for s in sink.collect(root.get_span_context().trace_id)}
    assert {"chain demo", "chain.step requirements", "chain.step summarise", "chat scripted"} <= set(spans)
    chain_id = spans["chain demo"]["span_id"]
    assert spans["chain.step requirements"]["parent_id"] == chain_id
    assert spans["chain.step summarise"]["parent_id"] == chain_id
    assert spans["chat scripted"]["parent_id"] == spans["chain.step requirements"]["span_id"]
    assert spans["chain.step requirements"]["attributes"]["goresolve.step.kind"] == "model"
    assert spans["chain demo"]["attributes"]["goresolve.cost_usd"] > 0


async def test_a_failed_step_marks_its_span_and_stops_the_chain() -> None:
    sink = run_spans()
    model = ScriptedModel([reply("nope")] * 3)
    ctx = priced_context(model)
    with tracer().start_as_current_span("test root") as root, pytest.raises(InvalidModelOutput):
        await chain(step()).run(Ticket(text="t"), ctx)
    spans = {s["name"]: s for s in sink.collect(root.get_span_context().trace_id)}
    assert spans["chain.step requirements"]["status"] == "ERROR"
    assert spans["chain.step requirements"]["attributes"]["goresolve.error.kind"] == "invalid_model_output"
    assert spans["chain demo"]["status"] == "ERROR"
    assert "chain.step summarise" not in spans
    assert [(r.step, r.ok) for r in ctx.steps] == [("requirements", False)]
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_a_model_step_can_be_replaced_by_a_fake() -> None:
    fake = FakeStep("requirements", Ticket, Answer, lambda t: Answer(service="svc", messages=[t.text]))
    result = await chain(fake).run(Ticket(text="shop.v1.Cart"), ChainContext())
    assert result.line == "svc: shop.v1.Cart" and fake.seen == [Ticket(text="shop.v1.Cart")]


def test_steps_whose_types_do_not_line_up_are_refused_when_the_chain_is_built() -> None:
    with pytest.raises(TypeError, match="step summarise takes Answer, but receives Ticket"):
        Chain("bad", Ticket, Summary, [ToolStep("summarise", Answer, Summary, summarise)])
    with pytest.raises(TypeError, match="ends with Answer, not Summary"):
        Chain("bad", Ticket, Summary, [step()])


def test_the_answer_schema_is_the_output_model_s() -> None:
    request = ChatRequest((), (step().tool,))
    assert request.tools[0].name == "answer" and request.tools[0].parameters["required"] == ["service", "messages"]
