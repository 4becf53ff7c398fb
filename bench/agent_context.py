"""Context sent to the model per step, on real code: gorilla/mux v1.8.1 (pinned, from the Go module proxy),
indexed by code-search, the four real servers over stdio, and five bug tickets about it.

A scripted explorer does what a model does first on a ticket: search, read the top hit's file, read
the second, then hand over. Every request's size is measured (tokens ≈ UTF-8 bytes / 4). Baseline in
the same run: a naive prompt that dumps the ticket plus every file the retrieval touched, whole.

    .venv/bin/python -m bench.agent_context
"""

from __future__ import annotations

import re
import statistics
import tempfile
import textwrap
from pathlib import Path

import anyio

from agent.llm import ChatRequest, Message, ScriptedModel, reply
from agent.loop import RunSettings, run_ticket
from agent.policy import load_agent_policy
from agent.servers import open_servers
from bench.code_search_common import SMALL, module_dir
from tests.agent.workspace import make_workspace

TICKETS = {
    "MUX-1": (
        "Subrouter ignores Methods() when the parent route has a Host matcher",
        'A subrouter created from r.Host("api.example.com").Subrouter() matches POST requests on a route '
        'registered with .Methods("GET"). Expected 405 Method Not Allowed.',
    ),
    "MUX-2": (
        "CORSMethodMiddleware sets Access-Control-Allow-Methods on every request",
        "The middleware adds the header to GET responses too, not only to OPTIONS preflight requests.",
    ),
    "MUX-3": (
        "URL() with Queries drops values that contain '='",
        'route.URL("filter", "a=b") builds ?filter=a instead of ?filter=a%3Db '
        'for a route with Queries("filter", "{filter}").',
    ),
    "MUX-4": (
        "Walk does not visit routes of subrouters created with PathPrefix",
        'router.Walk skips every route registered on r.PathPrefix("/v1").Subrouter().',
    ),
    "MUX-5": (
        "StrictSlash redirect loses the query string",
        "With StrictSlash(true), GET /users?page=2 redirects to /users/ without ?page=2.",
    ),
}
HIT = re.compile(r"^// (\S+?):(\d+)-(\d+)", re.MULTILINE)


def ticket_yaml(key: str, summary: str, description: str) -> str:
    return textwrap.dedent(
        f"""\
        key: {key}
        fields:
          summary: "{summary.replace('"', "'")}"
          issuetype: {{name: Bug}}
          status: {{name: Open}}
          created: "2026-01-05T09:00:00.000+0000"
          updated: "2026-01-05T09:00:00.000+0000"
          description: "{description.replace('"', "'")}"
        """
    )


def explorer(request: ChatRequest) -> Message:
    results = [m for m in request.messages if m.role == "tool"]
    paths = list(dict.fromkeys(m.group(1) for m in HIT.finditer(request.messages[1].content)))
    title = request.messages[1].content.split("\n", 3)[2]
    if len(results) == 0:
        return reply("", ("search_code", {"query": title, "repos": ["mux"], "k": 5, "token_budget": 2000}))
    if len(results) <= 2 and len(paths) >= len(results):
        return reply("", ("view", {"path": paths[len(results) - 1] if results else paths[0]}))
    return reply("", ("escalate", {"reason": "context measured"}))


def main() -> None:
    src = module_dir(SMALL)
    files = {
        str(p.relative_to(src)): p.read_text(errors="replace")
        for p in sorted(src.rglob("*"))
        if p.is_file() and p.suffix in (".go", ".md", ".mod") and "testdata" not in p.parts
    }
    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(
            Path(tmp), files, repo_name="mux", tickets={k: ticket_yaml(k, *v) for k, v in TICKETS.items()}
        )
        policy = load_agent_policy(ws.policy_dir)
        per_step: list[int] = []
        naive: list[int] = []

        async def go() -> None:
            async with open_servers(ws.servers()) as box:
                for key, (summary, description) in TICKETS.items():
                    model = ScriptedModel(explorer)
                    settings = RunSettings(repo="mux", state_dir=Path(tmp) / "agent")
                    await run_ticket(key, model, box, policy, settings)
                    per_step.extend(r.size_bytes() // 4 for r in model.requests)
                    touched = set(HIT.findall(model.requests[0].messages[1].content))
                    whole = sum(len(files[p].encode()) for p in {t[0] for t in touched} if p in files)
                    naive.append((whole + len((summary + description).encode())) // 4)

        anyio.run(go)
    per_step.sort()
    med, p95 = statistics.median(per_step), per_step[max(0, round(0.95 * len(per_step)) - 1)]
    print(f"{len(TICKETS)} tickets on {SMALL}, {len(per_step)} model requests")
    print(f"context per step: median {med:.0f} tokens, p95 {p95} tokens, max {per_step[-1]}")
    print(
        f"naive dump of the related files: median {statistics.median(naive):.0f} tokens "
        f"(per ticket {sorted(naive)}); ratio {statistics.median(naive) / med:.1f}x"
    )
    print(f"agent context median: {med:.0f} tokens")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
