"""The GitHub fake's identities and repository activity: who created, pushed to, force-pushed or deleted which ref.

`GET /user` answers with the login of the request's token (`FakeGitHub.logins`); a login in
`FakeGitHub.app_logins` is a GitHub App installation, which GitHub refuses there (403).

GitHub lists activity newest first; `ref`, `actor` and `activity_type` filter it, `per_page` bounds a
page (the fake serves one page; github-pr never needs more than the newest page and the creation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .contract import contract
from .handlers import _err, _user, op

if TYPE_CHECKING:
    from tests.fakes.github_fake import FakeGitHub, Repo


@op("repos/list-activities")
def list_activities(fake: FakeGitHub, repo: Repo, params: dict[str, str], query: dict[str, str], body: Any):
    ref = query.get("ref")
    if ref is not None and not ref.startswith("refs/"):
        ref = f"refs/heads/{ref}"
    entries = [
        (i, a)
        for i, a in enumerate(repo.activity)
        if (ref is None or a["ref"] == ref)
        and ("actor" not in query or a["actor"] == query["actor"])
        and ("activity_type" not in query or a["type"] == query["activity_type"])
    ]
    entries.reverse()  # newest first
    if query.get("direction") == "asc":
        entries.reverse()
    page = entries[: int(query.get("per_page", "30"))]
    return 200, [
        contract().shape(
            "activity",
            {
                "id": i + 1,
                "node_id": f"A{i + 1}",
                "before": a["before"],
                "after": a["after"],
                "ref": a["ref"],
                "timestamp": "2026-01-01T00:00:00Z",
                "activity_type": a["type"],
                "actor": _user(a["actor"]),
            },
        )
        for i, a in page
    ]


@op("users/get-authenticated")
def authenticated_user(fake: FakeGitHub, repo: Repo | None, params: dict[str, str], query: dict[str, str], body: Any):
    if fake.actor in fake.app_logins:
        raise _err(403, "Resource not accessible by integration")
    return 200, contract().shape("private-user", {**_user(fake.actor), "user_view_type": "private"})
