"""Re-record the demo's model sessions (examples/recordings/SVC-101.jsonl, SVC-102.jsonl).

    python examples/recordings/record.py [--data-dir DIR]

A recording is what a model said in a real run: this drives `agent.loop.run_ticket` against the four
real servers (the same world `goresolve demo` builds) with a scripted model whose steps are below,
wrapped in `Recorder`, which writes each request and response to the cassette. `goresolve demo`
replays the cassettes with `ReplayModel`, which refuses any request that differs from the recorded one:
after a change to the tools, the prompt or the sample service, run this again and commit the result
(tests/agent/test_demo_replay.py fails until then).

SVC-101 is fixed the way a capable model fixes it: reproduce, read, one guard, tests, submit.
SVC-102 is the run of a model that does not find the fix within the run's budget of three failed
test-driven attempts: it restructures Sweep (the race stays), "upgrades" the read lock (RWMutex has
no such method: the build fails), then refreshes a copy of the session (no race, but the idle sweep
test fails), and the loop's breaker hands the ticket to a human. Every failure here is deterministic,
so the recording replays.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from agent.cli import build_router  # noqa: E402 - after the checkout is importable
from agent.exits import RunResult  # noqa: E402
from agent.ledger import Ledger  # noqa: E402
from agent.llm import Message, Recorder, Redacting, ScriptedModel, reply  # noqa: E402
from agent.loop import RunSettings, run_ticket  # noqa: E402
from agent.policy import load_agent_policy  # noqa: E402
from agent.servers import open_servers  # noqa: E402
from goresolve.demo import REPO, Display, World, index_world, prepare_world, servers_config  # noqa: E402

HANDLER = "internal/auth/handler.go"
STORE = "internal/session/store.go"

SVC_101: list[Message] = [
    reply(
        "The trace ends in Session.Expired called from Handler.ServeHTTP. First, the failing test the ticket names.",
        ("run_tests", {"packages": ["./internal/auth"], "run": "^TestHandlerUnknownToken$"}),
    ),
    reply(
        "Store.Get returns nil for a token it never issued, and ServeHTTP calls Expired on it without a check.",
        ("view", {"path": HANDLER, "start_line": 28, "end_line": 46}),
    ),
    reply(
        "An unknown token must get the same 401 as a missing or expired one (ADR 0001).",
        (
            "edit",
            {
                "path": HANDLER,
                "search": "\tsess := h.Sessions.Get(token)\n\tif sess.Expired(now()) {",
                "replace": "\tsess := h.Sessions.Get(token)\n\tif sess == nil {\n"
                '\t\tunauthorized(w, "unknown token")\n\t\treturn\n\t}\n\tif sess.Expired(now()) {',
            },
        ),
    ),
    reply("", ("run_tests", {"packages": ["./internal/auth"]})),
    reply(
        "",
        (
            "submit",
            {
                "title": "auth: answer 401 for an unknown bearer token instead of panicking",
                "summary": "`Store.Get` returns nil for a token that was never issued or was swept, and "
                "`Handler.ServeHTTP` called `Expired` on that nil session. The handler now answers such a "
                "request like a missing or expired token: 401 with the JSON error body and the "
                "`WWW-Authenticate` header (ADR 0001). `TestHandlerUnknownToken` passes; the package's "
                "other tests still pass.",
            },
        ),
    ),
]

_SWEEP = (
    "\tnow := s.now()\n\tremoved := 0\n\tfor token, sess := range s.sessions {\n"
    "\t\tif sess.Expired(now) || now.Sub(sess.LastSeen) > s.idle {\n\t\t\tdelete(s.sessions, token)\n"
    "\t\t\tremoved++\n\t\t}\n\t}\n\treturn removed\n"
)
_SWEEP_COLLECT = (
    "\tnow := s.now()\n\tvar stale []string\n\tfor token, sess := range s.sessions {\n"
    "\t\tif sess.Expired(now) || now.Sub(sess.LastSeen) > s.idle {\n\t\t\tstale = append(stale, token)\n"
    "\t\t}\n\t}\n\tfor _, token := range stale {\n\t\tdelete(s.sessions, token)\n\t}\n\treturn len(stale)\n"
)
_TOUCH = "\tif sess != nil {\n\t\tsess.LastSeen = s.now()\n\t}\n"
_TOUCH_UPGRADE = "\tif sess != nil {\n\t\ts.mu.Upgrade()\n\t\tsess.LastSeen = s.now()\n\t}\n"
_TOUCH_COPY = "\tif sess != nil {\n\t\tseen := *sess\n\t\tseen.LastSeen = s.now()\n\t\tsess = &seen\n\t}\n"

SVC_102: list[Message] = [
    reply(
        "The race report names Store.Get. Reproducing it first.",
        ("run_tests", {"packages": ["./internal/session"], "run": "^TestStoreConcurrentGetAndSweep$"}),
    ),
    reply("", ("view", {"path": STORE, "start_line": 48, "end_line": 95})),
    reply(
        "Sweep deletes from the map while it ranges over it, as Get reads the same sessions. "
        "Collecting the stale tokens first and deleting afterwards separates the two.",
        ("edit", {"path": STORE, "search": _SWEEP, "replace": _SWEEP_COLLECT}),
    ),
    reply("", ("run_tests", {"packages": ["./internal/session"]})),
    reply(
        "Still racing, and both accesses are the LastSeen write in Get. Get must hold the lock exclusively "
        "for that write: upgrade the read lock just around it.",
        ("edit", {"path": STORE, "search": _TOUCH, "replace": _TOUCH_UPGRADE}),
    ),
    reply("", ("run_tests", {"packages": ["./internal/session"]})),
    reply(
        "RWMutex has no upgrade. Instead, Get can refresh LastSeen on its own copy of the session, so that "
        "no goroutine writes to the shared one.",
        ("edit", {"path": STORE, "search": _TOUCH_UPGRADE, "replace": _TOUCH_COPY}),
    ),
    reply("", ("run_tests", {"packages": ["./internal/session"]})),
    # the hand-off's root-cause step (no tools): what the model tells the engineer taking over
    reply(
        "Store.Get writes Session.LastSeen while holding only the read lock, so concurrent Get calls race on it. "
        "Refreshing a copy removes the race but loses the refresh, so Sweep drops active sessions. "
        "Take the write lock in Get as ADR 0002 says, or make LastSeen an atomic.Int64 in Put, Get and Sweep."
    ),
]

SCRIPTS: dict[str, list[Message]] = {"SVC-101": SVC_101, "SVC-102": SVC_102}


async def record(world: World, console: Console, out_dir: Path) -> list[RunResult]:
    policy = load_agent_policy(world.policy_dir)
    router = build_router(world.policy_dir, policy)
    ledger = Ledger(world.root / "record-ledger.sqlite")
    results: list[RunResult] = []
    async with open_servers(servers_config(world)) as box:
        for ticket, script in SCRIPTS.items():
            cassette = out_dir / f"{ticket}.jsonl"
            cassette.unlink(missing_ok=True)
            # recorded as a provider would receive it: the demo replays through build_model's Redacting too
            model = Redacting(Recorder(ScriptedModel(script), cassette))
            display = Display(console, None)
            settings = RunSettings(
                repo=REPO, state_dir=world.root / "record", ledger=ledger, on_event=display, router=router
            )
            console.rule(ticket)
            result = await run_ticket(ticket, model, box, policy, settings)
            console.print(f"{ticket}: {result.outcome} ({result.exit}: {result.reason}) → {cassette}")
            results.append(result)
    ledger.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, help="Where to build the world (default: a temporary directory).")
    parser.add_argument("--out", type=Path, default=HERE, help="Directory of the cassettes.")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="goresolve-record-") as tmp:
        world = prepare_world(args.data_dir or Path(tmp), console)
        index_world(world, console)
        results = anyio.run(record, world, console, args.out)
    expected: dict[str, Any] = {"SVC-101": "pr", "SVC-102": "escalated"}
    wrong = [r for r in results if expected[r.ticket] != r.outcome]
    for r in wrong:
        console.print(f"[red]{r.ticket} ended {r.outcome}, expected {expected[r.ticket]}[/red]")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
