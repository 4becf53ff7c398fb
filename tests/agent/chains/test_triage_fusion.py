"""The whole-ticket search leads the triage context: the other queries add units, they do not outvote it."""

from __future__ import annotations

from typing import Any

from agent.chains.core import ChainContext
from agent.chains.extract import TicketFacts, TicketText
from agent.chains.triage import (
    Candidates,
    ContextUnit,
    FoundUnit,
    Plan,
    Query,
    TriageInput,
    TriageResult,
    TriageSettings,
    count_tokens,
    fuse,
    triage_chain,
)

from .conftest import REPO, SearchWorld


def found(symbol: str, part: int = 0, of: int = 3) -> FoundUnit:
    marker = f"  // part {part}/{of}" if part else ""
    return FoundUnit(
        path=f"{symbol.lower()}.go",
        start_line=10 * part + 1,
        end_line=10 * part + 9,
        symbol=symbol,
        kind="func",
        code=f"func {symbol}() {{{marker}\n\treturn // {part}\n",
    )


def query(source: str, weight: float, kind: str = "search") -> Query:
    return Query(kind="symbol" if kind == "symbol" else "search", text=source, source=source, weight=weight)


def test_the_ticket_lists_first_units_keep_its_order_before_louder_fused_units() -> None:
    lists = [
        (query("ticket", 1.0), [found("A"), found("B"), found("C")]),
        (query("symptoms", 0.7), [found("D"), found("C")]),
        (query("frame", 1.2, "symbol"), [found("D")]),
        (query("error", 0.6), [found("D"), found("E")]),
    ]
    ranked, lead = fuse(lists, TriageSettings())
    assert [u.symbol for u in ranked] == ["A", "B", "C", "D", "E"] and lead == 3
    assert ranked[3].sources == ["symptoms", "frame", "error"] and ranked[2].sources == ["ticket", "symptoms"]
    # pure reciprocal-rank fusion (no lead) lets three queries agreeing on D outvote the ticket's own reading
    fused, none = fuse(lists, TriageSettings(lead=0))
    assert [u.symbol for u in fused][:2] == ["D", "C"] and none == 0
    # a lead of 2 keeps the ticket's first two; the rest is fused
    two, lead = fuse(lists, TriageSettings(lead=2))
    assert [u.symbol for u in two] == ["A", "B", "D", "C", "E"] and lead == 2


def test_a_split_unit_counts_once_per_list_and_keeps_its_best_ranked_part() -> None:
    long_parts = [found("Loop", 2), found("Loop", 1), found("Loop", 3)]
    lists = [
        (query("ticket", 1.0), [*long_parts, found("Fix")]),
        (query("symptoms", 0.7), [found("Fix"), found("Loop", 3)]),
        (query("error", 0.6), [found("Fix")]),
    ]
    ranked, _ = fuse(lists, TriageSettings(lead=0))
    # Loop: 1/60 + 0.7/61; Fix: 1/61 (its rank in the ticket list counts parts before it) + 0.7/60 + 0.6/60.
    # Summing Loop's three parts in the ticket list (1/60 + 1/61 + 1/62) would put it first.
    assert [u.symbol for u in ranked] == ["Fix", "Loop"]
    loop = ranked[1]
    assert (loop.start_line, loop.end_line, loop.split) == (21, 29, True)  # part 2, ranked first
    assert loop.code.startswith("func Loop() {  // part 2/3")
    assert loop.score == 1.0 / 60 + 0.7 / 61


def test_named_tests_keep_their_score_and_other_tests_are_damped() -> None:
    test_unit = found("TestTotal").model_copy(update={"path": "total_test.go"})
    other = found("TestOther").model_copy(update={"path": "other_test.go"})
    lists = [(query("ticket", 1.0), [other, test_unit, found("Total")])]
    ranked, _ = fuse(lists, TriageSettings(lead=0), frozenset({"TestTotal"}))
    assert [u.symbol for u in ranked] == ["TestTotal", "Total", "TestOther"]


