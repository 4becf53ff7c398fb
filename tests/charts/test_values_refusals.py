"""Values that used to render something broken (a YAML error, a template crash, a container without limits,
a silently dropped field, a server that fails every call) are refused at install with a message naming the
setting; their working neighbours still render."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.charts.render import job_template, render

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (("webhooks.credentials.githubSecretKey=",), "/webhooks/credentials/githubSecretKey"),
        (("webhooks.credentials.jiraSecretKey=",), "/webhooks/credentials/jiraSecretKey"),
        (("agent.credentials.existingSecretKey=",), "/agent/credentials/existingSecretKey"),
        (("jiraRead.credentials.existingSecretKey=",), "/jiraRead/credentials/existingSecretKey"),
        (("githubPr.credentials.existingSecretKey=has space",), "/githubPr/credentials/existingSecretKey"),
        (("queue.redis.existingSecretKey=",), "/queue/redis/existingSecretKey"),
        (("webhooks.resources=null",), "resources"),
        (("agent.resources=null",), "resources"),
        (("queue.redis.resources=null",), "resources"),
        (("webhooks=null",), "webhooks"),
        (("index.storage=objectStore",), "/index/objectStore/uri"),
        (("networkPolicy.webhookIngressFrom[0].bogus=1",), "bogus"),
        (("networkPolicy.webhookIngressFrom[0].podSelector.matchLabelz.a=b",), "matchLabelz"),
        (("dispatcher.defaultRepo=a b",), "/dispatcher/defaultRepo"),
        (("dispatcher.defaultRepo=noslash",), "/dispatcher/defaultRepo"),
        (("jiraRead.backend=cloud",), "/jiraRead/url"),
        (("jiraRead.backend=datacenter", "jiraRead.url=not a url"), "/jiraRead/url"),
        (("jiraRead.backend=cloud", "jiraRead.url=https://acme.atlassian.net"), "/jiraRead/user"),
        (("codeSearch.embedder=openai",), "/codeSearch/openai/baseUrl"),
        (("codeSearch.embedder=static",), "/codeSearch/embedder"),
        # before, installed cleanly, and then every ticket's Job was refused (422: not a Secret name)
        (("agent.credentials.existingSecret=My_Secret",), "/agent/credentials/existingSecret"),
        (("githubPr.credentials.existingSecret=a..b",), "/githubPr/credentials/existingSecret"),
        (("policies.existingConfigMap=Policies",), "/policies/existingConfigMap"),
    ],
)
def test_values_that_cannot_work_are_refused_by_the_schema_naming_the_setting(
    sets: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(RuntimeError, match="schema") as refused:
        render(sets=sets)
    assert complaint in str(refused.value)


def test_an_ip_block_peer_cannot_also_select_pods() -> None:
    with pytest.raises(RuntimeError, match="schema"):
        render(
            set_json=(
                "networkPolicy.webhookIngressFrom="
                + json.dumps([{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {"matchLabels": {"a": "b"}}}]),
            )
        )


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (
            ("jiraRead.backend=datacenter", "jiraRead.url=https://jira.example"),
            "jiraRead.backend=datacenter needs its API token: jiraRead.credentials.existingSecret",
        ),
        (("githubPr.backend=github",), "githubPr.backend=github needs a token: githubPr.credentials.existingSecret"),
    ],
)
def test_a_real_backend_without_its_credential_is_refused_naming_the_values(
    sets: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(RuntimeError, match=complaint):
        render(sets=sets)


def env(manifests: list[dict[str, Any]], container: str) -> dict[str, Any]:
    spec = job_template(manifests)["spec"]["template"]["spec"]
    [c] = [c for c in [*spec["initContainers"], *spec["containers"]] if c["name"] == container]
    return {e["name"]: e.get("value") for e in c["env"]}


def test_real_backends_with_their_settings_and_credentials_render() -> None:
    jira = render(
        sets=(
            "jiraRead.backend=cloud",
            "jiraRead.url=https://acme.atlassian.net",
            "jiraRead.user=bot@acme.example",
            "jiraRead.credentials.existingSecret=jira",
        )
    )
    assert env(jira, "jira-read")["GORESOLVE_JIRA_READ_URL"] == "https://acme.atlassian.net"
    github = render(
        sets=("githubPr.backend=github", "githubPr.credentials.token=ghp_x", "dispatcher.defaultRepo=acme/svc")
    )
    assert env(github, "github-pr")["GORESOLVE_GITHUB_PR_BACKEND"] == "github"


def test_webhook_ingress_peers_render_as_given() -> None:
    peers = json.dumps(
        [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
                "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["nginx"]}]},
            },
            {"ipBlock": {"cidr": "203.0.113.0/24"}},
        ]
    )
    manifests = render(set_json=(f"networkPolicy.webhookIngressFrom={peers}",))
    [policy] = [d for d in manifests if d["metadata"]["name"] == "gr-goresolve-webhooks-ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["from"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    assert rule["from"][1] == {"ipBlock": {"cidr": "203.0.113.0/24"}}


@pytest.mark.parametrize(
    ("release", "sets", "complaint"),
    [
        # before: rendered, then the API server refused its Services at install (422: a dot in a DNS label)
        ("my.release.v2", (), 'release name "my.release.v2" has a dot'),
        # before: the schema's bare "'not' failed", naming neither the image nor why
        ("gr", ("images.agent.tag=latest",), 'the tag "latest" is refused'),
    ],
)
def test_a_release_name_or_tag_that_cannot_work_is_refused_saying_why(
    release: str, sets: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(RuntimeError) as refused:
        render(release=release, sets=sets)
    assert complaint in str(refused.value)
