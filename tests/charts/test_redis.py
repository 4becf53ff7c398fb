"""The bundled Redis as the chart configures it: durable (append-only file fsynced per write, on a PVC),
never evicting queued events, and behind a password that only reaches the pods through their Secret. The
rendered redis-server command line is run for real: an event accepted through the gateway's rendered
queue URL survives a SIGKILL of Redis, and so does the memory of its delivery id."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from tests.charts.pod import free_port, kube_expand, resolved_env
from tests.charts.render import CHART, render
from tests.workqueue.support import push_event, wait_for
from workqueue.base import QueueUnavailable
from workqueue.settings import QueueSettings, open_queue

pytestmark = pytest.mark.timeout(600)


def workload(manifests: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [doc] = [d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    return doc["spec"]["template"]["spec"]


def secret_data(manifests: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("stringData", {}) for d in manifests if d["kind"] == "Secret"}


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_by_default_the_bundled_redis_is_durable_never_evicts_and_needs_a_password() -> None:
    manifests = render()
    spec = workload(manifests, "gr-goresolve-redis")
    [redis] = spec["containers"]
    args = redis["args"]
    assert flag(args, "--appendonly") == "yes" and flag(args, "--appendfsync") == "always"
    assert flag(args, "--maxmemory-policy") == "noeviction" and flag(args, "--maxmemory") == "160mb"
    assert flag(args, "--requirepass") == "$(REDIS_PASSWORD)"  # substituted by the kubelet, not in the spec
    assert "--protected-mode" not in args
    [data] = [v for v in spec["volumes"] if v["name"] == "data"]
    assert data["persistentVolumeClaim"]["claimName"] == "gr-goresolve-redis"
    [pvc] = [
        d
        for d in manifests
        if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == data["persistentVolumeClaim"]["claimName"]
    ]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    password = secret_data(manifests)["gr-goresolve-redis-auth"]["password"]
    assert len(password) == 40 and password.isalnum()
    assert password not in str([d for d in manifests if d["kind"] != "Secret"])
    for client in ("webhooks", "dispatcher", "indexer"):
        [container] = workload(manifests, f"gr-goresolve-{client}")["containers"]
        names = [e["name"] for e in container["env"]]
        url = next(e for e in container["env"] if e["name"] == "GORESOLVE_QUEUE_REDIS_URL")["value"]
        assert url == "redis://:$(REDIS_PASSWORD)@gr-goresolve-redis:6379/0", client
        # The kubelet expands a reference only to a variable defined before it.
        assert names.index("REDIS_PASSWORD") < names.index("GORESOLVE_QUEUE_REDIS_URL"), client


def test_the_password_can_come_from_the_operators_secret_and_then_none_is_generated() -> None:
    manifests = render(sets=("queue.redis.auth.existingSecret=my-redis", "queue.redis.auth.existingSecretKey=pw"))
    assert "gr-goresolve-redis-auth" not in secret_data(manifests)
    [redis] = workload(manifests, "gr-goresolve-redis")["containers"]
    [container] = workload(manifests, "gr-goresolve-webhooks")["containers"]
    for c in (redis, container):
        ref = next(e for e in c["env"] if e["name"] == "REDIS_PASSWORD")["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "my-redis", "key": "pw"}


def test_without_persistence_redis_is_on_an_empty_dir_and_with_everysec_it_says_so() -> None:
    manifests = render(sets=("queue.redis.persistence.enabled=false", "queue.redis.appendfsync=everysec"))
    spec = workload(manifests, "gr-goresolve-redis")
    [data] = [v for v in spec["volumes"] if v["name"] == "data"]
    assert data == {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}
    assert not [d for d in manifests if d["kind"] == "PersistentVolumeClaim" and "redis" in d["metadata"]["name"]]
    assert flag(spec["containers"][0]["args"], "--appendfsync") == "everysec"


def test_every_queue_client_refuses_new_events_at_the_configured_share_of_maxmemory() -> None:
    """The gateway's headroom for the workers (GORESOLVE_QUEUE_REDIS_MEMORY_LIMIT) is a chart value, for an
    external Redis too."""
    for sets, want in (
        ((), "0.9"),
        (("queue.redis.bundled=false", "queue.redis.url=redis://r:6379/0", "queue.redis.memoryLimit=0.75"), "0.75"),
    ):
        manifests = render(sets=sets)
        for client in ("webhooks", "dispatcher", "indexer"):
            [container] = workload(manifests, f"gr-goresolve-{client}")["containers"]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["GORESOLVE_QUEUE_REDIS_MEMORY_LIMIT"] == want, client
            assert QueueSettings.model_validate({"redis_memory_limit": want}).redis_memory_limit == float(want)


@pytest.mark.parametrize(
    "bad",
    [
        "queue.redis.appendfsync=no",
        "queue.redis.maxmemory=lots",
        "queue.redis.maxmemory=0",
        "queue.redis.memoryLimit=0",
        "queue.redis.memoryLimit=1.5",
    ],
)
def test_redis_settings_that_lose_or_evict_events_are_refused(bad: str) -> None:
    with pytest.raises(RuntimeError, match="schema"):
        render(sets=(bad,))


@contextmanager
def rendered_redis(args: list[str], env: dict[str, str], data: Path, port: int) -> Generator[subprocess.Popen[bytes]]:
    """redis-server with the rendered arguments (expanded as the kubelet does), /data a local directory,
    listening on a free loopback port instead of 6379."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run scripts/install-system-deps.sh")
    argv = [kube_expand(a, env) for a in args]
    argv[argv.index("--dir") + 1] = str(data)
    proc = subprocess.Popen(
        [binary, *argv[1:], "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def probe(command: list[str], env: dict[str, str], port: int) -> bool:
    """The readiness probe's command, pointed at `port`."""
    script = command[-1].replace("redis-cli", f"redis-cli -p {port}", 1)
    return subprocess.run([*command[:-1], script], env={"PATH": "/usr/bin:/bin", **env}, check=False).returncode == 0


def test_an_event_accepted_through_the_rendered_url_survives_a_redis_crash(tmp_path: Path) -> None:
    manifests = render()
    secrets = secret_data(manifests)
    [redis] = workload(manifests, "gr-goresolve-redis")["containers"]
    redis_env = resolved_env(redis, secrets)
    [gateway] = workload(manifests, "gr-goresolve-webhooks")["containers"]
    url = resolved_env(gateway, secrets)["GORESOLVE_QUEUE_REDIS_URL"]
    port = free_port()
    local_url = url.replace("@gr-goresolve-redis:6379/", f"@127.0.0.1:{port}/")
    assert redis_env["REDIS_PASSWORD"] in local_url
    settings = QueueSettings(backend="redis", redis_url=SecretStr(local_url))
    event = push_event(1)

    async def enqueue() -> bool:
        queue = open_queue(settings, "code-index")
        try:
            return await queue.enqueue(event)
        finally:
            await queue.aclose()

    async def depth() -> int:
        queue = open_queue(settings, "code-index")
        try:
            return await queue.depth()
        finally:
            await queue.aclose()

    async def without_password() -> None:
        anonymous = QueueSettings(backend="redis", redis_url=SecretStr(f"redis://127.0.0.1:{port}/0"))
        queue = open_queue(anonymous, "code-index")
        try:
            await queue.enqueue(push_event(2))
        finally:
            await queue.aclose()

    command = redis["readinessProbe"]["exec"]["command"]
    with rendered_redis(redis["args"], redis_env, tmp_path, port) as proc:
        wait_for(lambda: probe(command, redis_env, port), 10, "the readiness probe to pass")
        assert anyio.run(enqueue) is True
        with pytest.raises(QueueUnavailable):
            anyio.run(without_password)
        policy = subprocess.run(
            ["redis-cli", "-p", str(port), "config", "get", "maxmemory-policy"],
            env={"PATH": "/usr/bin:/bin", "REDISCLI_AUTH": redis_env["REDIS_PASSWORD"]},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert policy == ["maxmemory-policy", "noeviction"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert not probe(command, redis_env, port)
    with rendered_redis(redis["args"], redis_env, tmp_path, port):
        wait_for(lambda: probe(command, redis_env, port), 10, "the readiness probe to pass after the crash")
        assert anyio.run(depth) == 1
        assert anyio.run(enqueue) is False  # its delivery id is remembered: no second run


def test_ci_values_files_render_the_redis_they_ask_for() -> None:
    minimal = render(values=CHART / "ci" / "minimal.yaml")
    [agent] = workload(minimal, "gr-goresolve-agent")["containers"]
    assert next(e for e in agent["env"] if e["name"] == "GORESOLVE_QUEUE_REDIS_URL")["value"].startswith(
        "redis://:$(REDIS_PASSWORD)@"
    )
    external = render(values=CHART / "ci" / "existing-secrets.yaml")
    assert not [d for d in external if d["metadata"]["name"].endswith("-redis-auth")]
