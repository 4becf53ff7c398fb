"""The dispatcher without a cluster: names, Job building, result lines, caps, local subprocess runs
through the real embedded queue."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import textwrap
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from agent.dispatch import ClusterRefused, DispatchError, PolicyUnreadable, TemplateError, Ticket
from agent.dispatch.capacity import Busy, Capacity
from agent.dispatch.cli import LEASE_MARGIN_S, queue_settings, release_when_done
from agent.dispatch.cli import app as dispatch_cli
from agent.dispatch.jobs import build_job, check_template, load_template
from agent.dispatch.kube import KubeRunner
from agent.dispatch.local import LocalRunner, command_for
from agent.dispatch.results import NO_OUTCOME, Ledger, compact_result, parse_result
from agent.dispatch.service import Dispatcher
from agent.dispatch.settings import DispatchSettings
from agent.dispatch.tickets import job_name, label_value, ticket_from_event
from workqueue import CommentData, Event, IssueData, JiraIssueData, PushData, QueueSettings, open_queue

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")
TRACE = "0123456789abcdef0123456789abcdef"

TEMPLATE: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"labels": {"app.kubernetes.io/component": "agent"}},
    "spec": {
        "backoffLimit": 3,
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/component": "agent"}},
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "agent", "image": "a:1", "args": ["x"]}]},
        },
    },
}


def event(data: Any, repo: str | None = "acme/svc") -> Event:
    return Event(
        id=f"github:1:{uuid.uuid4()}",
        source="jira" if isinstance(data, JiraIssueData) else "github",
        delivery=str(uuid.uuid4()),
        hook_id="1",
        trace_id=TRACE,
        received_at=datetime.now(UTC),
        repo=repo,
        data=data,
    )


def issue(number: int = 42) -> IssueData:
    return IssueData(action="opened", number=number, title="t", url="https://x/1", author="u")


@given(st.text(min_size=1, max_size=300))
def test_job_names_are_valid_dns_labels_and_a_pure_function_of_the_ticket(ticket: str) -> None:
    name = job_name(ticket)
    assert DNS_LABEL.match(name), name
    assert name == job_name(ticket)


def test_tickets_that_clean_up_alike_still_get_different_job_names() -> None:
    assert job_name("a/b#1") != job_name("a-b-1")


@given(st.text(min_size=1, max_size=300), st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,80}[a-z0-9])?", fullmatch=True))
def test_a_releases_prefix_keeps_job_names_valid_and_apart(ticket: str, prefix: str) -> None:
    """Before, every release named a ticket's Job `goresolve-...`: two releases in one namespace adopted each
    other's Jobs. The chart's template now names its prefix (`<release>-goresolve-`)."""
    name = job_name(ticket, prefix)
    assert DNS_LABEL.match(name) and len(name) <= 63, name
    assert name != job_name(ticket, prefix + "x") and name != job_name(ticket)


def test_the_job_templates_generate_name_is_the_job_names_prefix() -> None:
    template = {**TEMPLATE, "metadata": {**TEMPLATE["metadata"], "generateName": "staging-goresolve-"}}
    ticket = Ticket("acme/svc#42", "acme/svc", TRACE, "github")
    job = build_job(template, ticket, active_deadline_s=60, ttl_after_finished_s=60)
    assert job["metadata"]["name"] == job_name("acme/svc#42", "staging-goresolve")
    assert job["metadata"]["name"].startswith("staging-goresolve-acme-svc-42-")
    assert "generateName" not in job["metadata"]


@given(st.text(max_size=300))
def test_label_values_are_always_valid(text: str) -> None:
    assert LABEL_VALUE.match(label_value(text))


def test_events_map_to_tickets_and_pushes_to_nothing() -> None:
    sha = "a" * 40
    push = PushData(ref="refs/heads/main", before=sha, after=sha, commits=1, truncated=False, clone_url="u")
    jira = JiraIssueData(action="created", key="SVC-7", project="SVC", summary="s", url="https://j/SVC-7")
    opened = event(issue())
    assert ticket_from_event(opened, jira_repos={}, default_repo=None) == Ticket(
        "acme/svc#42", "acme/svc", TRACE, "github", request=opened.id
    )
    created = event(jira, None)
    assert ticket_from_event(created, jira_repos={"SVC": "acme/svc"}, default_repo=None) == Ticket(
        "SVC-7", "acme/svc", TRACE, "jira", request=created.id
    )
    assert ticket_from_event(event(jira, None), jira_repos={}, default_repo=None) is None
    assert ticket_from_event(event(push), jira_repos={}, default_repo="r") is None


def test_only_an_issue_comment_command_is_a_restart_and_each_delivery_is_its_own_request() -> None:
    retry = CommentData(number=42, command="/goresolve retry", author="u", url="https://x/1#c")
    first, again = event(retry), event(retry)
    ticket = ticket_from_event(first, jira_repos={}, default_repo=None)
    assert ticket == Ticket("acme/svc#42", "acme/svc", TRACE, "github", request=first.id, restart=True)
    assert ticket_from_event(again, jira_repos={}, default_repo=None) != ticket  # another comment: another request
    labeled = IssueData(action="labeled", number=42, title="t", url="https://x/1", author="u")
    relabelled = ticket_from_event(event(labeled), jira_repos={}, default_repo=None)
    assert relabelled is not None and not relabelled.restart


def test_a_restart_replaces_only_a_finished_job_of_another_request() -> None:
    restart = Ticket("acme/svc#42", "acme/svc", TRACE, "github", request="github:1:b", restart=True)

    def job(request: str | None, condition: str | None) -> dict[str, Any]:
        notes = {} if request is None else {"goresolve.dev/request-id": request}
        conditions = [{"type": condition, "status": "True"}] if condition else []
        return {"metadata": {"annotations": notes}, "status": {"conditions": conditions}}

    assert KubeRunner.replaces(restart, job("github:1:a", "Failed"))
    assert KubeRunner.replaces(restart, job("github:1:a", "Complete"))
    assert KubeRunner.replaces(restart, job(None, "Failed"))  # a Job from before request ids
    assert not KubeRunner.replaces(restart, job("github:1:a", None))  # still running: adopted
    assert not KubeRunner.replaces(restart, job("github:1:a", "FailureTarget"))  # not terminal yet
    assert not KubeRunner.replaces(restart, job("github:1:b", "Failed"))  # the same request again
    opened = Ticket("acme/svc#42", "acme/svc", TRACE, "github", request="github:1:c")
    assert not KubeRunner.replaces(opened, job("github:1:a", "Failed"))  # no restart command


def test_a_job_gets_name_labels_deadline_no_retries_and_the_run_command() -> None:
    ticket = Ticket("acme/svc#42", "acme/svc", TRACE, "github", request="github:1:abc")
    job = build_job(TEMPLATE, ticket, active_deadline_s=2100, ttl_after_finished_s=60)
    assert job["metadata"]["name"] == job_name("acme/svc#42")
    labels = job["metadata"]["labels"]
    assert labels["goresolve.dev/ticket"] == "acme_svc_42"
    assert labels["goresolve.dev/trace-id"] == TRACE
    assert job["spec"]["template"]["metadata"]["labels"]["goresolve.dev/ticket"] == "acme_svc_42"
    assert job["metadata"]["annotations"]["goresolve.dev/ticket-id"] == "acme/svc#42"
    assert job["metadata"]["annotations"]["goresolve.dev/request-id"] == "github:1:abc"
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (0, 2100)
    assert job["spec"]["ttlSecondsAfterFinished"] == 60
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    agent = pod["containers"][0]
    assert agent["args"][:6] == ["dispatch", "run", "--ticket", "acme/svc#42", "--repo", "acme/svc"]
    assert agent["terminationMessagePath"] == "/dev/termination-log"
    assert TEMPLATE["spec"]["backoffLimit"] == 3  # the template itself is untouched


def test_a_template_that_is_not_an_agent_job_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="batch/v1 Job"):
        check_template({"apiVersion": "v1", "kind": "Pod"}, "x")
    no_agent = json.loads(json.dumps(TEMPLATE))
    no_agent["spec"]["template"]["spec"]["containers"][0]["name"] = "other"
    with pytest.raises(TemplateError, match="no container named 'agent'"):
        check_template(no_agent, "x")
    with pytest.raises(TemplateError, match="No such file"):
        load_template(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("a: [", encoding="utf-8")
    with pytest.raises(TemplateError, match="not YAML"):
        load_template(tmp_path / "bad.yaml")
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(TEMPLATE), encoding="utf-8")
    assert load_template(tmp_path / "ok.yaml") == TEMPLATE


def test_the_result_is_the_last_json_line_with_an_outcome() -> None:
    text = 'noise\n{"outcome": "resolved", "cost_usd": 0.5}\n{"not": "a result"}\ntrailing\n'
    assert parse_result(text) == {"outcome": "resolved", "cost_usd": 0.5}
    assert parse_result("{broken\n") is None
    indented = 'log line\n{\n  "outcome": "pr",\n  "cost_usd": 0.2,\n  "pr": {"url": "https://x/pr/3"}\n}\n'
    assert parse_result(indented) == {"outcome": "pr", "cost_usd": 0.2, "pr": {"url": "https://x/pr/3"}}
    assert json.loads(compact_result(parse_result(indented) or {})) == {
        "outcome": "pr",
        "cost_usd": 0.2,
        "pr_url": "https://x/pr/3",
    }
    assert parse_result('{"outcome": ""}') is None
    assert parse_result(None) is None
    long = compact_result({"outcome": "resolved", "reason": "x" * 10_000})
    assert len(long.encode()) <= 4096 and json.loads(long) == {"outcome": "resolved"}


async def test_caps_hold_in_total_and_per_repo() -> None:
    capacity = Capacity(total=2, per_repo=1)
    async with AsyncExitStack() as held:
        await held.enter_async_context(capacity.slot("a"))
        with pytest.raises(Busy, match="1 of 1 against a"):  # a's own cap
            await held.enter_async_context(capacity.slot("a"))
        async with capacity.slot("b"):
            assert capacity.running == 2
            with pytest.raises(Busy, match="2 of 2 runs"):  # the total
                await held.enter_async_context(capacity.slot("c"))
        async with capacity.slot("c"):  # b's slot is free again
            assert (capacity.running, capacity.running_for("a")) == (2, 1)
    assert capacity.running == 0


def test_settings_refuse_a_per_repo_cap_above_the_total() -> None:
    with pytest.raises(ValueError, match="max_per_repo"):
        DispatchSettings(max_concurrent=1, max_per_repo=2)


def agent_script(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "agent.py"
    script.write_text(textwrap.dedent(body), encoding="utf-8")
    return [sys.executable, str(script), "{ticket}", "{repo}", "{trace_id}"]


def test_the_command_template_substitutes_only_the_three_fields() -> None:
    ticket = Ticket("SVC-1", "acme/svc", TRACE, "jira")
    assert command_for(["a", "{ticket}", "--repo={repo}", "$HOME", "{x}"], ticket) == [
        "a",
        "SVC-1",
        "--repo=acme/svc",
        "$HOME",
        "{x}",
    ]


async def test_a_local_run_records_the_agents_outcome_and_cost(tmp_path: Path) -> None:
    command = agent_script(
        tmp_path,
        """
        import json, sys
        print("working on", sys.argv[1])
        print(json.dumps({"outcome": "resolved", "cost_usd": 0.25, "pr_url": "https://x/pr/1", "ticket": sys.argv[1]}))
        """,
    )
    record = await LocalRunner(command, deadline_s=30).run(Ticket("SVC-1", "acme/svc", TRACE, "jira"))
    assert (record.outcome, record.cost_usd, record.pr_url, record.reason) == ("resolved", 0.25, "https://x/pr/1", None)


async def test_a_local_run_past_its_deadline_is_killed_with_its_children_and_has_no_outcome(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    command = agent_script(
        tmp_path,
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(60)
        """,
    )
    record = await LocalRunner(command, deadline_s=1.5).run(Ticket("SVC-2", "acme/svc", TRACE, "jira"))
    assert record.outcome == NO_OUTCOME and "deadline" in (record.reason or "")
    child = int(pidfile.read_text())
    for _ in range(100):  # the group kill reaches the grandchild; bounded wait for the kernel to reap it
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the agent's child outlived the deadline")


