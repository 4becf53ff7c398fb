"""Record the sessions that replay eval tasks in CI: `python -m agent.eval.record TASKS --only ID[,ID] --out DIR`.

A recording is what a model said in a real run. Here the "model" is scripted with the task's own fix:
each hunk of the gold patch becomes one `edit` (search: the hunk's old lines, replace: its new lines),
then `run_tests`, then `submit`. The run is the real one (`agent_solver`: the agent over the four
stdio servers, judged by the harness), wrapped in `Recorder`, so `goresolve eval --recordings DIR`
replays it exactly; a change to the tools, the prompt or the triage context makes the replay refuse
(tests/eval/test_eval_agent.py), and this script makes the recordings again.

Recordings index with `REPLAY_EMBEDDER` (feature hashing, the same on every CPU), as `goresolve eval
--recordings` does.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from agent.eval.agent_solver import REPLAY_EMBEDDER, AgentOptions, agent_solver
from agent.eval.harness import EvalOptions, evaluate
from agent.eval.tasks import Task, load_tasks
from agent.eval.workspace import go_env
from agent.llm import ChatModel, Message, Recorder, Redacting, ScriptedModel, reply

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")


class PatchShapeError(ValueError):
    """The gold patch has a change a search/replace edit cannot express (a deleted or renamed file)."""


def edits_from_patch(patch: str) -> list[dict[str, str]]:
    """One `edit` per hunk: the hunk's old lines (context and removed) → its new lines (context and added).

    Raises:
        PatchShapeError: a deleted or renamed file, or a hunk outside any file.
    """
    edits: list[dict[str, str]] = []
    path: str | None = None
    old: list[str] = []
    new: list[str] = []
    in_hunk = False

    def flush() -> None:
        if in_hunk and path is not None:
            edits.append({"path": path, "search": "".join(old), "replace": "".join(new)})

    for line in patch.splitlines(keepends=True):
        text = line.rstrip("\n")
        if text.startswith("diff --git ") or text.startswith("--- "):
            flush()
            in_hunk, old, new = False, [], []
            if text.startswith("--- ") and text != "--- /dev/null" and not text.startswith("--- a/"):
                raise PatchShapeError(f"unexpected header {text[:80]!r}")
            continue
        if text.startswith("+++ "):
            if text == "+++ /dev/null":
                raise PatchShapeError("the patch deletes a file")
            path = text.removeprefix("+++ b/")
            continue
        if text.startswith(("rename ", "deleted file", "similarity index")):
            raise PatchShapeError(f"cannot express {text.split(' ')[0]} as an edit")
        if _HUNK.match(text):
            flush()
            in_hunk, old, new = True, [], []
            continue
        if not in_hunk or text.startswith("\\"):
            continue
        body = line[1:] if line else ""
        if line.startswith(" "):
            old.append(body)
            new.append(body)
        elif line.startswith("-"):
            old.append(body)
        elif line.startswith("+"):
            new.append(body)
    flush()
    if not edits:
        raise PatchShapeError("the patch has no hunks")
    return edits


def script_for(task: Task) -> list[Message]:
    calls: list[tuple[str, dict[str, Any] | str]] = [("edit", e) for e in edits_from_patch(task.gold_patch)]
    summary = f"{task.problem_statement.strip()[:3000]}\n\nThe change is the minimal fix the ticket describes."
    title = (task.problem_statement.strip().splitlines() or [task.instance_id])[0][:100]
    return [
        reply("The ticket points at this code; the fix follows.", *calls),
        reply("", ("run_tests", {})),
        reply(
            "", ("submit", {"title": title if len(title) >= 5 else f"fix {task.instance_id}"[:100], "summary": summary})
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record replayable eval sessions from the tasks' own fixes.")
    parser.add_argument("tasks", type=Path)
    parser.add_argument("--only", required=True, help="Comma-separated instance ids.")
    parser.add_argument("--out", type=Path, required=True, help="Directory of the recordings.")
    args = parser.parse_args(argv)
    wanted = {s.strip() for s in str(args.only).split(",") if s.strip()}
    tasks = [t for t in load_tasks(args.tasks) if t.instance_id in wanted]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def recorder(task: Task) -> ChatModel:
        cassette = out / f"{task.instance_id}.jsonl"
        cassette.unlink(missing_ok=True)
        # recorded as a provider would receive it: the replay goes through build_model's Redacting too
        return Redacting(Recorder(ScriptedModel(script_for(task)), cassette))

    with tempfile.TemporaryDirectory(prefix="goresolve-eval-record-") as tmp:
        gocache, gomodcache = anyio.run(go_env, "GOCACHE"), anyio.run(go_env, "GOMODCACHE")
        protected = Path(__file__).resolve().parents[2] / "policies" / "protected.yaml"
        options = EvalOptions(out_dir=Path(tmp), protected_policy=protected, gocache=gocache, gomodcache=gomodcache)
        agent = AgentOptions(model_for=recorder, gocache=gocache, gomodcache=gomodcache, embedder=REPLAY_EMBEDDER)
        solver = agent_solver(agent, Path(tmp))
        results = anyio.run(evaluate, tasks, options, solver)
    for r in results:
        sys.stdout.write(f"{r.instance_id}: {r.outcome} ({r.detail[:200]})\n")
    return 0 if results and all(r.outcome == "resolved" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
