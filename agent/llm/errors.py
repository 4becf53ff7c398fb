"""Every way a model call fails, as one tree.

LLMError
 ├── ProviderError            the provider answered, but not with a usable completion
 │    ├── RetryableError      429, 5xx, timeouts, connection resets (retried with backoff)
 │    │    └── RateLimited    429 with an optional Retry-After (honoured by the retry wrapper)
 │    └── MalformedResponse   a 2xx whose body is not the provider's documented shape
 ├── SpendRefused             billed attempts leave no room in a budget for another: the call stops
 ├── LiveModelRefused         a live provider under tests without `enable_live_requests()`
 ├── UnpricedModel            no price in policies/budgets.yaml and policy does not allow it
 ├── CassetteMismatch         the replayed request differs from the recording
 └── ScriptExhausted          a scripted model ran out of responses
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.llm.types import Usage

MIN_SECRET_CHARS = 8
"""A shorter value is not looked for: it would match ordinary text (a test's key `k`)."""
_SECRETS: set[str] = set()
_LOCK = threading.Lock()


def remember_secret(value: str | None) -> None:
    """Keep `value` (a configured API key) out of every error message from now on (`without_secrets`)."""
    if value and len(value) >= MIN_SECRET_CHARS:
        with _LOCK:
            _SECRETS.add(value)


def without_secrets(text: str, extra: tuple[str, ...] = ()) -> str:
    """`text` with every remembered secret value, and each of `extra`, replaced by `[secret removed]`: a provider
    or a proxy can quote the key it was sent in its error, which is saved and published with the run.

    A value spelled otherwise is found too: with HTML character references (`&#97;`, which a Markdown page shows
    as the letter) or invisible characters inside (a zero-width space); `text` is then returned in that plain
    spelling, so no encoded copy of the key is left."""
    with _LOCK:
        values = sorted({*_SECRETS, *(v for v in extra if len(v) >= MIN_SECRET_CHARS)}, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, "[secret removed]")
    plain = _plain_spelling(text) if values else text
    if plain != text and any(value in plain for value in values):
        text = plain
        for value in values:
            text = text.replace(value, "[secret removed]")
    return text


# What a terminal or a renderer acts on instead of showing: C0 controls but tab and newline (ESC starts colour, title,
# screen-clearing and hyperlink sequences), DEL, C1 (CSI, OSC as one character), and the bidirectional embeddings,
# overrides and isolates that reorder what is shown.
# A whole CSI or OSC sequence (ESC [ or CSI … final byte; ESC ] or OSC … BEL, ST or ESC \) goes at once, so no
# half of it is shown.
_CONTROLS = re.compile(
    "(?:\x1b\\[|\x9b)[0-?]*[ -/]*[@-~]?|(?:\x1b\\]|\x9d)[^\x07\x1b\x9c]{0,4096}(?:\x07|\x1b\\\\|\x9c)?"
    "|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
)


def without_controls(text: str) -> str:
    """`text` without control characters (tab and newline kept), terminal escape sequences or bidirectional
    controls: what someone else wrote (the model, a provider, a test's output) as it may be shown on a terminal
    or published, acting on neither."""
    return _CONTROLS.sub("", text)


def _plain_spelling(text: str) -> str:
    """`text` with HTML character references decoded (twice: `&amp;#97;`), control characters and terminal escape
    sequences (a NUL between each letter, as a UTF-16 body read as UTF-8 shows) and format characters (Unicode's
    Cf: zero-width spaces and joiners, soft hyphens, bidirectional marks) removed."""
    decoded = without_controls(html.unescape(html.unescape(text)))
    return "".join(ch for ch in decoded if unicodedata.category(ch) != "Cf")


class LLMError(Exception):
    """A model call's failure; its message never holds a configured secret (`remember_secret`). `billed` is what
    the provider charged for replies the call could not use (a malformed body that reported its usage), summed
    over the call's attempts by the gateway's retries: the run still pays for them."""

    billed: Usage | None = None

    def __init__(self, message: str) -> None:
        message = without_secrets(message)
        super().__init__(message)
        self.message = message


class ProviderError(LLMError):
    """The provider did not give a usable completion. `status` is the HTTP status it answered, if any;
    `unreachable` says no answer came at all (the connection failed)."""

    def __init__(self, message: str, *, status: int | None = None, unreachable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.unreachable = unreachable


class RetryableError(ProviderError):
    """Worth another try: 429, 5xx, timeouts, dropped connections."""


class RateLimited(RetryableError):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after_s = retry_after_s


class MalformedResponse(ProviderError):
    """A success status with a body that does not match the wire format; `billed`, the usage it reported."""

    def __init__(self, message: str, *, billed: Usage | None = None) -> None:
        super().__init__(message)
        self.billed = billed


class SpendRefused(LLMError):
    """A call's earlier attempts were billed (garbled replies that reported their usage), and another attempt's
    worst case no longer fits in a budget of the run or the day: the gateway stops retrying and falling back.
    `billed` is what the call's attempts were charged; the message says which budget."""

    def __init__(self, message: str, *, billed: Usage | None = None) -> None:
        super().__init__(message)
        self.billed = billed


class LiveModelRefused(LLMError):
    """A live provider was about to be called from a test run."""


class UnpricedModel(LLMError):
    """The model has no price and policy refuses unpriced models."""


class CassetteMismatch(LLMError):
    """ReplayModel: the request is not the one recorded at this position."""


class ScriptExhausted(LLMError):
    """ScriptedModel: more calls than scripted responses."""
