"""Bounds on what one GitHub answer may cost, below PyGithub: body size, redirects, and the call's time.

PyGithub reads every body whole (`response.text`), follows a 301 by recursing without a limit, and
repeats a 202 on a GET every 2 s for ever. It builds its own `requests` sessions, one per connection
class, so `github.connect` gives the client's `Requester` connection classes whose session carries
`GitHubAdapter` (this module does not import PyGithub):

- what `servers.common.bounded_http.BoundedAdapter` bounds: the body size (`BodyTooLarge`), and the
  call's time through its `ReadBudget` (`CallOver`);
- at most `MAX_REDIRECTS` redirects per budget (`requests.TooManyRedirects`), and at most
  `MAX_ACCEPTED` "202 Accepted, try again" answers (`NotReady`).

Budgets nest: `Calls` opens one per GitHub request (its `deadline_s`), the server one per tool call.
"""

from __future__ import annotations

from typing import Any

import requests

from servers.common.bounded_http import BoundedAdapter, ReadBudget

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_REDIRECTS = 10
MAX_ACCEPTED = 5  # PyGithub waits 2 s before repeating a GET answered 202


class NotReady(requests.exceptions.RequestException):
    """GitHub answered 202 ("still computing") to more than `MAX_ACCEPTED` GETs of one call."""


class GitHubAdapter(BoundedAdapter):
    """`BoundedAdapter` with at most `MAX_REDIRECTS` redirects and `MAX_ACCEPTED` answers 202 per call."""

    def __init__(self, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, **kwargs: Any) -> None:
        super().__init__(max_body_bytes=max_body_bytes, **kwargs)

    def check_response(self, response: requests.Response, budget: ReadBudget | None) -> None:
        """Raises:
        requests.TooManyRedirects: more than `MAX_REDIRECTS` redirects in this call.
        NotReady: more than `MAX_ACCEPTED` answers 202 in this call.
        """
        if budget is None:
            return
        if response.is_redirect:
            budget.redirects += 1
            if budget.redirects > MAX_REDIRECTS:
                raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")
        if response.status_code == 202:
            budget.accepted += 1
            if budget.accepted > MAX_ACCEPTED:
                raise NotReady(f"more than {MAX_ACCEPTED} answers 202")
