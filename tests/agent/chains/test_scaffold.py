"""The scaffold chain: a real protoc-compiled registry, the pinned protoc-gen-go, real `go mod`, and the
result built by a real go-test-runner over MCP. The requirements step is a fake or a scripted model."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.chains.core import ChainContext, FakeStep
from agent.chains.errors import RegistryError, UnknownMessage
from agent.chains.extract import TicketText
from agent.chains.registry import ProtoDirRegistry
from agent.chains.scaffold import DataRequirements, ScaffoldRequest, go_camel_case, scaffold
from agent.chains.toolchain import GoToolchain
from agent.ledger import Ledger
from agent.llm import PriceBook, ScriptedModel, reply
from agent.policy import Budgets, Price
from agent.servers import ServersConfig, open_servers
from tests.agent.workspace import make_workspace

REGISTRY = Path(__file__).resolve().parents[2] / "testdata" / "proto" / "registry"
TICKET = TicketText(
    key="SVC-1",
    title="New service: order-events",
    body="Publish an event for every change to an order (shop.v1.Order, shop.v1.order_event).",
)
NEEDS = DataRequirements(
    service_name="order-events",
    module_path="github.com/acme/order-events",
    messages=["shop.v1.Order", "shop.v1.order_event", "shop.v1.Order.Line"],
    summary="Publishes an event for every change to an order.",
)
# a repository made for the new service may hold module files (the default policy forbids them in fixes)
NEW_SERVICE_POLICY = """\
paths: [".github/**", "**/testdata/**", "CODEOWNERS"]
existing_tests_read_only: true
allow_go_mod: true
max_patch_bytes: 400000
allow_non_go: ["**/*.md", "go.sum"]
"""


@pytest.fixture(scope="session")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> GoToolchain:
    return GoToolchain(tmp_path_factory.mktemp("tools"), timeout_s=240)


def fake(needs: DataRequirements = NEEDS) -> FakeStep[ScaffoldRequest, DataRequirements]:
    return FakeStep("requirements", ScaffoldRequest, DataRequirements, needs)


def test_the_registry_is_compiled_by_protoc_and_read_from_descriptors(toolchain: GoToolchain) -> None:
    found = ProtoDirRegistry(REGISTRY, toolchain).lookup(["shop.v1.Order"])
    (order,) = found.messages
    assert (order.full_name, order.package, order.file) == ("shop.v1.Order", "shop.v1", "shop/v1/orders.proto")
    fields = {f.name: (f.type, f.type_name, f.repeated) for f in order.fields}
    assert fields["lines"] == ("message", "shop.v1.Order.Line", True)
    assert fields["placed_at"] == ("message", "google.protobuf.Timestamp", False)
    assert fields["labels"] == ("message", "shop.v1.Order.LabelsEntry", True)  # protoc's map entry
    assert found.files == ["shop/v1/money.proto", "shop/v1/orders.proto"]  # imports first; no WKT, no inventory


async def test_an_unknown_message_is_an_error_that_names_it(toolchain: GoToolchain) -> None:
    needs = NEEDS.model_copy(update={"messages": ["shop.v1.Order", "shop.v1.Orders", "billing.v1.Invoice"]})
    ctx = ChainContext()
    registry = ProtoDirRegistry(REGISTRY, toolchain)
    with pytest.raises(UnknownMessage) as caught:
        await scaffold(
            TICKET, ctx, repo="order-events", registry=registry, toolchain=toolchain, requirements=fake(needs)
        )
    error = caught.value.to_dict()
    assert error["kind"] == "unknown_message" and error["step"] == "lookup"
    assert error["missing"] == ["shop.v1.Orders", "billing.v1.Invoice"]
    assert "shop.v1.Orders, billing.v1.Invoice" in error["reason"] and "did you mean shop.v1.Order" in error["reason"]
    assert [(s.step, s.ok) for s in ctx.steps] == [("requirements", True), ("lookup", False)]


def test_a_registry_protoc_rejects_is_an_error_quoting_protoc(tmp_path: Path, toolchain: GoToolchain) -> None:
    (tmp_path / "bad.proto").write_text('syntax = "proto3";\npackage bad;\nmessage Broken { strng name = 1; }\n')
    with pytest.raises(RegistryError, match=r"protoc rejected the registry: bad\.proto:3:18: \"strng\" is not defined"):
        ProtoDirRegistry(tmp_path, toolchain).lookup(["bad.Broken"])
    with pytest.raises(RegistryError, match=r"no \.proto files"):
        ProtoDirRegistry(tmp_path / "empty", toolchain).lookup(["x.Y"])


@pytest.mark.parametrize(
    ("proto", "go"),
    [("Order", "Order"), ("order_event", "OrderEvent"), ("Order.Line", "Order_Line"), ("_hidden", "XHidden"),
     ("http2_frame", "Http2Frame"), ("Order.line_item", "OrderLineItem"), ("URLMap", "URLMap")],
)  # fmt: skip
def test_go_names_follow_protoc_gen_go(proto: str, go: str) -> None:
    assert go_camel_case(proto) == go


@pytest.mark.slow
async def test_the_scaffold_builds_on_a_real_go_test_runner(
    tmp_path: Path, toolchain: GoToolchain, ledger: Ledger
) -> None:
    ws = make_workspace(
        tmp_path / "w",
        {"README.md": "# order-events\n"},
        repo_name="order-events",
        tickets={"SVC-1": "key: SVC-1\nfields: {summary: order-events}\n"},
    )
    (ws.policy_dir / "protected.yaml").write_text(NEW_SERVICE_POLICY)
    runner = ServersConfig(tuple(s for s in ws.servers().servers if s.name == "go-test-runner"))
    model = ScriptedModel([reply("", ("answer", {**NEEDS.model_dump(), "service_name": "Order Events"})),
                           reply("", ("answer", NEEDS.model_dump()))])  # fmt: skip
    prices = PriceBook(Budgets(prices={"scripted": Price(input=1.0, output=2.0)}))
    registry = ProtoDirRegistry(REGISTRY, toolchain)
    async with open_servers(runner) as box:
        ctx = ChainContext(call_tool=box.call, model=model, prices=prices, ledger=ledger, run_id="svc-1")
        result = await scaffold(TICKET, ctx, repo="order-events", registry=registry, toolchain=toolchain)
    assert result.files == [
        "cmd/order-events/main.go",
        "go.mod",
        "go.sum",
        "internal/gen/shop/v1/money.pb.go",
        "internal/gen/shop/v1/orders.pb.go",
        "internal/service/service.go",
    ]
    assert result.build_commit == ws.commit and result.build_summary == "go build and go vet found no problems."
    assert "+module github.com/acme/order-events" in result.patch
    assert "+\t\t&shopv1.OrderEvent{}," in result.patch and "+\t\t&shopv1.Order_Line{}," in result.patch
    assert result.patch.count("new file mode 100644") == 6
    assert (
        len(model.requests) == 2
        and "service_name: String should match pattern" in model.requests[1].messages[-1].content
    )
    assert ledger.by("run_id") == pytest.approx({"svc-1": ctx.cost_usd}) and ctx.cost_usd > 0
    assert [s.step for s in ctx.steps] == ["requirements", "lookup", "models", "layout", "build"]


def test_settings_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.chains.settings import ScaffoldSettings

    monkeypatch.setenv("GORESOLVE_SCAFFOLD_REGISTRY_DIR", str(REGISTRY))
    monkeypatch.setenv("GORESOLVE_DATA_DIR", str(tmp_path))
    settings = ScaffoldSettings()  # pyright: ignore[reportCallIssue]
    assert settings.toolchain().tools_dir == tmp_path / "tools"
    assert settings.registry().root == REGISTRY
