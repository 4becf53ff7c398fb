"""code-search's `openai` embedder through the chart: one set of embedder settings for code-search and the
indexer (an index is searchable only with the embedder that wrote it), the key as a file for those two
containers only (never the agent), egress to the endpoint for the pods that embed, and the schema refusing
`openai` without an endpoint or a key. Both rendered containers' settings are loaded as their processes
would load them and embed through a local OpenAI-compatible endpoint, which sees the key."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from servers.code_search.settings import CodeSearchSettings, open_embedder
from servers.common.settings import load_settings
from tests.charts.pod import local_env, mount_dirs, project_secrets
from tests.charts.render import CHART, job_template, render
from tests.charts.test_chart import containers, pod_specs, secret_key_readers, secret_mounts
from tests.charts.test_networkpolicy_chart import allowed, expected

pytestmark = pytest.mark.timeout(600)

OPENAI = (
    "codeSearch.embedder=openai",
    "codeSearch.openai.baseUrl=https://api.openai.com/v1",
    "codeSearch.openai.credentials.apiKey=sk-test-0123456789",
)
EMBEDDER_ENV = (
    "GORESOLVE_CODE_SEARCH_EMBEDDER",
    "GORESOLVE_CODE_SEARCH_OPENAI_BASE_URL",
    "GORESOLVE_CODE_SEARCH_OPENAI_MODEL",
    "GORESOLVE_CODE_SEARCH_OPENAI_DIM",
)


def embedding_containers(manifests: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """`owner/container` -> (pod spec, container) for every container that embeds: code-search and the indexer."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for owner, spec in pod_specs(manifests):
        for c in containers(spec):
            if c["name"] in ("code-search", "indexer"):
                found[f"{owner}/{c['name']}"] = (spec, c)
    return found


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


@pytest.mark.parametrize(
    ("sets", "values", "embedders"),
    [
        (OPENAI, None, {"Job/per-ticket/code-search", "Deployment/gr-goresolve-indexer/indexer"}),
        (
            (*OPENAI, "agent.deployment.enabled=true"),
            None,
            {
                "Job/per-ticket/code-search",
                "Deployment/gr-goresolve-agent/code-search",
                "Deployment/gr-goresolve-indexer/indexer",
            },
        ),
        (
            OPENAI,
            CHART / "ci" / "services-topology.yaml",
            {"Deployment/gr-goresolve-code-search/code-search", "Deployment/gr-goresolve-indexer/indexer"},
        ),
    ],
    ids=["sidecars", "sidecars-and-agent-deployment", "services"],
)
def test_the_key_is_readable_by_code_search_and_the_indexer_only(
    sets: tuple[str, ...], values: Path | None, embedders: set[str]
) -> None:
    manifests = render(values=values, sets=sets)
    [secret] = [d for d in manifests if d["kind"] == "Secret" and d["metadata"]["name"] == "gr-goresolve-embeddings"]
    assert secret["stringData"] == {"api-key": "sk-test-0123456789"}
    assert secret_mounts(manifests)["gr-goresolve-embeddings"] == embedders
    assert secret_key_readers(manifests, "gr-goresolve-embeddings") == {"api-key": embedders}
    assert "sk-test-0123456789" not in json.dumps([d for d in manifests if d["kind"] != "Secret"])
    for owner, spec in pod_specs(manifests):
        for c in containers(spec):
            if f"{owner}/{c['name']}" not in embedders:
                assert not any(name.startswith("GORESOLVE_CODE_SEARCH_OPENAI") for name in plain_env(c)), owner
    # One definition of the embedder for every container that embeds: the index and its readers agree.
    settings = {
        where: tuple(plain_env(c).get(n) for n in EMBEDDER_ENV)
        for where, (_, c) in embedding_containers(manifests).items()
    }
    assert set(settings) == embedders
    assert set(settings.values()) == {("openai", "https://api.openai.com/v1", "text-embedding-3-small", "1536")}


def test_an_operators_secret_is_read_by_its_key_and_none_is_created() -> None:
    manifests = render(
        values=CHART / "ci" / "jira-only.yaml", sets=("codeSearch.openai.credentials.existingSecretKey=token",)
    )
    assert [d["metadata"]["name"] for d in manifests if d["kind"] == "Secret"] == ["gr-goresolve-redis-auth"]
    assert secret_key_readers(manifests, "goresolve-embeddings") == {
        "token": {"Job/per-ticket/code-search", "Deployment/gr-goresolve-indexer/indexer"}
    }


def test_with_the_default_embedder_nobody_gets_a_key_or_an_endpoint() -> None:
    manifests = render()
    assert "gr-goresolve-embeddings" not in secret_mounts(manifests)
    for _, c in embedding_containers(manifests).values():
        env = plain_env(c)
        assert env["GORESOLVE_CODE_SEARCH_EMBEDDER"] == "minilm" and "GORESOLVE_SECRETS_DIR" not in env
    spec = job_template(manifests)["spec"]["template"]["spec"]
    assert not [v for v in spec["volumes"] if v["name"] == "code-search-secrets"]


