"""Object names a long release name cannot break (the longest Service name fits a DNS label, or rendering
fails saying how long the release name may be), and a PodDisruptionBudget for every Deployment that runs
more than one replica (selecting exactly that Deployment's pods)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.charts.render import CHART, render

pytestmark = pytest.mark.timeout(600)

SHARED = ("auth.mode=sharedKey", f"auth.sharedKey.value={'k' * 40}")
SERVICES = ("topology=services", *SHARED)
LONGEST = "go-test-runner"  # the longest Service suffix


def names(manifests: list[dict[str, Any]], kind: str) -> list[str]:
    return [d["metadata"]["name"] for d in manifests if d["kind"] == kind]


def test_the_longest_service_name_of_the_longest_allowed_release_name_is_63_characters() -> None:
    release = "r" * 38  # + "-goresolve": a 48-character full name, + "-go-test-runner": 63
    services = names(render(release=release, sets=SERVICES), "Service")
    assert max(len(n) for n in services) == 63
    assert f"{release}-goresolve-{LONGEST}" in services


@pytest.mark.parametrize(
    ("release", "sets"),
    [
        ("r" * 39, SERVICES),
        ("ticketbot-production-eu-west-1-tenant-acme", SERVICES),  # a real-looking name: 65 characters
        ("goresolve-" + "r" * 39, SERVICES),  # a name containing the chart's is used alone
    ],
)
def test_a_release_name_that_would_make_a_service_name_too_long_fails_saying_how_long_it_may_be(
    release: str, sets: tuple[str, ...]
) -> None:
    with pytest.raises(RuntimeError) as refused:
        render(release=release, sets=sets)
    message = str(refused.value)
    assert f"release name {release!r}".replace("'", '"') in message
    assert "over the 63 of a DNS label" in message and "at most 48 characters" in message


def test_in_the_sidecar_topology_a_long_release_name_renders_with_the_names_it_always_had() -> None:
    """No Service there has a suffix longer than "-webhooks": the 50-character cut stays, nothing is renamed."""
    release = "ticketbot-production-eu-west-1-tenant-acme"
    manifests = render(release=release)
    full = "ticketbot-production-eu-west-1-tenant-acme-goresol"
    assert sorted(names(manifests, "Service")) == [f"{full}-redis", f"{full}-webhooks"]
    assert f"{full}-index" in names(manifests, "PersistentVolumeClaim")
    assert all(len(n) <= 63 for n in names(manifests, "Service"))


def budgets(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"] for d in manifests if d["kind"] == "PodDisruptionBudget"}


def test_by_default_every_deployment_has_one_replica_and_no_budget() -> None:
    assert budgets(render()) == {}
    # The services example runs two of each server and of the gateway; one dispatcher, one Redis: no budget.
    assert set(budgets(render(values=CHART / "ci" / "services-topology.yaml"))) == {
        "gr-goresolve-webhooks",
        *(f"gr-goresolve-{s}" for s in ("jira-read", "code-search", "go-test-runner", "github-pr")),
    }


def test_each_deployment_with_more_than_one_replica_has_a_budget_of_one_pod_down_over_exactly_its_pods() -> None:
    manifests = render(
        sets=(
            *SERVICES,
            "serverReplicas=2",
            "webhooks.replicas=3",
            "indexer.replicas=2",
            "agent.deployment.enabled=true",
            "agent.deployment.replicas=2",
        )
    )
    found = budgets(manifests)
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    replicated = {n for n, d in deployments.items() if d["spec"]["replicas"] > 1}
    assert set(found) == replicated and len(replicated) == 7  # webhooks, indexer, agent, four servers
    assert "gr-goresolve-dispatcher" not in found and "gr-goresolve-redis" not in found
    for name, spec in found.items():
        assert spec["maxUnavailable"] == 1, name
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"] == deployments[name]["spec"]["selector"]["matchLabels"], name
        assert spec["selector"]["matchLabels"].items() <= pod_labels.items(), name
        # No other Deployment's pods are selected.
        for other, d in deployments.items():
            if other != name:
                assert (
                    not spec["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
                )
    # The agent Deployment's budget leaves out the per-ticket Jobs' pods (same component label).
    assert found["gr-goresolve-agent"]["selector"]["matchExpressions"] == [
        {"key": "goresolve.dev/ticket", "operator": "DoesNotExist"}
    ]
