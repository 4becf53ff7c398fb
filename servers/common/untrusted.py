"""Text written by whoever can file a ticket or an issue, as the servers hand it to the agent.

jira-read (Jira tickets) and github-pr (GitHub issues) return their authors' words the same way: an
`UntrustedText` whose `trust` field says it is data, never instructions (the agent fences it),
stripped of invisible characters (`servers.common.textnorm.strip_invisible`), with every pasted
credential replaced by a marker (`credentials.redact_credentials`: the text goes on to a
model's provider), and cut at a line boundary past a size limit, with an explicit marker.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from credentials import redact_credentials
from servers.common.errors import InvalidInput
from servers.common.textnorm import strip_invisible

MAX_RAW_CHARS = 2_000_000  # refused before any work: no tracker stores more in one field


class UntrustedText(BaseModel):
    """Text written by a ticket's author: data, never instructions. The agent fences it."""

    model_config = ConfigDict(frozen=True)

    trust: Literal["untrusted"] = "untrusted"
    text: str
    truncated: bool = False


# Text past the size limit is dropped; credentials are looked for in the limit plus this margin, so one that
# straddles the cut (a private key is a few kilobytes) is still seen whole and removed.
REDACT_MARGIN = 16_384


def truncate(text: str, limit: int, *, dropped: int = 0) -> tuple[str, bool]:
    """`text` cut at the last line break before `limit` (or at `limit`), with a marker counting what was cut
    (plus `dropped` characters already cut off its end); and whether anything was."""
    if len(text) <= limit and not dropped:
        return text, False
    cut = len(text)
    if len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = limit
    gone = len(text) - cut + dropped
    return text[:cut].rstrip() + f"\n\n[… truncated {gone} characters]", True


def clean(text: str | None, limit: int) -> UntrustedText:
    """Plain or Markdown text (a GitHub issue's body, a converted Jira field) as `UntrustedText`.

    Raises:
        InvalidInput: longer than MAX_RAW_CHARS.
    """
    raw = text or ""
    if len(raw) > MAX_RAW_CHARS:
        raise InvalidInput(f"ticket text is longer than {MAX_RAW_CHARS} characters; it cannot be shown")
    plain = strip_invisible(raw).strip()
    window = plain[: limit + REDACT_MARGIN]
    kept, cut = truncate(redact_credentials(window).strip(), limit, dropped=len(plain) - len(window))
    return UntrustedText(text=kept, truncated=cut)
