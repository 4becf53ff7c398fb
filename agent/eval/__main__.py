"""`python -m agent.eval TASKS ...`: the same command as `goresolve eval`."""

from __future__ import annotations

import typer

from agent.eval.cli import eval_command


def main() -> None:
    typer.run(eval_command)


if __name__ == "__main__":
    main()