async def test_a_missing_agent_command_is_a_run_without_outcome(tmp_path: Path) -> None:
    record = await LocalRunner([str(tmp_path / "nope")], deadline_s=5).run(Ticket("T-1", "r", TRACE, "jira"))
    assert record.outcome == NO_OUTCOME and "could not start" in (record.reason or "")


async def test_dispatch_consumes_tickets_from_the_queue_records_each_run_and_escalates_a_silent_one(
    tmp_path: Path,
) -> None:
    command = agent_script(
        tmp_path,
        """
        import json, sys
        if sys.argv[1].endswith("#2"):
            sys.exit(3)                       # dies without a result line
        print(json.dumps({"outcome": "resolved", "cost_usd": 0.1}))
        """,
    )
    queue = open_queue(QueueSettings(sqlite_dir=tmp_path / "q"), "tickets")
    ledger = Ledger(tmp_path / "runs.jsonl")
    escalated: list[str] = []

    class Recorder:
        async def escalate(self, record: Any) -> None:
            escalated.append(record.ticket)

    dispatcher = Dispatcher(
        LocalRunner(command, deadline_s=30), Capacity(2, 1), ledger, escalator=Recorder(), busy_retry_s=0.2
    )
    try:
        for n in (1, 2):
            assert await queue.enqueue(event(issue(n)))
        await asyncio.wait_for(queue.consume(dispatcher.handle, concurrency=2, burst=True), timeout=60)
        assert await queue.depth() == 0
        assert await queue.dead_letters() == []  # a run without outcome is escalated, not retried
    finally:
        await queue.aclose()
    runs = {r.ticket: r for r in ledger.runs()}
    assert runs["acme/svc#1"].outcome == "resolved" and runs["acme/svc#1"].cost_usd == 0.1
    assert runs["acme/svc#2"].outcome == NO_OUTCOME and runs["acme/svc#2"].escalated
    assert "exited 3" in (runs["acme/svc#2"].reason or "")
    assert escalated == ["acme/svc#2"]


