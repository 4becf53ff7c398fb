"""The triage chain against a real code-search over MCP: ranked whole units within the budget, ADRs, frames."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.chains.core import ChainContext, FakeStep
from agent.chains.errors import ToolStepFailed
from agent.chains.extract import TicketText
from agent.chains.triage import ContextUnit, Facts, ModelHints, TriageSettings, count_tokens, triage
from agent.ledger import Ledger
from agent.llm import PriceBook, ScriptedModel, reply
from agent.policy import Budgets, Price

from .conftest import REPO, SearchWorld

TICKET = TicketText(
    key="SHOP-7",
    title="Nightly Reconcile leaves ledger balances off by the fee",
    body="After the nightly run, ledger.Reconcile applies the rate but Balance is off. Order totals look fine.",
)
TRACE = TicketText(
    key="SHOP-8",
    title="panic in checkout",
    body=(
        "panic: runtime error: invalid memory address or nil pointer dereference\n\n"
        "goroutine 1 [running]:\n"
        "example.com/shop/orders.(*Order).Total(0x0)\n"
        "\t/home/ci/go/pkg/mod/example.com/shop@v1.2.0/orders/orders.go:22 +0x1d\n"
        "main.main()\n"
        "\t/src/cmd/shop/main.go:12 +0x25\n"
    ),
)


def assert_whole(world: SearchWorld, text: str, path: str, start: int, end: int) -> None:
    assert text == "\n".join(world.file_lines(path)[start - 1 : end]), f"{path}:{start}-{end} is not whole"


def assert_shown(world: SearchWorld, unit: ContextUnit) -> None:
    """Whole, or (`part`) the indexer's part: the signature line marked `// part i/n`, then whole lines."""
    if not unit.part:
        assert_whole(world, unit.code, unit.path, unit.start_line, unit.end_line)
        return
    lines = unit.code.split("\n")
    marker = next(i for i, line in enumerate(lines) if re.search(r"\{  // part \d+/\d+$", line))
    assert lines[marker].split("  // part")[0] in world.file_lines(unit.path)
    body = lines[marker + 1 :]
    assert body == world.file_lines(unit.path)[unit.end_line - len(body) : unit.end_line]


@pytest.mark.parametrize("budget", [120, 400, 1500, 3000])
async def test_the_context_fits_the_budget_and_never_cuts_a_unit(budget: int, search_world: SearchWorld) -> None:
    async with search_world.code_search() as code_search:
        ctx = ChainContext(call_tool=code_search.call)
        result = await triage(TICKET, ctx, repo=REPO, budget=budget)
        whole = await triage(TICKET, ctx, repo=REPO, budget=budget, settings=TriageSettings(whole_share=1))
    for got in (result, whole):
        assert got.units, "something always fits"
        assert got.tokens == count_tokens(got.context) <= budget
        for unit in [*got.units, *got.adrs]:
            assert_shown(search_world, unit)
            assert f"{unit.header}\n{unit.code}" in got.context
    # the indexer split Reconcile in five parts (about 2,300 tokens whole)
    if budget >= 3000:  # the whole fits the budget: read back and shown whole when its share allows
        reconcile = [u for u in whole.units if u.symbol == "ledger.Reconcile"]
        assert [(u.start_line, u.end_line, u.part) for u in reconcile] == [(4, 96, False)]
        assert reconcile[0].code.startswith("// Reconcile applies") and reconcile[0].code.endswith("}")
    else:
        assert [u for u in whole.units if u.symbol == "ledger.Reconcile" and not u.part] == []
    # by default the whole may take a third of the budget: past that, the part the search matched is shown
    assert all(u.part for u in result.units if u.symbol == "ledger.Reconcile")
    if budget >= 1500:  # a part is up to the indexer's chunk size
        assert any(u.symbol == "ledger.Reconcile" for u in result.units)


async def test_a_stack_trace_brings_its_frame_first_with_the_receiver_type(search_world: SearchWorld) -> None:
    async with search_world.code_search() as code_search:
        result = await triage(TRACE, ChainContext(call_tool=code_search.call), repo=REPO, budget=600)
    assert [f.symbol for f in result.facts.frames] == ["orders.Order.Total", "main.main"]
    assert [u.symbol for u in result.units[:2]] == ["orders.Order.Total", "orders.Order"]
    assert "frame" in result.units[0].sources and result.units[1].kind == "type"
    assert result.queries[0].source == "ticket"
    assert any(q.kind == "symbol" and q.text == "orders.Order.Total" for q in result.queries)


async def test_matching_adrs_come_with_the_code_within_their_share(search_world: SearchWorld) -> None:
    ticket = TicketText(key="SHOP-9", title="Order tax is rounded per line", body="Order.Total rounds tax per line.")
    async with search_world.code_search() as code_search:
        ctx = ChainContext(call_tool=code_search.call)
        result = await triage(ticket, ctx, repo=REPO, budget=800)
        none = await triage(ticket, ctx, repo=REPO, budget=800, settings=TriageSettings(adr_share=0))
    assert {a.path for a in result.adrs} == {"docs/adr/0002-money-in-cents.md"}  # never the README
    assert sum(a.tokens for a in result.adrs) <= 800 * 0.25
    assert "ADR 2: Money is kept in integer cents" in result.context
    assert none.adrs == [] and "ADR 2" not in none.context


async def test_a_hints_step_adds_names_the_ticket_only_implies(search_world: SearchWorld) -> None:
    ticket = TicketText(key="SHOP-10", title="the sum of all entries is wrong", body="")
    hints = FakeStep("hints", Facts, ModelHints, ModelHints(identifiers=["ledger.Balance"]))
    async with search_world.code_search() as code_search:
        ctx = ChainContext(call_tool=code_search.call)
        result = await triage(ticket, ctx, repo=REPO, budget=300, hints=hints)
    balance = next(u for u in result.units if u.symbol == "ledger.Balance")
    assert "identifier" in balance.sources and hints.seen[0].facts.identifiers == []


async def test_the_model_hints_step_is_charged_to_the_run(search_world: SearchWorld, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    model = ScriptedModel([reply("", ("answer", {"identifiers": ["NewOrder"], "queries": ["create order"]}))])
    prices = PriceBook(Budgets(prices={"scripted": Price(input=1.0, output=2.0)}))
    ticket = TicketText(key="SHOP-11", title="new orders start with a stale id", body="")
    async with search_world.code_search() as code_search:
        ctx = ChainContext(call_tool=code_search.call, model=model, prices=prices, ledger=ledger, run_id="r-7")
        result = await triage(ticket, ctx, repo=REPO, budget=300, settings=TriageSettings(use_model=True))
    assert any(u.symbol == "orders.NewOrder" for u in result.units)
    assert result.model_calls == 1 and result.cost_usd > 0
    assert ledger.by("run_id") == pytest.approx({"r-7": result.cost_usd})
    assert [(s.step, s.kind) for s in ctx.steps][:2] == [("extract", "tool"), ("hints", "model")]
    ledger.close()


async def test_without_code_search_triage_fails_with_a_structured_error() -> None:
    with pytest.raises(ToolStepFailed) as caught:
        await triage(TICKET, ChainContext(), repo=REPO)
    assert caught.value.to_dict()["step"] == "search" and "search_code" in caught.value.reason
