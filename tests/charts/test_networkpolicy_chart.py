"""Egress as the chart renders it: which pods may reach the API server (the dispatcher for its Jobs, and in
auth mode projected the servers for their JWKS, nothing else), targets with the same ports merged into
one rule without allowing anything more or less, and the DNS rule's NodeLocal DNSCache addresses."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.charts.render import CHART, render

pytestmark = pytest.mark.timeout(600)

DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))["networkPolicy"]["egress"]
API = {json.dumps({"cidr": c}) for c in DEFAULTS["kubeApi"]["cidrs"]}
SERVERS = ("jira-read", "code-search", "go-test-runner", "github-pr")


def policies(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"] for d in manifests if d["kind"] == "NetworkPolicy"}


def allowed(manifests: list[dict[str, Any]], component: str) -> set[tuple[str, int]]:
    """(ipBlock as JSON, port) pairs the component's egress policy allows."""
    spec = policies(manifests).get(f"gr-goresolve-{component}-egress", {"egress": []})
    return {
        (json.dumps(peer["ipBlock"]), port["port"])
        for rule in spec["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
        for port in rule["ports"]
    }


def expected(*targets: str, egress: dict[str, Any] | None = None) -> set[tuple[str, int]]:
    """What one rule per target (the values, unmerged) allows."""
    values: dict[str, Any] = DEFAULTS if egress is None else egress
    out: set[tuple[str, int]] = set()
    for target in targets:
        t = values[target]
        for cidr in t["cidrs"]:
            block = {"cidr": cidr, **({"except": t["except"]} if t["except"] else {})}
            out |= {(json.dumps(block), port) for port in t["ports"]}
    return out


def reaches_api(manifests: list[dict[str, Any]], component: str) -> bool:
    """Whether the component may reach the default kubeApi ranges on an API server port."""
    return any(block in API and port in DEFAULTS["kubeApi"]["ports"] for block, port in allowed(manifests, component))


def test_by_default_only_the_dispatcher_and_the_agent_pod_s_servers_reach_the_api_server() -> None:
    manifests = render()
    assert reaches_api(manifests, "dispatcher")
    assert reaches_api(manifests, "agent")  # the sidecar servers' JWKS fetch (the in-cluster issuer)
    for component in ("webhooks", "indexer", "redis"):
        assert not reaches_api(manifests, component), component


def test_with_a_public_issuer_the_agent_pod_has_no_route_to_the_api_server() -> None:
    manifests = render(sets=("networkPolicy.egress.issuer.cidrs={52.1.2.3/32}",))
    assert not reaches_api(manifests, "agent")
    assert ('{"cidr": "52.1.2.3/32"}', 443) in allowed(manifests, "agent")
    assert reaches_api(manifests, "dispatcher") and ('{"cidr": "52.1.2.3/32"}', 443) not in allowed(
        manifests, "dispatcher"
    )


def test_with_shared_keys_no_server_fetches_keys_and_only_the_dispatcher_reaches_the_api_server() -> None:
    manifests = render(sets=("auth.mode=sharedKey", f"auth.sharedKey.value={'k' * 40}"))
    assert not reaches_api(manifests, "agent")
    assert reaches_api(manifests, "dispatcher")
    services = render(values=CHART / "ci" / "services-topology.yaml")
    for component in (*SERVERS, "agent", "webhooks", "indexer"):
        assert not reaches_api(services, component), component


NARROW_API = {"cidrs": ["10.0.0.1/32"], "except": [], "ports": [6443]}
PRIVATE = {json.dumps({"cidr": c}) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")}


def test_in_the_services_topology_with_projected_tokens_the_servers_not_the_agent_reach_the_issuer() -> None:
    narrowed = f"networkPolicy.egress.kubeApi={json.dumps(NARROW_API)}"
    manifests = render(sets=("topology=services",), set_json=(narrowed,))
    egress = {**DEFAULTS, "kubeApi": NARROW_API}
    assert allowed(manifests, "agent") == expected("model", egress=egress)
    for server in ("jira-read", "code-search", "github-pr"):
        assert ('{"cidr": "10.0.0.1/32"}', 6443) in allowed(manifests, server), server
    # The pod where test code runs: the module proxy and the narrowed API server, nothing private besides.
    assert allowed(manifests, "go-test-runner") == expected("goproxy", "kubeApi", egress=egress)


@pytest.mark.parametrize(
    "kube_api",
    [
        None,  # the default: every private range
        {"cidrs": ["10.0.0.1/32", "10.96.0.0/12"], "except": [], "ports": [443]},  # one wide block is enough
        {"cidrs": ["fd00::/8"], "except": [], "ports": [443]},
    ],
)
def test_in_the_services_topology_the_test_runner_pod_never_gets_a_wide_api_range(
    kube_api: dict[str, Any] | None,
) -> None:
    """go-test-runner's egress is promised to be the module proxy: its JWKS fetch needs the API server's
    address (or a public issuer's), so a wide kubeApi with no issuer CIDRs fails the render, saying what to set."""
    set_json = () if kube_api is None else (f"networkPolicy.egress.kubeApi={json.dumps(kube_api)}",)
    with pytest.raises(RuntimeError) as refused:
        render(sets=("topology=services",), set_json=set_json)
    message = str(refused.value)
    assert "go-test-runner" in message and "networkPolicy.egress.kubeApi.cidrs" in message
    assert "networkPolicy.egress.issuer.cidrs" in message
    assert "kubectl get endpointslice -n default -l kubernetes.io/service-name=kubernetes" in message


def test_in_the_services_topology_a_public_issuer_is_all_the_servers_get_of_it() -> None:
    manifests = render(sets=("topology=services", "networkPolicy.egress.issuer.cidrs={52.1.2.3/32}"))
    for server in SERVERS:
        assert ('{"cidr": "52.1.2.3/32"}', 443) in allowed(manifests, server), server
        assert not {block for block, _ in allowed(manifests, server)} & PRIVATE, server
    assert allowed(manifests, "go-test-runner") == expected("goproxy") | {('{"cidr": "52.1.2.3/32"}', 443)}


def test_the_services_topology_renders_without_a_narrowed_api_server_when_nothing_needs_the_issuer() -> None:
    """Shared keys (no JWKS fetch) or no network policies at all: nothing to refuse."""
    render(sets=("topology=services", "auth.mode=sharedKey", f"auth.sharedKey.value={'k' * 40}"))
    render(sets=("topology=services", "networkPolicy.enabled=false"))


def test_merged_rules_allow_exactly_what_one_rule_per_target_would() -> None:
    manifests = render()
    rules = policies(manifests)["gr-goresolve-agent-egress"]["egress"]
    # One rule for the four public HTTPS targets (identical blocks, listed once), one for the API server.
    assert [len(r["to"]) for r in rules] == [1, 3]
    assert allowed(manifests, "agent") == expected("model", "jira", "github", "goproxy", "kubeApi")
    narrowed = {
        "github": {"cidrs": ["140.82.112.0/20"], "except": [], "ports": [443]},
        "kubeApi": {"cidrs": ["10.0.0.1/32"], "except": [], "ports": [6443]},
    }
    manifests = render(
        set_json=tuple(f"networkPolicy.egress.{k}={json.dumps(v)}" for k, v in narrowed.items()),
    )
    egress = {**DEFAULTS, **narrowed}
    assert allowed(manifests, "agent") == expected("model", "jira", "github", "goproxy", "kubeApi", egress=egress)
    assert allowed(manifests, "dispatcher") == {('{"cidr": "10.0.0.1/32"}', 6443)}
    assert allowed(manifests, "indexer") == expected("github", egress=egress)


def test_node_local_dns_addresses_are_allowed_beside_the_cluster_resolver() -> None:
    manifests = render(
        sets=("networkPolicy.dns.ipBlocks={169.254.20.10/32}", "networkPolicy.dns.podSelector.k8s-app=coredns")
    )
    [rule] = policies(manifests)["gr-goresolve-allow-dns"]["egress"]
    assert rule["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "coredns"}
    assert rule["to"][1:] == [{"ipBlock": {"cidr": "169.254.20.10/32"}}]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--set", "networkPolicy.egress.kubeApi=null"), "kubeApi"),
        (("--set-json", 'networkPolicy.egress.github.cidrs=["not-a-cidr"]'), "cidrs/0"),
        (("--set-json", "networkPolicy.egress.github.cidrs=[]"), "minItems"),  # a rule with no `to` allows all
        (("--set-json", 'networkPolicy.egress.model.except=["10.0.0.0/33"]'), "except/0"),
        (("--set-json", 'networkPolicy.dns.ipBlocks=["node-local"]'), "ipBlocks/0"),
    ],
)
def test_egress_values_that_would_break_or_widen_the_policies_are_refused(
    args: tuple[str, str], complaint: str
) -> None:
    flag, value = args
    kwargs: dict[str, Any] = {"sets": (value,)} if flag == "--set" else {"set_json": (value,)}
    with pytest.raises(RuntimeError, match="schema") as refused:
        render(**kwargs)
    assert complaint in str(refused.value)


def test_ipv6_cidrs_are_accepted() -> None:
    manifests = render(
        set_json=('networkPolicy.egress.model={"cidrs": ["::/0"], "except": ["fd00::/8"], "ports": [443]}',)
    )
    assert ('{"cidr": "::/0", "except": ["fd00::/8"]}', 443) in allowed(manifests, "agent")
