"""The credential rules taken from detect-secrets, kept as data in `rules.json`.

detect-secrets (Yelp) maintains one regex-based plugin per credential issuer. Importing it costs
every process half a second (it pulls `requests` and its whole plugin registry), so its rules are
copied into `rules.json` once, by

    python -m credentials.rules                 # needs the dev extra (detect-secrets)

and a test fails when the committed file differs from what the installed detect-secrets defines.
Capture groups are made non-capturing on the way: the log redactor keeps the first group of a match
as a label, and for some plugins that group is the secret itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

RULES_FILE = Path(__file__).with_name("rules.json")

# Plugins that are not credentials (public IP addresses) or not regex rules (entropy, keywords).
_SKIPPED = {"IPPublicDetector", "KeywordDetector", "Base64HighEntropyString", "HexHighEntropyString"}


def non_capturing(pattern: str) -> str:
    """`pattern` with every capturing group `(` turned into `(?:` (escapes and classes respected).

    Raises:
        ValueError: the pattern uses a back-reference, which would lose its group.
    """
    if re.search(r"\\[1-9]|\(\?P=", pattern):
        raise ValueError(f"back-reference in {pattern!r}")
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]" or (out[-1] == "[")
        elif ch == "[":
            in_class = True
        elif ch == "(" and not pattern.startswith("?", i + 1):
            out.append("(?:")
            i += 1
            continue
        elif ch == "(" and pattern.startswith("?P<", i + 1):
            end = pattern.index(">", i)
            out.append("(?:")
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def from_detect_secrets() -> dict[str, Any]:
    """The rule document for the installed detect-secrets (imported here only)."""
    import importlib.metadata

    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class  # pyright: ignore
    from detect_secrets.plugins.base import RegexBasedDetector  # pyright: ignore

    rules: list[dict[str, Any]] = []
    mapping: dict[str, Any] = get_mapping_from_secret_type_to_class()
    for secret_type, plugin in sorted(mapping.items()):
        if plugin.__name__ in _SKIPPED or not issubclass(plugin, RegexBasedDetector):
            continue
        denylist: Any = plugin.denylist
        for compiled in denylist:
            pattern = non_capturing(compiled.pattern)
            re.compile(pattern, compiled.flags)  # fails here, not at import, if the rewrite broke it
            flags = compiled.flags & (re.IGNORECASE | re.VERBOSE | re.MULTILINE | re.DOTALL)
            rules.append({"kind": secret_type, "plugin": plugin.__name__, "pattern": pattern, "flags": int(flags)})
    version = importlib.metadata.version("detect-secrets")
    return {"source": f"detect-secrets {version} (Yelp), regex plugins", "rules": rules}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    RULES_FILE.write_text(render(from_detect_secrets()), encoding="utf-8")
    print(f"wrote {RULES_FILE}")
