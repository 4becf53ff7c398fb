"""The GitHub fake's repository and git data operations, and the registry of all operations.

Each returns (status, payload); payloads are built with `contract().shape(...)`, so every field
GitHub requires is present, and the fields the fake models carry its state.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .contract import contract

if TYPE_CHECKING:
    from tests.fakes.github_fake import FakeGitHub, Repo

Handler = Callable[["FakeGitHub", "Repo", dict[str, str], dict[str, str], Any], tuple[int, Any]]
HANDLERS: dict[str, Handler] = {}


def op(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


def _err(status: int, message: str, **extra: Any) -> Exception:
    from tests.fakes.github_fake import HttpError

    return HttpError(status, message, **extra)


def _url(fake: FakeGitHub, repo: Repo, tail: str = "") -> str:
    return f"{fake.base_url}/repos/{repo.full_name}{tail}"


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10_000_000, "type": "User", "site_admin": False}


def _repo_shape(fake: FakeGitHub, repo: Repo, schema: str) -> Any:
    values = {
        "id": 1,
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": _user(repo.owner),
        "private": True,
        "url": _url(fake, repo),
        "html_url": f"https://github.example/{repo.full_name}",
        "default_branch": repo.default_branch,
    }
    return contract().shape(schema, values)


def _ref_shape(fake: FakeGitHub, repo: Repo, ref: str) -> Any:
    sha = repo.refs[ref]
    return contract().shape(
        "git-ref",
        {
            "ref": ref,
            "url": _url(fake, repo, f"/git/{ref}"),
            "object": {"type": "commit", "sha": sha, "url": _url(fake, repo, f"/git/commits/{sha}")},
        },
    )


def _commit_shape(fake: FakeGitHub, repo: Repo, sha: str) -> Any:
    c = repo.commits[sha]
    return contract().shape(
        "git-commit",
        {
            "sha": sha,
            "url": _url(fake, repo, f"/git/commits/{sha}"),
            "author": c["author"],
            "committer": c.get("committer", c["author"]),
            "message": c["message"],
            "tree": {"sha": c["tree"], "url": _url(fake, repo, f"/git/trees/{c['tree']}")},
            "parents": [{"sha": p, "url": _url(fake, repo, f"/git/commits/{p}"), "html_url": ""} for p in c["parents"]],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        },
    )


def _tree_shape(fake: FakeGitHub, repo: Repo, sha: str) -> Any:
    entries = [
        {"path": p, "mode": mode, "type": "blob", "sha": blob, "size": len(repo.blobs[blob])}
        for p, (mode, blob) in sorted(repo.trees[sha].items())
    ]
    return contract().shape(
        "git-tree", {"sha": sha, "url": _url(fake, repo, f"/git/trees/{sha}"), "tree": entries, "truncated": False}
    )


@op("repos/get")
def get_repo(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    return 200, _repo_shape(fake, repo, "full-repository")


@op("repos/get-branch")
def get_branch(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    ref = f"refs/heads/{params['branch']}"
    if ref not in repo.refs:
        raise _err(404, "Branch not found")
    sha = repo.refs[ref]
    c = repo.commits[sha]
    commit = {
        "sha": sha,
        "url": _url(fake, repo, f"/commits/{sha}"),
        "commit": {
            "author": c["author"],
            "committer": c["author"],
            "message": c["message"],
            "comment_count": 0,
            "tree": {"sha": c["tree"], "url": ""},
            "url": "",
        },
        "author": {},
        "committer": {},
        "parents": [],
    }
    protected = params["branch"] == repo.default_branch and repo.required_reviews is not None
    return 200, contract().shape(
        "branch-with-protection",
        {
            "name": params["branch"],
            "commit": commit,
            "protected": protected,
            "protection": {"enabled": protected},
            "protection_url": _url(fake, repo, f"/branches/{params['branch']}/protection"),
        },
    )


@op("repos/get-branch-protection")
def get_protection(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    if not repo.protection_readable:
        # A fine-grained token without Administration: read (GitHub's answer; not a documented status here).
        raise _err(403, "Resource not accessible by personal access token")
    if params["branch"] != repo.default_branch or repo.required_reviews is None:
        raise _err(404, "Branch not protected")
    reviews = {
        "url": "",
        "required_approving_review_count": repo.required_reviews,
        "dismiss_stale_reviews": False,
        "require_code_owner_reviews": False,
    }
    return 200, contract().shape("branch-protection", {"url": "", "required_pull_request_reviews": reviews})


@op("repos/get-branch-rules")
def get_rules(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    if params["branch"] != repo.default_branch or repo.ruleset_reviews is None:
        return 200, []
    parameters = {
        "required_approving_review_count": repo.ruleset_reviews,
        "dismiss_stale_reviews_on_push": False,
        "require_code_owner_review": False,
        "require_last_push_approval": False,
        "required_review_thread_resolution": False,
    }
    rule = {
        "type": "pull_request",
        "parameters": parameters,
        "ruleset_source_type": "Repository",
        "ruleset_source": repo.full_name,
        "ruleset_id": 1,
    }
    return 200, [contract().shape("repository-rule-pull-request", rule)]


@op("git/get-ref")
def get_ref(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    ref = f"refs/{params['ref']}"
    if ref not in repo.refs:
        raise _err(404, "Not Found")
    return 200, _ref_shape(fake, repo, ref)


@op("git/list-matching-refs")
def matching_refs(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    prefix = f"refs/{params['ref']}"
    return 200, [_ref_shape(fake, repo, r) for r in sorted(repo.refs) if r.startswith(prefix)]


@op("git/create-ref")
def create_ref(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    if body["ref"] in repo.refs:
        raise _err(422, "Reference already exists")
    if body["sha"] not in repo.commits:
        raise _err(422, "Object does not exist")
    fake.record(repo, body["ref"], None, body["sha"])
    repo.refs[body["ref"]] = body["sha"]
    return 201, _ref_shape(fake, repo, body["ref"])


@op("git/update-ref")
def update_ref(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    ref = f"refs/{params['ref']}"
    if ref not in repo.refs or body["sha"] not in repo.commits:
        raise _err(422, "Reference does not exist")
    if not body.get("force") and repo.refs[ref] not in fake._ancestors(repo, body["sha"]):
        raise _err(422, "Update is not a fast forward")
    fake.record(repo, ref, repo.refs[ref], body["sha"])
    repo.refs[ref] = body["sha"]
    return 200, _ref_shape(fake, repo, ref)


@op("git/delete-ref")
def delete_ref(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    before = repo.refs.pop(f"refs/{params['ref']}", None)
    if before is None:
        raise _err(422, "Reference does not exist")
    fake.record(repo, f"refs/{params['ref']}", before, None)
    return 204, None


@op("git/get-commit")
def get_commit(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    if params["commit_sha"] not in repo.commits:
        raise _err(404, "Not Found")
    return 200, _commit_shape(fake, repo, params["commit_sha"])


@op("git/create-commit")
def create_commit(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    if body["tree"] not in repo.trees or any(p not in repo.commits for p in body["parents"]):
        raise _err(422, "Tree SHA does not exist")
    author = {**body["author"], "date": "2026-01-01T00:00:00Z"}
    committer = {**body.get("committer", body["author"]), "date": "2026-01-01T00:00:00Z"}
    commit = {
        "message": body["message"],
        "tree": body["tree"],
        "parents": body["parents"],
        "author": author,
        "committer": committer,
        "n": fake.next_id(),
    }
    return 201, _commit_shape(fake, repo, fake._commit(repo, commit))


@op("git/get-tree")
def get_tree(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    if params["tree_sha"] not in repo.trees:
        raise _err(404, "Not Found")
    return 200, _tree_shape(fake, repo, params["tree_sha"])


@op("git/create-tree")
def create_tree(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    entries = dict(repo.trees.get(body.get("base_tree", ""), {}))
    for e in body["tree"]:
        if e.get("sha") is None and "content" not in e:
            entries.pop(e["path"], None)
        elif "content" in e:
            entries[e["path"]] = (e["mode"], fake._blob(repo, e["content"].encode()))
        elif e["sha"] not in repo.blobs:
            raise _err(422, "tree.sha is not a valid blob")
        else:
            entries[e["path"]] = (e["mode"], e["sha"])
    return 201, _tree_shape(fake, repo, fake._tree(repo, entries))


@op("git/get-blob")
def get_blob(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    data = repo.blobs.get(params["file_sha"])
    if data is None:
        raise _err(404, "Not Found")
    return 200, contract().shape(
        "blob",
        {
            "content": base64.b64encode(data).decode(),
            "encoding": "base64",
            "url": "",
            "sha": params["file_sha"],
            "size": len(data),
            "node_id": "B",
        },
    )


@op("git/create-blob")
def create_blob(fake, repo, params, query, body):  # type: ignore[no-untyped-def]
    data = base64.b64decode(body["content"]) if body.get("encoding") == "base64" else body["content"].encode()
    sha = fake._blob(repo, data)
    return 201, contract().shape("short-blob", {"url": _url(fake, repo, f"/git/blobs/{sha}"), "sha": sha})
