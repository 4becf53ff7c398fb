"""Re-record the `go test -json` corpus from the fixture modules with the real Go toolchain.

    .venv/bin/python tests/testdata/gotest_streams/record.py

Each scenario writes <name>.jsonl (stdout of go test, verbatim) and <name>.meta.json (module
directory at record time — the parser's `root` — argv, exit code, go version, stderr).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
MODS = HERE.parent / "gomods"

# name: (module, extra go test args, extra env)
SCENARIOS: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "pass": ("pass", ["-count=1", "./..."], {}),
    "pass_cached": ("pass", ["./..."], {}),
    "fail": ("fail", ["-count=1", "./..."], {}),
    "fail_run_subtest": ("fail", ["-count=1", "-run", "TestSub/5-3", "./..."], {}),
    "panic": ("panic", ["-count=1", "./..."], {}),
    "race": ("race", ["-count=1", "-race", "./..."], {}),
    "buildfail": ("buildfail", ["-count=1", "./..."], {}),
    "hang": ("hang", ["-count=1", "-timeout", "2s", "./wait/..."], {}),
    "unknownimport": ("unknownimport", ["-count=1", "./..."], {}),
    "bigoutput_small": ("bigoutput", ["-count=1", "./..."], {"NOISY_MB": "0", "NOISY_LOG_LINES": "300"}),
    "shuffle_cover": ("pass", ["-count=1", "-shuffle=1", "-cover", "./..."], {}),
}


def record(name: str, module: str, args: list[str], extra: dict[str, str]) -> None:
    cwd = MODS / module
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "GOCACHE", "GOMODCACHE", "GOPATH", "TMPDIR")}
    env |= {"GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local", "GOPROXY": "off", "CGO_ENABLED": "1", **extra}
    if name == "pass_cached":
        subprocess.run(["go", "test", *args], cwd=cwd, env=env, capture_output=True, check=False, timeout=300)
    argv = ["go", "test", "-json", *args]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)
    version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    (HERE / f"{name}.jsonl").write_text(proc.stdout, encoding="utf-8")
    meta = {
        "module": module,
        "root": str(cwd),
        "argv": argv,
        "env": extra,
        "exit_code": proc.returncode,
        "go_version": version,
        "stderr": proc.stderr[-4000:],
    }
    (HERE / f"{name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"{name:20} exit={proc.returncode} lines={proc.stdout.count(chr(10))}")


def main() -> None:
    for name, (module, args, extra) in SCENARIOS.items():
        record(name, module, args, extra)


if __name__ == "__main__":
    main()
