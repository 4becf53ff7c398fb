"""Connecting to the API server: in-cluster ServiceAccount, or a kubeconfig outside a cluster."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from kubernetes.aio import client, config

from agent.dispatch.jobs import load_template
from agent.dispatch.kube import KubeRunner
from agent.dispatch.settings import DispatchSettings


@asynccontextmanager
async def kube_runner(settings: DispatchSettings) -> AsyncGenerator[KubeRunner]:
    """A KubeRunner on the configured cluster. Raises TemplateError for a bad Job template."""
    template = load_template(settings.job_template)
    configuration = client.Configuration()
    if settings.kubeconfig is not None:
        await config.load_kube_config(config_file=str(settings.kubeconfig), client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        yield KubeRunner(
            api,
            namespace=settings.namespace,
            template=template,
            active_deadline_s=settings.active_deadline_s,
            ttl_after_finished_s=settings.ttl_after_finished_s,
        )
