"""The triage chain sends code-search the whole ticket (up to the tool's limit, cut on a line), not a prefix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.chains.core import ChainContext
from agent.chains.extract import TicketText
from agent.chains.triage import MAX_QUERY_CHARS, clip_query, triage
from agent.servers import ToolOutcome

from .conftest import REPO, SearchWorld

# a long real-looking ticket: the template and log lines come first, the telling part last
PREAMBLE = "### What version are you using?\n\nv1.2.0\n\n### Logs\n\n" + "".join(
    f'2024-05-0{i % 9 + 1}T10:00:00Z level=info msg="nightly job step {i} done" step={i}\n' for i in range(60)
)
LONG = TicketText(
    key="SHOP-12",
    title="Reconcile leaves balances off by the fee",
    body=PREAMBLE + "\n### What happened?\n\nledger.Reconcile applies the rate but Balance is off by the fee.\n",
)


class Recorder:
    """Passes each call through to code-search and keeps its arguments."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, tool: str, arguments: Mapping[str, Any]) -> ToolOutcome:
        self.calls.append((tool, dict(arguments)))
        return await self._call(tool, arguments)


async def test_the_whole_ticket_is_the_first_query_and_the_adr_query(search_world: SearchWorld) -> None:
    assert 1500 < len(LONG.text) < MAX_QUERY_CHARS  # longer than a prefix cut would have kept
    async with search_world.code_search() as code_search:
        recorder = Recorder(code_search.call)
        result = await triage(LONG, ChainContext(call_tool=recorder), repo=REPO, budget=3000)
    searches = [args["query"] for tool, args in recorder.calls if tool == "search_code"]
    assert searches[0] == LONG.text  # the ticket query
    assert searches[-1] == LONG.text  # the ADR query
    assert result.queries[0].text == LONG.text


async def test_a_ticket_past_the_limit_is_cut_on_a_line_and_accepted(search_world: SearchWorld) -> None:
    huge = TicketText(key="SHOP-13", title=LONG.title, body=PREAMBLE * 4 + "ledger.Reconcile is off by the fee\n")
    assert len(huge.text) > MAX_QUERY_CHARS
    async with search_world.code_search() as code_search:
        schema = code_search.tools["search_code"][1].input_schema["properties"]["query"]
        recorder = Recorder(code_search.call)
        result = await triage(huge, ChainContext(call_tool=recorder), repo=REPO, budget=3000)
    assert schema["maxLength"] == MAX_QUERY_CHARS  # the chain uses exactly what the tool accepts
    first = next(args["query"] for tool, args in recorder.calls if tool == "search_code")
    assert first == clip_query(huge.text) and len(first) <= MAX_QUERY_CHARS
    assert huge.text.startswith(first + "\n")  # whole lines
    assert result.units


@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=80), st.integers(min_value=4, max_value=40))
def test_clip_keeps_whole_lines_within_the_limit(text: str, limit: int) -> None:
    clipped = clip_query(text, limit)
    assert len(clipped) <= limit
    assert text.strip().startswith(clipped)
    if len(text.strip()) <= limit:
        assert clipped == text.strip()
    else:
        rest = text.strip()[len(clipped) :]
        # cut at a line end, unless no line ended in the second half of the limit
        assert rest.lstrip(" ").startswith("\n") or "\n" not in text.strip()[limit // 2 + 1 : limit + 1]