async def _symbol(call: Any, name: str) -> ContextUnit:
    got = await call("get_symbol", {"repo": REPO, "symbol": name})
    unit = got.structured["units"][0]
    return ContextUnit(**{k: unit[k] for k in ("path", "start_line", "end_line", "symbol", "kind", "code")})


async def test_leading_units_get_the_budget_before_receiver_types(search_world: SearchWorld) -> None:
    """A receiver type is added only with what the leading units leave; it never pushes one of them out."""
    assemble = triage_chain().steps[-1]
    async with search_world.code_search() as code_search:
        ctx = ChainContext(call_tool=code_search.call)
        names = ["orders.Order.Total", "ledger.Balance", "orders.NewOrder"]
        units = [await _symbol(code_search.call, n) for n in names]
        order_type = await _symbol(code_search.call, "orders.Order")
        lead_tokens = sum(u.tokens for u in units)
        budget = lead_tokens + order_type.tokens // 2  # all three fit, but not with the type as well

        async def context(lead: int, budget: int) -> TriageResult:
            settings = TriageSettings(budget=budget, adr_share=0)
            data = TriageInput(ticket=TicketText(key="SHOP-20", title="totals"), repo=REPO, settings=settings)
            plan = Plan(input=data, facts=TicketFacts(), queries=[])
            fresh = [u.model_copy(deep=True) for u in units]
            result = await assemble.run(Candidates(plan=plan, units=fresh, lead=lead, adrs=[]), ctx)
            assert isinstance(result, TriageResult)
            return result

        led = await context(3, budget)
        unled = await context(0, budget)
        roomy = await context(3, budget + order_type.tokens + 1)
    assert [u.symbol for u in led.units] == names and led.tokens <= budget
    # without a lead, the type's share of the budget is kept first and the last unit is left out for it
    assert [u.symbol for u in unled.units] == ["orders.Order.Total", "orders.Order", "ledger.Balance"]
    # with room left, the type comes right after its method
    assert [u.symbol for u in roomy.units] == [
        "orders.Order.Total",
        "orders.Order",
        "ledger.Balance",
        "orders.NewOrder",
    ]


async def test_a_long_unit_the_leading_units_leave_no_room_for_whole_comes_as_its_matched_part(
    search_world: SearchWorld,
) -> None:
    assemble = triage_chain().steps[-1]
    async with search_world.code_search() as code_search:
        ctx = ChainContext(call_tool=code_search.call)
        small = [await _symbol(code_search.call, n) for n in ("orders.Order.Total", "ledger.Balance")]
        got = await code_search.call("get_symbol", {"repo": REPO, "symbol": "ledger.Reconcile"})
        parts = [ContextUnit(**p, split=True) for p in (got.structured or {})["units"]]
        budget = sum(count_tokens(p.code) for p in parts)  # what the chain's share check counts for the whole

        async def context(units: list[ContextUnit]) -> TriageResult:
            settings = TriageSettings(budget=budget, adr_share=0, include_types=False, whole_share=1)
            data = TriageInput(ticket=TicketText(key="SHOP-21", title="reconcile"), repo=REPO, settings=settings)
            plan = Plan(input=data, facts=TicketFacts(), queries=[])
            result = await assemble.run(Candidates(plan=plan, units=units, lead=len(units), adrs=[]), ctx)
            assert isinstance(result, TriageResult)
            return result

        alone = await context([parts[2]])
        found = await context([*small, parts[2]])
    # the whole fits the budget alone, but not after the two small units
    assert budget - sum(u.tokens for u in small) < alone.tokens <= budget
    assert [(u.symbol, u.part) for u in found.units] == [
        ("orders.Order.Total", False),
        ("ledger.Balance", False),
        ("ledger.Reconcile", True),
    ]
    assert found.units[2].code == parts[2].code and found.tokens <= budget
    assert [(u.symbol, u.part, u.start_line) for u in alone.units] == [("ledger.Reconcile", False, 4)]
