"""Bearer tokens: one audience per server, expiry, signature; refusal is `None` (answered 401)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from servers.common.auth import AudienceTokenVerifier, mint_token

KEY = SecretStr("k" * 40)


async def test_token_for_this_server_is_accepted_with_its_subject() -> None:
    token = mint_token(KEY, subject="agent", server="jira-read")
    access = await AudienceTokenVerifier(KEY, server="jira-read").verify_token(token)
    assert access is not None
    assert access.subject == "agent"


async def test_token_for_another_server_is_refused() -> None:
    token = mint_token(KEY, subject="agent", server="github-pr")
    assert await AudienceTokenVerifier(KEY, server="jira-read").verify_token(token) is None


async def test_expired_token_is_refused() -> None:
    token = mint_token(KEY, subject="agent", server="jira-read", ttl_s=-10)
    assert await AudienceTokenVerifier(KEY, server="jira-read").verify_token(token) is None


async def test_token_signed_with_another_key_is_refused() -> None:
    token = mint_token(SecretStr("x" * 40), subject="agent", server="jira-read")
    assert await AudienceTokenVerifier(KEY, server="jira-read").verify_token(token) is None


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."])
async def test_garbage_is_refused(garbage: str) -> None:
    assert await AudienceTokenVerifier(KEY, server="jira-read").verify_token(garbage) is None


def test_short_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="32"):
        AudienceTokenVerifier(SecretStr("short"), server="jira-read")