@pytest.fixture
def embeddings_endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local OpenAI-compatible `/v1/embeddings` (8 dimensions); yields its base URL and the requests seen."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body})
            data = [{"index": i, "embedding": [1.0] + [0.0] * 7} for i in range(len(body["input"]))]
            answer = json.dumps({"data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_code_search_and_the_indexer_embed_through_the_endpoint_with_the_key_from_their_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embeddings_endpoint: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = embeddings_endpoint
    manifests = render(
        sets=(
            "codeSearch.embedder=openai",
            f"codeSearch.openai.baseUrl={url}",
            "codeSearch.openai.model=bge-small",
            "codeSearch.openai.dim=8",
            "codeSearch.openai.credentials.apiKey=sk-test-0123456789",
        )
    )
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in manifests if d["kind"] == "Secret"}
    spaces = set()
    for where, (spec, container) in embedding_containers(manifests).items():
        root = tmp_path / where.replace("/", "_")
        mounts = mount_dirs(container, root)
        [secrets_volume] = [
            m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/var/run/secrets/goresolve"
        ]
        project_secrets(spec, secrets_volume, secrets, mounts["/var/run/secrets/goresolve"])
        with monkeypatch.context() as env:
            for name, value in local_env(container, mounts).items():
                if name.startswith("GORESOLVE_CODE_SEARCH_") or name == "GORESOLVE_SECRETS_DIR":
                    env.setenv(name, value)
            settings = load_settings(CodeSearchSettings)
        embedder = open_embedder(settings)
        vectors = embedder.embed(["func Handle(w http.ResponseWriter) {}"])
        assert vectors.shape == (1, 8), where
        spaces.add((embedder.model_id, embedder.dim))
    assert spaces == {("openai-bge-small-8", 8)}  # one vector space for the index and its readers
    assert [(r["path"], r["authorization"], r["body"]["model"]) for r in seen] == [
        ("/v1/embeddings", "Bearer sk-test-0123456789", "bge-small")
    ] * 2


def test_the_pods_that_embed_may_reach_the_endpoint_and_no_other_pod_may() -> None:
    narrowed = {"cidrs": ["10.20.0.0/16"], "except": [], "ports": [8080]}
    endpoint = (
        "codeSearch.embedder=openai",
        "codeSearch.openai.baseUrl=http://tei.embeddings.svc:8080/v1",
        "codeSearch.openai.credentials.existingSecret=embeddings-key",
    )
    set_json = (f"networkPolicy.egress.embeddings={json.dumps(narrowed)}",)
    sidecars = render(sets=endpoint, set_json=set_json)
    reach = expected("embeddings", egress={"embeddings": narrowed})
    assert reach <= allowed(sidecars, "agent")  # code-search runs in the agent pod
    assert reach <= allowed(sidecars, "indexer")
    for component in ("webhooks", "dispatcher"):
        assert not reach & allowed(sidecars, component), component
    services = render(values=CHART / "ci" / "services-topology.yaml", sets=endpoint, set_json=set_json)
    assert reach <= allowed(services, "code-search") and reach <= allowed(services, "indexer")
    for component in ("agent", "jira-read", "github-pr", "go-test-runner", "webhooks", "dispatcher"):
        assert not reach & allowed(services, component), component
    minilm = render(set_json=set_json)
    for component in ("agent", "indexer"):
        assert not reach & allowed(minilm, component), component


@pytest.mark.parametrize(
    ("sets", "complaints"),
    [
        (("codeSearch.embedder=openai", "codeSearch.openai.credentials.apiKey=k"), ["/codeSearch/openai/baseUrl"]),
        (
            ("codeSearch.embedder=openai", "codeSearch.openai.baseUrl=https://api.openai.com/v1"),
            ["/codeSearch/openai/credentials/existingSecret", "/codeSearch/openai/credentials/apiKey"],
        ),
        (("codeSearch.openai.baseUrl=api.openai.com/v1",), ["/codeSearch/openai/baseUrl"]),
        ((*OPENAI, "codeSearch.openai.dim=4"), ["/codeSearch/openai/dim"]),
        ((*OPENAI, "codeSearch.openai.model="), ["/codeSearch/openai/model"]),
        ((*OPENAI, "codeSearch.openai.apiKey=k"), ["apiKey"]),
        ((*OPENAI, "networkPolicy.egress.embeddings=null"), ["embeddings"]),
    ],
)
def test_openai_without_an_endpoint_or_a_key_is_refused_naming_the_setting(
    sets: tuple[str, ...], complaints: list[str]
) -> None:
    with pytest.raises(RuntimeError, match="schema") as refused:
        render(sets=sets)
    for complaint in complaints:
        assert complaint in str(refused.value)
