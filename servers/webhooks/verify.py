"""Signatures, checked over the raw body before anything parses it.

GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body, keyed by the webhook secret>`.
Jira Cloud (webhooks with a secret): `X-Hub-Signature: sha256=<hex>`, the same construction
(Atlassian documents "method=signature" with method sha256). Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr


def hasher(secret: SecretStr) -> hmac.HMAC:
    """An HMAC-SHA256 keyed by `secret`, to be fed the body chunk by chunk as it arrives."""
    return hmac.new(secret.get_secret_value().encode(), digestmod=hashlib.sha256)


def signature(secret: SecretStr, body: bytes) -> str:
    """The header value a sender with `secret` puts on `body`."""
    mac = hasher(secret)
    mac.update(body)
    return "sha256=" + mac.hexdigest()


def matches(mac: hmac.HMAC, header: str | None) -> bool:
    """True when `header` is the signature `mac` (fed the whole body) computed (False if missing or malformed)."""
    if not header or not header.startswith("sha256="):
        return False
    try:
        given = header.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given, ("sha256=" + mac.hexdigest()).encode("ascii"))


def valid(secret: SecretStr, body: bytes, header: str | None) -> bool:
    """True when `header` is `body`'s signature under `secret` (False for a missing or malformed header)."""
    mac = hasher(secret)
    mac.update(body)
    return matches(mac, header)