async def test_only_tickets_about_repositories_in_repos_yaml_start_a_run(tmp_path: Path) -> None:
    """An issue in an unregistered repository (an organisation-wide hook) or a Jira project mapped to one
    starts nothing, nor does a push; the registered repository, named by repos.yaml's `github` field or its own
    name, runs. None of them is retried or dead-lettered."""
    command = agent_script(tmp_path, 'import json; print(json.dumps({"outcome": "resolved", "cost_usd": 0.1}))')
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "repos.yaml").write_text(
        yaml.safe_dump({"repos": {"svc": {"path": "/srv/svc", "github": "acme/svc"}, "lib": {"path": "/srv/lib"}}})
    )
    queue = open_queue(QueueSettings(sqlite_dir=tmp_path / "q"), "tickets")
    ledger = Ledger(tmp_path / "runs.jsonl")
    jira = JiraIssueData(action="created", key="OPS-7", project="OPS", summary="s", url="https://j/OPS-7")
    lib = JiraIssueData(action="created", key="LIB-2", project="LIB", summary="s", url="https://j/LIB-2")
    dispatcher = Dispatcher(
        LocalRunner(command, deadline_s=30),
        Capacity(2, 1),
        ledger,
        jira_repos={"OPS": "acme/ops", "LIB": "lib"},
        policy_dir=policies,
    )
    try:
        push = PushData(
            ref="refs/heads/main", before="a" * 40, after="b" * 40, commits=1, truncated=False, clone_url="u"
        )
        for e in (event(issue(1)), event(issue(2), "evil/elsewhere"), event(jira, None), event(lib, None), event(push)):
            assert await queue.enqueue(e)
        await asyncio.wait_for(queue.consume(dispatcher.handle, concurrency=2, burst=True), timeout=60)
        assert await queue.depth() == 0 and await queue.dead_letters() == []
    finally:
        await queue.aclose()
    assert sorted(r.ticket for r in ledger.runs()) == ["LIB-2", "acme/svc#1"]

    (policies / "repos.yaml").write_text("repos: [not, a, map]")  # read at each event: a broken file stops runs
    with pytest.raises(PolicyUnreadable, match="has no `repos` map"):
        await dispatcher.handle(event(issue(3)))
    (policies / "repos.yaml").unlink()
    with pytest.raises(PolicyUnreadable, match=r"cannot read .*repos\.yaml: FileNotFoundError"):
        await dispatcher.handle(event(issue(4)))
    assert len(ledger.runs()) == 2


