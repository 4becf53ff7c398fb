"""Cost from the provider's own usage fields, priced from policies/budgets.yaml."""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.llm.errors import UnpricedModel
from agent.llm.types import Usage
from agent.policy import Budgets, Price

_SNAPSHOT = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}")  # gpt-4o-2024-08-06, claude-3-5-sonnet-20241022


def is_snapshot_of(reported: str, name: str) -> bool:
    """Whether `reported` is `name` or a dated snapshot of it (`gpt-4o-2024-08-06` of `gpt-4o`; not `gpt-4o-mini`)."""
    dated = reported.startswith(name + "-") and _SNAPSHOT.fullmatch(reported[len(name) + 1 :]) is not None
    return reported == name or dated


class PriceBook:
    def __init__(self, budgets: Budgets) -> None:
        self._prices = budgets.prices
        self._allow_unpriced = budgets.allow_unpriced

    def price(self, model: str) -> Price:
        """The model's price; an unpriced model is free only when policy allows it.

        Raises:
            UnpricedModel: no price and `allow_unpriced` is false.
        """
        found = self._prices.get(model)
        if found is None:
            # a dated snapshot ("gpt-4o-2024-08-06") is priced like its family
            for name in sorted(self._prices, key=len, reverse=True):
                if model.startswith(name + "-"):
                    return self._prices[name]
            if not self._allow_unpriced:
                raise UnpricedModel(f"model {model!r} has no price in budgets.yaml and unpriced models are not allowed")
            return Price(input=0, output=0)
        return found

    def cost(self, model: str, usage: Usage) -> float:
        p = self.price(model)
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_price = p.cached_input if p.cached_input is not None else p.input
        return ((usage.input_tokens - cached) * p.input + cached * cached_price + usage.output_tokens * p.output) / 1e6

    def worst_case(self, model: str, prompt_tokens: int, max_tokens: int) -> float:
        """The most one call can cost: every prompt token uncached, every output token used.

        Uncached is the dearest a prompt token can be: `Price` refuses a cached_input above input.
        """
        p = self.price(model)
        return (prompt_tokens * p.input + max_tokens * p.output) / 1e6

    def charge(self, reported: str, configured: Sequence[str], usage: Usage) -> float:
        """What a call answered as model `reported` costs, when the run configured the models `configured` (a
        fallback chain's). The provider names the model in its answer, so it could pick a cheaper price than
        the call's: `reported` is priced only when it is one of `configured` or a dated snapshot of one;
        otherwise the call is charged at the dearest of `configured`.

        Raises:
            UnpricedModel: as `price`, for a configured model.
        """
        if any(is_snapshot_of(reported, name) for name in configured):
            try:
                return self.cost(reported, usage)
            except UnpricedModel:
                pass
        return max(self.cost(name, usage) for name in configured)
