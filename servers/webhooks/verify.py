"""Signatures, checked over the raw body before anything parses it.

GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body, keyed by the webhook secret>`.
Jira Cloud (webhooks with a secret): `X-Hub-Signature: sha256=<hex>`, the same construction
(Atlassian documents "method=signature" with method sha256). Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr


def signature(secret: SecretStr, body: bytes) -> str:
    """The header value a sender with `secret` puts on `body`."""
    return "sha256=" + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()


def valid(secret: SecretStr, body: bytes, header: str | None) -> bool:
    """True when `header` is `body`'s signature under `secret` (False for a missing or malformed header)."""
    if not header or not header.startswith("sha256="):
        return False
    try:
        given = header.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given, signature(secret, body).encode("ascii"))