async def test_a_ticket_the_agents_identity_may_not_work_on_starts_no_run(tmp_path: Path) -> None:
    """Before, a Jira ticket of a project the agent may not read (sent to `default_repo`), or an issue of a registered
    repository its identity is not granted, started a run (a pod, in a cluster) that the agent refused at once and
    escalated. Now the dispatcher applies the same access.yaml grants first: no run, nothing retried."""
    command = agent_script(tmp_path, 'import json; print(json.dumps({"outcome": "resolved", "cost_usd": 0.1}))')
    policies = tmp_path / "policies"
    policies.mkdir()
    repos = {"svc": {"path": "/srv/svc", "github": "acme/svc"}, "lib": {"path": "/srv/lib", "github": "acme/lib"}}
    (policies / "repos.yaml").write_text(yaml.safe_dump({"repos": repos}))
    grants = {"roles": ["agent"], "repos": ["svc"], "jira_projects": ["SVC"]}
    (policies / "access.yaml").write_text(yaml.safe_dump({"identities": {"bot": grants}}))
    ledger = Ledger(tmp_path / "runs.jsonl")

    def jira(key: str) -> Event:
        data = JiraIssueData(action="created", key=key, project=key.split("-")[0], summary="s", url=f"https://j/{key}")
        return event(data, None)

    def dispatcher(identity: str | None) -> Dispatcher:
        runner = LocalRunner(command, deadline_s=30)
        return Dispatcher(runner, Capacity(2, 1), ledger, default_repo="svc", policy_dir=policies, identity=identity)

    bot = dispatcher("bot")
    for e in (jira("OPS-1"), event(issue(1), "acme/lib"), jira("SVC-2"), event(issue(3), "Acme/Svc")):
        await bot.handle(e)
    assert sorted(r.ticket for r in ledger.runs()) == ["SVC-2", "acme/svc#3"]
    await dispatcher("nobody").handle(jira("SVC-4"))  # an identity access.yaml does not name may do nothing
    await dispatcher(None).handle(jira("OPS-5"))  # no identity given: repos.yaml alone decides
    assert sorted(r.ticket for r in ledger.runs()) == ["OPS-5", "SVC-2", "acme/svc#3"]

    (policies / "access.yaml").write_text("identities: [bot]")  # read at each event: a broken file stops runs
    with pytest.raises(PolicyUnreadable, match=r"access\.yaml: identities: "):
        await bot.handle(jira("SVC-6"))
    assert len(ledger.runs()) == 3


