"""Print the requirements of one image: an extra from pyproject.toml, with `goresolve[...]` expanded.

    python docker/requirements.py jira-read | pip install -r /dev/stdin

The package itself is installed with `--no-deps`, so an image holds exactly its extra: the jira-read
image carries no lancedb or onnxruntime. (`pip install .` still installs everything, for one machine.)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
_SELF = re.compile(r"^goresolve\[([a-z0-9,-]+)\]$")


def requirements(extra: str, extras: dict[str, list[str]], seen: frozenset[str] = frozenset()) -> list[str]:
    """The extra's requirements in order, self-references expanded once each. Raises KeyError."""
    out: list[str] = []
    for req in extras[extra]:
        match = _SELF.match(req.replace(" ", ""))
        if match is None:
            out.append(req)
            continue
        for inner in match.group(1).split(","):
            if inner not in seen and inner != extra:
                out.extend(r for r in requirements(inner, extras, seen | {extra}) if r not in out)
    return list(dict.fromkeys(out))


def main() -> int:
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    if len(sys.argv) != 2 or sys.argv[1] not in extras:
        print(f"usage: requirements.py EXTRA  (one of: {', '.join(sorted(extras))})", file=sys.stderr)
        return 2
    print("\n".join(requirements(sys.argv[1], extras)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
