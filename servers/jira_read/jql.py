"""Confining a caller's JQL to the Jira projects policy allows (the rule itself: `jqlscope`).

The server never runs the caller's JQL as given: it runs `project in (...) AND (<condition>) [ORDER BY ...]`
and refuses anything that could step outside the parentheses, as an InvalidInput for the caller.
"""

from __future__ import annotations

from collections.abc import Iterable

import jqlscope
from jqlscope import MAX_DEPTH, MAX_JQL
from servers.common.errors import InvalidInput

__all__ = ["MAX_DEPTH", "MAX_JQL", "restrict"]


def restrict(jql: str, projects: Iterable[str]) -> str:
    """Wrap `jql` so that it can only match issues in `projects`.

    Raises:
        InvalidInput: the JQL is too long, holds control characters, or could escape the wrapping.
    """
    try:
        return jqlscope.restrict(jql, projects)
    except jqlscope.JQLError as exc:
        raise InvalidInput(str(exc)) from None
