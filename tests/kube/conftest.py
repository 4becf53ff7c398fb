"""One real kube-apiserver + etcd for every cluster test module, and the chart installed into it once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator
from typing import Any

import pytest
from kubernetes.aio import client

from tests.charts.render import render
from tests.kube.cluster import Cluster, api_server
from tests.kube.kubeapi import NS, RELEASE, api_client, call, install, service_account_token


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Generator[Cluster]:
    with api_server(tmp_path_factory.mktemp("kube")) as running:
        yield running


@pytest.fixture(scope="session")
def manifests() -> list[dict[str, Any]]:
    return render(namespace=NS, release=RELEASE)


@pytest.fixture
async def admin(cluster: Cluster) -> AsyncGenerator[client.ApiClient]:
    async with api_client(cluster, cluster.admin_token) as api:
        yield api


@pytest.fixture(scope="session")
def installed(cluster: Cluster, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The chart's default rendering in a Pod Security restricted namespace, and the dispatcher's token."""

    async def run() -> dict[str, Any]:
        async with api_client(cluster, cluster.admin_token) as api:
            other = await call(api, "POST", "/api/v1/namespaces", {"metadata": {"name": "elsewhere"}})
            assert other.status == 201, other.json
            results = await install(api, NS, manifests)
            token = await service_account_token(api, NS, f"{RELEASE}-goresolve-dispatcher")
            return {"objects": results, "dispatcher_token": token}

    return asyncio.run(run())
