"""The GitHub fake's pull request and issue operations (see handlers.py for the registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .contract import contract
from .handlers import _err, _url, _user, op

if TYPE_CHECKING:
    from tests.fakes.github_fake import FakeGitHub, Repo


def _pull_shape(fake: FakeGitHub, repo: Repo, number: int, schema: str = "pull-request") -> Any:
    p = repo.pulls[number]
    head_sha = repo.refs.get(f"refs/heads/{p['head']}", p["head_sha"])
    side = lambda ref, sha: {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": sha, "user": _user(repo.owner)}  # noqa: E731
    return contract().shape(
        schema,
        {
            "id": number,
            "number": number,
            "url": _url(fake, repo, f"/pulls/{number}"),
            "html_url": f"https://github.example/{repo.full_name}/pull/{number}",
            "issue_url": _url(fake, repo, f"/issues/{number}"),
            "state": p["state"],
            "title": p["title"],
            "body": p["body"],
            "draft": p["draft"],
            "merged": False,
            "user": _user(p.get("user", fake.default_login)),
            "labels": [
                {
                    "id": i + 1,
                    "node_id": "L",
                    "url": "",
                    "name": n,
                    "description": None,
                    "color": "ededed",
                    "default": False,
                }
                for i, n in enumerate(p["labels"])
            ],
            "assignees": [_user(a) for a in p["assignees"]],
            "requested_reviewers": [_user(r) for r in p["reviewers"]],
            "requested_teams": [contract().shape("team", {"slug": t, "name": t, "id": 7}) for t in p["teams"]],
            "head": side(p["head"], head_sha),
            "base": side(p["base"], repo.refs[f"refs/heads/{p['base']}"]),
        },
    )


def _pull(repo: Repo, params: dict[str, str], key: str = "pull_number") -> int:
    number = int(params[key])
    if number not in repo.pulls:
        raise _err(404, "Not Found")
    return number


@op("pulls/list")
def list_pulls(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    state, head = query.get("state", "open"), query.get("head")
    found = [
        n
        for n, p in sorted(repo.pulls.items())
        if (state == "all" or p["state"] == state) and (head is None or head == f"{repo.owner}:{p['head']}")
    ]
    return 200, [_pull_shape(fake, repo, n, "pull-request-simple") for n in found]


@op("pulls/create")
def create_pull(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    head = body["head"].split(":", 1)[-1]
    if f"refs/heads/{head}" not in repo.refs or f"refs/heads/{body['base']}" not in repo.refs:
        raise _err(422, "Validation Failed", errors=[{"resource": "PullRequest", "field": "head", "code": "invalid"}])
    if any(p["head"] == head and p["state"] == "open" for p in repo.pulls.values()):
        message = f"A pull request already exists for {repo.owner}:{head}."
        raise _err(422, "Validation Failed", errors=[{"resource": "PullRequest", "code": "custom", "message": message}])
    number = repo.next_number()
    repo.pulls[number] = {
        "state": "open",
        "title": body["title"],
        "body": body.get("body"),
        "draft": body.get("draft", False),
        "head": head,
        "base": body["base"],
        "head_sha": repo.refs[f"refs/heads/{head}"],
        "labels": [],
        "assignees": [],
        "reviewers": [],
        "teams": [],
        "user": fake.actor,
    }
    return 201, _pull_shape(fake, repo, number)


@op("pulls/get")
def get_pull(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    return 200, _pull_shape(fake, repo, _pull(repo, params))


@op("pulls/update")
def update_pull(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    number = _pull(repo, params)
    repo.pulls[number].update({k: body[k] for k in ("title", "body", "state") if k in body})
    return 200, _pull_shape(fake, repo, number)


@op("pulls/request-reviewers")
def request_reviewers(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    p = repo.pulls[_pull(repo, params)]
    p["reviewers"] = sorted(set(p["reviewers"]) | set(body.get("reviewers", [])))
    p["teams"] = sorted(set(p["teams"]) | set(body.get("team_reviewers", [])))
    return 201, _pull_shape(fake, repo, int(params["pull_number"]), "pull-request-simple")


def _issue_shape(fake: FakeGitHub, repo: Repo, number: int) -> Any:
    """GET /issues/{n}: an issue, or a pull request seen as an issue (then with its `pull_request` links)."""
    html = f"https://github.example/{repo.full_name}"
    if number in repo.pulls:
        p = repo.pulls[number]
        values: dict[str, Any] = {"title": p["title"], "state": p["state"], "user": _user(p.get("user", fake.actor))}
        values["pull_request"] = {
            "url": _url(fake, repo, f"/pulls/{number}"),
            "html_url": f"{html}/pull/{number}",
            "diff_url": f"{html}/pull/{number}.diff",
            "patch_url": f"{html}/pull/{number}.patch",
            "merged_at": None,
        }
    elif number in repo.issues:
        i = repo.issues[number]
        values = {"title": i["title"], "state": i["state"], "user": _user(i["user"]), "locked": i["locked"]}
        values["comments"] = sum(1 for c in repo.comments if c["number"] == number)
        values["html_url"] = f"{html}/issues/{number}"
        values["body"] = i["body"]
        labels = enumerate(i["labels"], start=1)
        values["labels"] = [{"id": n, "name": name, "url": _url(fake, repo, f"/labels/{name}")} for n, name in labels]
    else:
        raise _err(404, "Not Found")
    return contract().shape(
        "issue",
        {"id": number, "number": number, "url": _url(fake, repo, f"/issues/{number}"), "body": None, **values},
    )


@op("issues/get")
def get_issue(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    return 200, _issue_shape(fake, repo, int(params["issue_number"]))


def _comment_shape(fake: FakeGitHub, repo: Repo, comment: dict[str, Any]) -> Any:
    number, cid = comment["number"], comment["id"]
    kind = "pull" if number in repo.pulls else "issues"
    return contract().shape(
        "issue-comment",
        {
            "id": cid,
            "url": _url(fake, repo, f"/issues/comments/{cid}"),
            "html_url": f"https://github.example/{repo.full_name}/{kind}/{number}#issuecomment-{cid}",
            "body": comment["body"],
            "user": _user(comment["user"]),
            "created_at": comment["created_at"],
            "updated_at": comment["created_at"],
            "issue_url": _url(fake, repo, f"/issues/{number}"),
        },
    )


@op("issues/create-comment")
def create_comment(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    number = int(params["issue_number"])
    if number in repo.issues:
        if repo.issues[number]["locked"]:
            raise _err(403, "Unable to create comment because issue is locked.")
    else:
        _pull(repo, params, "issue_number")
    return 201, _comment_shape(fake, repo, fake.record_comment(repo, number, body["body"], fake.actor))


@op("issues/list-comments")
def list_comments(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    """Oldest first, `per_page` (30 by default, 100 at most) from `page` (1-based), as GitHub pages them."""
    number = int(params["issue_number"])
    if number not in repo.issues and number not in repo.pulls:
        raise _err(404, "Not Found")
    per_page = min(int(query.get("per_page", "30")), 100)
    start = (max(int(query.get("page", "1")), 1) - 1) * per_page
    found = [c for c in repo.comments if c["number"] == number][start : start + per_page]
    return 200, [_comment_shape(fake, repo, c) for c in found]


@op("issues/add-assignees")
def add_assignees(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    number = _pull(repo, params, "issue_number")
    p = repo.pulls[number]
    p["assignees"] = sorted(set(p["assignees"]) | set(body.get("assignees", [])))
    return 201, contract().shape(
        "issue",
        {
            "id": number,
            "number": number,
            "title": p["title"],
            "state": p["state"],
            "url": _url(fake, repo, f"/issues/{number}"),
            "assignees": [_user(a) for a in p["assignees"]],
        },
    )


@op("issues/add-labels")
def add_labels(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    p = repo.pulls[_pull(repo, params, "issue_number")]
    names = body["labels"] if isinstance(body, dict) else body
    p["labels"] = sorted(set(p["labels"]) | {n if isinstance(n, str) else n["name"] for n in names})
    return 200, [
        contract().shape(
            "label", {"id": i + 1, "name": n, "url": "", "color": "ededed", "default": False, "node_id": "L"}
        )
        for i, n in enumerate(p["labels"])
    ]