def test_the_dispatcher_reads_the_agents_policy_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GORESOLVE_AGENT_POLICY_DIR", str(tmp_path))
    assert DispatchSettings().policy_dir == tmp_path
    monkeypatch.setenv("GORESOLVE_DISPATCH_POLICY_DIR", str(tmp_path / "own"))
    assert DispatchSettings().policy_dir == tmp_path / "own"
    assert DispatchSettings().identity == "local-dev"  # the agent's own default
    monkeypatch.setenv("GORESOLVE_AGENT_IDENTITY", "agent")
    assert DispatchSettings().identity == "agent"
    monkeypatch.setenv("GORESOLVE_DISPATCH_IDENTITY", "bot")
    assert DispatchSettings().identity == "bot"


def test_dispatch_run_prints_the_result_line_and_writes_the_result_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = agent_script(tmp_path, 'import json; print(json.dumps({"outcome": "escalated", "cost_usd": 1}))')
    monkeypatch.setenv("GORESOLVE_DISPATCH_COMMAND", json.dumps(command))
    out = tmp_path / "termination-log"
    result = CliRunner().invoke(
        dispatch_cli, ["run", "--ticket", "SVC-3", "--repo", "acme/svc", "--result-file", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == {"outcome": "escalated", "cost_usd": 1.0}


def test_a_result_file_that_cannot_be_written_loses_no_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, --result-file in a missing directory raised FileNotFoundError before the result line was printed."""
    command = agent_script(tmp_path, 'import json; print(json.dumps({"outcome": "pr", "cost_usd": 1}))')
    monkeypatch.setenv("GORESOLVE_DISPATCH_COMMAND", json.dumps(command))
    out = tmp_path / "no-such-dir" / "termination-log"
    result = CliRunner().invoke(
        dispatch_cli, ["run", "--ticket", "SVC-3", "--repo", "acme/svc", "--result-file", str(out)]
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout.splitlines()[0]) == {"outcome": "pr", "cost_usd": 1.0}
    assert f"error: --result-file {out}: No such file or directory" in result.stderr


def test_bad_settings_end_with_one_line_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORESOLVE_DISPATCH_MAX_CONCURRENT", "zero")
    result = CliRunner().invoke(dispatch_cli, ["--burst"])
    assert result.exit_code == 2
    assert "GORESOLVE_DISPATCH_MAX_CONCURRENT" in result.output and "Traceback" not in result.output


def test_the_queue_lets_a_ticket_run_as_long_as_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue cuts a handler off at its job timeout and runs the event again: left at the queue's default
    (600 s), every run longer than ten minutes was killed and paid for again, up to the queue's tries. Unset, the
    timeout follows the run's deadline; set shorter, dispatch refuses to start, in one line."""
    monkeypatch.delenv("GORESOLVE_QUEUE_JOB_TIMEOUT_S", raising=False)
    monkeypatch.setenv("GORESOLVE_DISPATCH_WALL_CLOCK_S", "3000")
    settings = DispatchSettings()
    assert queue_settings(settings).job_timeout_s == 3000 + settings.deadline_margin_s + LEASE_MARGIN_S

    monkeypatch.setenv("GORESOLVE_QUEUE_JOB_TIMEOUT_S", "4000")  # longer than needed: kept as given
    assert queue_settings(settings).job_timeout_s == 4000

    monkeypatch.setenv("GORESOLVE_QUEUE_JOB_TIMEOUT_S", "600")
    with pytest.raises(DispatchError, match=r"GORESOLVE_QUEUE_JOB_TIMEOUT_S \(600 s\).*at least 3600"):
        queue_settings(settings)
    result = CliRunner().invoke(dispatch_cli, ["--burst"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "error: setting GORESOLVE_QUEUE_JOB_TIMEOUT_S (600 s) is shorter than a run may last (3300 s, wall clock "
        "and margin) plus 300 s: the queue would cut runs off and start them again; set it to at least 3600 or "
        "leave it unset"
    ]

    monkeypatch.setenv("GORESOLVE_QUEUE_MAX_TRIES", "zero")  # the queue's own settings: one line too
    result = CliRunner().invoke(dispatch_cli, ["--burst"])
    assert result.exit_code == 2 and "GORESOLVE_QUEUE_MAX_TRIES" in result.output and "Traceback" not in result.output


async def test_a_run_adopted_after_a_restart_holds_its_slot_until_its_job_ends() -> None:
    capacity = Capacity(total=1, per_repo=1)
    ended = asyncio.Event()
    watched: list[str] = []

    class Jobs:
        async def wait(self, name: str) -> None:
            watched.append(name)
            await ended.wait()

    ticket = Ticket("SVC-9", "acme/svc", TRACE, "kubernetes")
    capacity.adopt(ticket.repo)
    follower = asyncio.create_task(release_when_done(Jobs(), capacity, ticket, "gr-goresolve-svc-9-0123456789"))
    await asyncio.sleep(0)
    assert watched == ["gr-goresolve-svc-9-0123456789"]
    with pytest.raises(Busy):  # the adopted Job holds the one slot
        async with capacity.slot("other/repo"):
            pass
    ended.set()
    await asyncio.wait_for(follower, timeout=5)
    async with capacity.slot("other/repo"):
        assert capacity.running_for("other/repo") == 1 and capacity.running_for("acme/svc") == 0

    class Gone:
        async def wait(self, name: str) -> None:
            raise ClusterRefused(404, f"watch job {name}", "not found")

    capacity.adopt(ticket.repo)
    await asyncio.wait_for(release_when_done(Gone(), capacity, ticket, job_name(ticket.id)), timeout=5)
    assert capacity.running_for("acme/svc") == 0


async def test_a_run_that_ends_in_the_agents_error_is_escalated_with_its_reason(tmp_path: Path) -> None:
    command = agent_script(
        tmp_path,
        """
        import json
        print(json.dumps({"outcome": "error", "exit": "model_error", "reason": "model unavailable: 401"}))
        raise SystemExit(1)
        """,
    )
    escalated: list[str | None] = []

    class Recorder:
        async def escalate(self, record: Any) -> None:
            escalated.append(record.reason)

    ledger = Ledger(tmp_path / "runs.jsonl")
    dispatcher = Dispatcher(LocalRunner(command, deadline_s=30), Capacity(1, 1), ledger, escalator=Recorder())
    record = await dispatcher.dispatch(Ticket("SVC-9", "acme/svc", TRACE, "jira"))
    assert record.outcome == "error" and record.escalated and record.reason == "model unavailable: 401"
    assert escalated == ["model unavailable: 401"]
    [saved] = ledger.runs()
    assert saved.escalated and saved.reason == "model unavailable: 401"


async def test_a_github_name_in_another_case_is_the_registered_repository_as_repos_yaml_spells_it(
    tmp_path: Path,
) -> None:
    """GitHub sends its canonical `Acme/Svc`; repos.yaml says `github: acme/svc`. Before, the ticket started no
    run ("repos.yaml does not name"); now it runs, named as the policy spells it, so the agent finds its entry."""
    command = agent_script(
        tmp_path,
        'import json, sys; print(json.dumps({"outcome": "resolved", "cost_usd": 0.1, "ticket": sys.argv[1], '
        '"repo": sys.argv[2]}))',
    )
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "repos.yaml").write_text(yaml.safe_dump({"repos": {"svc": {"path": "/srv/svc", "github": "acme/svc"}}}))
    queue = open_queue(QueueSettings(sqlite_dir=tmp_path / "q"), "tickets")
    ledger = Ledger(tmp_path / "runs.jsonl")
    dispatcher = Dispatcher(LocalRunner(command, deadline_s=30), Capacity(2, 1), ledger, policy_dir=policies)
    try:
        assert await queue.enqueue(event(issue(3), "Acme/Svc"))
        await asyncio.wait_for(queue.consume(dispatcher.handle, concurrency=2, burst=True), timeout=60)
        assert await queue.depth() == 0 and await queue.dead_letters() == []
    finally:
        await queue.aclose()
    assert [(r.ticket, r.repo) for r in ledger.runs()] == [("acme/svc#3", "acme/svc")]


def test_dispatch_run_passes_sigterm_to_the_agent_and_prints_its_result(tmp_path: Path) -> None:
    """Before, SIGTERM (how Kubernetes stops a Job's pod) killed `dispatch run` at once, and with it its agent
    (SIGKILL, by the kernel's parent-death rule): no result line, the run not recorded as interrupted. Now the
    agent gets the SIGTERM, stops its run and prints its result, which dispatch run prints as usual."""
    import signal
    import subprocess

    ready = tmp_path / "ready"
    command = agent_script(
        tmp_path,
        f"""
        import json, pathlib, signal, sys, time
        def stop(signum, frame):
            print(json.dumps({{"outcome": "error", "exit": "interrupted", "reason": "stopped by SIGTERM"}}))
            sys.exit(143)
        signal.signal(signal.SIGTERM, stop)
        pathlib.Path({str(ready)!r}).write_text("up")
        time.sleep(120)
        """,
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env["GORESOLVE_DISPATCH_COMMAND"] = json.dumps(command)
    code = "from agent.dispatch.cli import app; app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", "--ticket", "SVC-3", "--repo", "acme/svc"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the agent never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert json.loads(out.strip().splitlines()[-1]) == {"outcome": "error", "reason": "stopped by SIGTERM"}
