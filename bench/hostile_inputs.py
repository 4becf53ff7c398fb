"""Hostile inputs against the real code paths: adversarial text, a repository of huge files, slow senders.

    .venv/bin/python bench/hostile_inputs.py [--code DIR] [--timeout 60] [--parts text,index,webhooks]
        [--huge-mb 500] [--huge-files 3] [--stalled 64] [--body-timeout 10]
    .venv/bin/python bench/hostile_inputs.py --parts units [--unit-files 10] [--embedder minilm]

Four parts, each against a baseline measured in the same run:

- text: `credentials.redact_credentials`, the publication scan (`servers.common.secrets.scan` on a body,
  `scan_patch` on a patch adding the text as one line: github-pr's path), the log redactor
  (`servers.common.logging.Redactor().text`) and jira-read's wiki conversion (`wiki_to_markdown`) on the shapes
  of tests/common/test_credentials_linear.py, test_scan_and_log_linear.py and tests/jira_read/test_wiki_linear.py,
  at the sizes the fixes quoted. Each measurement runs in its own process, killed after `--timeout` seconds.
  Baseline: the same function on ordinary text (Go code and prose; wiki markup for the wiki conversion) of the
  same length, in the same process. Prints seconds per call and the ratio.
- index: `goresolve index --embedder hashing` as a subprocess on a bare git repository holding a small Go module
  and `--huge-files` different `.go` files of `--huge-mb` MB each (one line repeated: a few MB on disk, written
  by `git fast-import` from a stream). Prints peak RSS (the process and its children, from wait4) and wall time.
  Baseline: indexing the commit with the small module alone.
- units (not run by default): `goresolve index` and three `goresolve search` runs, each a subprocess, on a git
  repository holding the small module and `--unit-files` packages, each with a Go table of 20,000 short lines in
  one declaration (740 KB) and a Markdown file of 9,000 lines without a heading (760 KB): units no line of which
  is long. Prints peak RSS (wait4), wall time and the index's chunk count. Baseline: the small module alone.
- webhooks: `goresolve serve webhooks` (SQLite queue) with `--stalled` connections from 127.0.0.1 that each
  declare 2 MiB with a bad signature, send 1 MiB and stall; meanwhile signed pushes from 127.0.0.2. Prints the
  signed deliveries' statuses and latencies, and what the stalled senders got back and when. Baseline: the
  same signed pushes with no stalled senders.

`--code DIR` imports goresolve's modules from DIR (a `git worktree` of another commit) in every subprocess, so
the same command measures code before a fix.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import hmac
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import cast

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
SECRET = "bench-webhook-secret-0123456789"

# ---------------------------------------------------------------------------------------------- text shapes

_SHA = '\t"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",\n'
SHAPES: dict[str, Callable[[], str]] = {
    # redact_credentials before f39792c: exponential (6 lines: 73 s and 56 s), key and 2,000 spaces: 52 s
    "PRIVATE KEY + 6 base64 lines": lambda: "PRIVATE KEY\n" + ("A" * 40 + "\n") * 6,
    "sha256 vectors after a PRIVATE KEY comment (6)": lambda: (
        "// Vectors signed with the PRIVATE KEY in testdata\nvar d = []string{\n" + _SHA * 6
    ),
    "key + 2,000 spaces": lambda: "key" + " " * 2000 + "!",
    # the scan and the log redactor before 3be6684: quadratic (40,000 characters: 2.9 s, 4.6 s; "<!--": 1.7 s)
    '"sk-" x 13,333': lambda: "sk-" * 13_333 + "!",
    '"/" x 40,000': lambda: "/" * 40_000 + "/:_authToken=!",
    '"eyJ" x 13,333': lambda: "eyJ" * 13_333,
    '"<!--" x 10,000': lambda: "<!--" * 10_000,
    # jira-read's wiki conversion before b5a67e5: quadratic (24 s and 7 s)
    "unclosed {noformat:x}, 200,000 chars": lambda: "{noformat:x}" * (200_000 // 12),
    'unclosed "{{", 40,000 chars': lambda: "{{" * 20_000,
}
SCRUBBERS = ("redact_credentials", "secrets.scan", "secrets.scan_patch", "log Redactor")
WIKI_SHAPES = ("unclosed {noformat:x}, 200,000 chars", 'unclosed "{{", 40,000 chars')
CELLS: list[tuple[str, str]] = [
    *((target, shape) for shape in SHAPES if shape not in WIKI_SHAPES for target in SCRUBBERS),
    *(("wiki_to_markdown", shape) for shape in WIKI_SHAPES),
]

_CODE_LINES = (
    "// ServeHTTP dispatches the handler registered in the matched route.",
    "func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {",
    '\tpath := cleanPath(req.URL.Path); log.Printf("route %s matched", path)',
    "The handler answers 404 when no route matches, and 405 when only the method differs.",
    '\tif err := r.Walk(walkFn); err != nil { return fmt.Errorf("walk: %w", err) }',
    "}",
)
_WIKI_LINES = (
    "h2. Steps to reproduce",
    "* call {{Router.ServeHTTP}} with a *trailing* slash, see [the docs|https://example.com/docs]",
    "{code:go}",
    'r.HandleFunc("/x/", h)',
    "{code}",
    "The route is _not_ matched; expected -404- 200.",
)


def ordinary(length: int, wiki: bool) -> str:
    """Ordinary text of exactly `length` characters: Go code and prose, or Jira wiki markup."""
    lines = _WIKI_LINES if wiki else _CODE_LINES
    block = "\n".join(f"{line} {n}" for n, line in enumerate(lines * 40)) + "\n"
    return (block * (length // len(block) + 1))[:length]


def _patch(added: str) -> str:
    return f"--- a/x.go\n+++ b/x.go\n@@ -0,0 +1,1 @@\n+{added}\n"


def target_function(target: str) -> Callable[[str], object]:
    """The real code path `target` names, imported from whatever code is first on sys.path."""
    if target == "redact_credentials":
        from credentials import redact_credentials

        return redact_credentials
    if target == "secrets.scan":
        from servers.common.secrets import scan

        return lambda text: scan(text, "body")
    if target == "secrets.scan_patch":
        from servers.common.secrets import scan_patch

        return lambda text: scan_patch(_patch(text.replace("\n", " ")))
    if target == "log Redactor":
        from servers.common.logging import Redactor

        redactor = Redactor(["hunter2-secret"])
        return redactor.text
    from servers.jira_read.text import wiki_to_markdown

    return wiki_to_markdown


def per_call(work: Callable[[str], object], text: str) -> float:
    """Seconds per call of `work(text)`: calls repeated until 0.3 s have passed (one call if it is slower)."""
    calls, start = 0, time.perf_counter()
    while True:
        work(text)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= 0.3:
            return elapsed / calls


def run_cell(target: str, shape: str) -> None:
    """Child process: one target on one shape and on ordinary text of its length; prints JSON."""
    work = target_function(target)
    text = SHAPES[shape]()
    base = ordinary(len(text), wiki=target == "wiki_to_markdown")
    work(base)  # warm: imports, compiled regexes
    baseline = per_call(work, base)
    hostile = per_call(work, text)
    print(json.dumps({"chars": len(text), "shape_s": hostile, "ordinary_s": baseline}))


def env_for(code: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess importing goresolve from `code`, none of this machine's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GORESOLVE_")}
    return {**env, "PYTHONPATH": str(code), **extra}


def _seconds(s: float) -> str:
    return f"{s * 1000:.2f} ms" if s < 1 else f"{s:.2f} s"


def text_part(code: Path, timeout: float) -> None:
    print(f"== text: seconds per call, ratio to ordinary text of the same length (timeout {timeout:.0f} s)")
    print(f"{'target':<20} {'shape':<48} {'chars':>8} {'hostile':>12} {'ordinary':>10} {'ratio':>9}")
    for target, shape in CELLS:
        argv = [sys.executable, str(Path(__file__).resolve()), "--cell", target, shape]
        try:
            done = subprocess.run(argv, env=env_for(code), capture_output=True, text=True, timeout=timeout, check=True)
        except subprocess.TimeoutExpired:
            chars = len(SHAPES[shape]())
            print(f"{target:<20} {shape:<48} {chars:>8} {f'> {timeout:.0f} s (timed out)':>33}")
            continue
        got = json.loads(done.stdout.strip().splitlines()[-1])
        ratio = got["shape_s"] / got["ordinary_s"]
        print(
            f"{target:<20} {shape:<48} {got['chars']:>8} {_seconds(got['shape_s']):>12} "
            f"{_seconds(got['ordinary_s']):>10} {ratio:>8.1f}x"
        )


# ---------------------------------------------------------------------------------------------- index


def _small_module() -> dict[str, bytes]:
    files = {"go.mod": b"module example.com/small\n\ngo 1.22\n"}
    for i in range(12):
        funcs = "".join(
            f"// Handle{i}_{j} answers request {j} of kind {i}.\n"
            f"func Handle{i}_{j}(w http.ResponseWriter, r *http.Request) {{\n"
            f'\tif r.URL.Path == "/{i}/{j}" {{\n\t\tw.WriteHeader(http.StatusOK)\n\t\treturn\n\t}}\n'
            f"\thttp.NotFound(w, r)\n}}\n\n"
            for j in range(15)
        )
        files[f"pkg{i % 3}/handlers{i}.go"] = f'package pkg{i % 3}\n\nimport "net/http"\n\n{funcs}'.encode()
    return files


def build_repo(where: Path, huge_mb: int, huge_files: int) -> None:
    """A bare repository: refs/heads/small holds the small module, refs/heads/main it and the huge files."""
    subprocess.run(["git", "init", "-q", "--bare", str(where)], check=True)
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--big-file-threshold=1m"], cwd=where, stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    out = proc.stdin
    small = _small_module()
    mark = 0
    small_marks: dict[str, int] = {}
    for path, data in small.items():
        mark += 1
        small_marks[path] = mark
        out.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
    huge_marks: dict[str, int] = {}
    size = huge_mb * 1_000_000
    line = b"var _ = generatedTable[0] // one line repeated\n"
    chunk = line * (MIB // len(line))
    for i in range(huge_files):
        mark += 1
        huge_marks[f"gen/huge{i}.go"] = mark
        head = b"// Code generated for file %d. DO NOT EDIT.\npackage gen\n\n" % i
        out.write(b"blob\nmark :%d\ndata %d\n" % (mark, size) + head)
        left = size - len(head)
        while left > 0:
            piece = chunk[:left]
            out.write(piece)
            left -= len(piece)
        out.write(b"\n")
    for ref, marks in (("small", small_marks), ("main", {**small_marks, **huge_marks})):
        message = f"{ref}\n".encode()
        out.write(
            b"commit refs/heads/%s\ncommitter Bench <bench@example.com> 1767225600 +0000\ndata %d\n%s"
            % (ref.encode(), len(message), message)
        )
        out.write(b"".join(b"M 100644 :%d %s\n" % (m, p.encode()) for p, m in marks.items()) + b"\n")
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")


def measured(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, float, int, str]:
    """Exit status, wall seconds, peak RSS in MB (the process and its reaped children) and the output's tail."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as sink:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        sink.seek(0)
        tail = sink.read().decode(errors="replace").strip().splitlines()[-1:]
    return proc.returncode, seconds, usage.ru_maxrss // 1024, tail[0] if tail else ""


def index_part(code: Path, huge_mb: int, huge_files: int) -> None:
    print(f"== index: goresolve index --embedder hashing, {huge_files} x {huge_mb} MB .go files + a small module")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "hostile.git"
        start = time.perf_counter()
        build_repo(repo, huge_mb, huge_files)
        on_disk = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file()) / 1e6
        print(f"repository built in {time.perf_counter() - start:.1f} s, {on_disk:.1f} MB on disk")
        print(f"{'commit':<40} {'exit':>4} {'wall':>8} {'peak RSS':>10}  indexed")
        for label, commit in (("small module only (baseline)", "small"), ("with the huge files", "main")):
            db = Path(tmp) / f"db-{commit}"
            argv = [sys.executable, "-m", "goresolve.cli", "index", str(repo), "--repo", "x", "--commit", commit]
            argv += ["--embedder", "hashing", "--db", str(db)]
            status, seconds, rss_mb, tail = measured(argv, env_for(code), Path(tmp))
            files = tail.split("): ", 1)[-1].split(";")[0]  # "N files, N changed, N removed, N skipped"
            print(f"{label:<40} {status:>4} {seconds:>7.1f}s {rss_mb:>7} MB  {files[:80]}")


# ---------------------------------------------------------------------------------------------- units

UNIT_QUERIES = ("map of keys to values lookup table", "operations notes about retries", "value number 019999")


def build_unit_repo(where: Path, files: int) -> None:
    """A git repository: branch small holds the small module, branch main it and the packages of large units."""
    run = functools.partial(subprocess.run, cwd=where, check=True, capture_output=True)
    where.mkdir()
    run(["git", "init", "-q", "-b", "small"])
    for path, data in _small_module().items():
        (where / path).parent.mkdir(parents=True, exist_ok=True)
        (where / path).write_bytes(data)
    who = ["-c", "user.email=bench@example.com", "-c", "user.name=Bench"]
    run(["git", "add", "-A"])
    run(["git", *who, "commit", "-q", "-m", "small"])
    run(["git", "checkout", "-q", "-b", "main"])
    rows = "\n".join(f'\t"key{i:06d}": "value number {i:06d}",' for i in range(20_000))
    for n in range(files):
        pkg = where / f"tables{n}"
        pkg.mkdir()
        table = f"package tables{n}\n\n// Table maps keys.\nvar Table = map[string]string{{\n{rows}\n}}\n"
        (pkg / "table.go").write_text(table + "\nfunc Lookup(k string) string { return Table[k] }\n")
        notes = (f"Line {i} of the operations notes for {n} says something about retries." for i in range(9_000))
        (pkg / "NOTES.md").write_text("\n".join(notes) + "\n")
    run(["git", "add", "-A"])
    run(["git", *who, "commit", "-q", "-m", "large units"])


def units_part(code: Path, files: int, embedder: str) -> None:
    print(f"== units: goresolve index and search --embedder {embedder}, {files} packages of large units")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "units"
        build_unit_repo(repo, files)
        print(f"{'commit, step':<44} {'exit':>4} {'wall':>8} {'peak RSS':>10}  output")
        for label, commit in (("small module only (baseline)", "small"), ("with the large units", "main")):
            db = Path(tmp) / f"db-{commit}"
            common = ["--repo", "x", "--embedder", embedder, "--db", str(db)]
            argv = [sys.executable, "-m", "goresolve.cli", "index", str(repo), "--commit", commit, *common]
            status, seconds, rss_mb, tail = measured(argv, env_for(code), Path(tmp))
            print(f"{label + ', index':<44} {status:>4} {seconds:>7.1f}s {rss_mb:>7} MB  {tail[:90]}")
            for query in UNIT_QUERIES:
                argv = [sys.executable, "-m", "goresolve.cli", "search", query, *common, "--k", "5", "--json"]
                status, seconds, rss_mb, _ = measured(argv, env_for(code), Path(tmp))
                print(f"{'  search ' + repr(query):<44} {status:>4} {seconds:>7.1f}s {rss_mb:>7} MB")


# ---------------------------------------------------------------------------------------------- webhooks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gateway(code: Path, where: Path, body_timeout: float) -> Iterator[str]:
    """`goresolve serve webhooks` on a SQLite queue under `where`; yields its base URL once /readyz answers."""
    import httpx

    port = _free_port()
    env = env_for(
        code,
        GORESOLVE_QUEUE_SQLITE_DIR=str(where / "queue"),
        GORESOLVE_WEBHOOKS_GITHUB_SECRET=SECRET,
        GORESOLVE_WEBHOOKS_BODY_TIMEOUT_S=str(body_timeout),
    )
    with (where / "gateway.log").open("wb") as sink:
        argv = [sys.executable, "-m", "goresolve.cli", "serve", "webhooks", "--port", str(port)]
        proc = subprocess.Popen(argv, cwd=where, env=env, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the gateway did not start: see {where / 'gateway.log'}")
            time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _push() -> bytes:
    """A push of a new commit to acme/svc, conforming to GitHub's schema (the tests' example payloads)."""
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))
    from tests.webhooks.support import push

    return json.dumps(push(after=uuid.uuid4().hex + "0" * 8)).encode()


def signed(base: str, source: str) -> tuple[int, float]:
    """A signed push (a new commit each time) from `source`: its status and latency in seconds."""
    import httpx

    raw = _push()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "4242",
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as client:
        start = time.perf_counter()
        try:
            status = client.post(f"{base}/webhooks/github", content=raw, headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        return status, time.perf_counter() - start


def stall(base: str) -> socket.socket:
    """Declares a 2 MiB body with a bad signature, sends 1 MiB of it and goes idle."""
    host, port = base.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=1)  # a server not reading: send what fits
    head = (
        b"POST /webhooks/github HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n"
        b"X-Hub-Signature-256: sha256=00\r\nContent-Length: 2097152\r\n\r\n"
    )
    with suppress(OSError):  # the server may answer and close, or not read, before it is all sent
        conn.sendall(head + b"x" * MIB)
    return conn


def answers(conns: list[socket.socket], opened: float, deadline: float) -> dict[str, list[float]]:
    """The status line each connection got before `deadline` ("none": no answer, "closed": hung up without
    one), with the seconds since `opened` it came at; the connections are read at once."""
    raw = {conn: b"" for conn in conns}
    got: dict[str, list[float]] = {}
    with selectors.DefaultSelector() as sel:
        for conn in conns:
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
        while raw and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                conn = cast(socket.socket, key.fileobj)
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    chunk = b""
                raw[conn] += chunk
                if b"\r\n" in raw[conn] or not chunk:
                    status = raw[conn].split()[1].decode() if b"\r\n" in raw[conn] else "closed"
                    got.setdefault(status, []).append(time.monotonic() - opened)
                    sel.unregister(conn)
                    del raw[conn]
    if raw:
        got["none"] = [deadline - opened] * len(raw)
    return got


def _latencies(results: list[tuple[int, float]]) -> str:
    statuses = ",".join(str(s) for s, _ in results)
    lat = [t for _, t in results]
    return f"status {statuses}; latency p50 {_seconds(statistics.median(lat))}, max {_seconds(max(lat))}"


def webhook_part(code: Path, stalled: int, body_timeout: float, deliveries: int = 5) -> None:
    print(f"== webhooks: {deliveries} signed pushes from 127.0.0.2; {stalled} stalled senders from 127.0.0.1")
    print(f"   (each declares 2 MiB, sends 1 MiB, stalls; body deadline setting {body_timeout:.0f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        quiet, busy = Path(tmp) / "quiet", Path(tmp) / "busy"
        quiet.mkdir()
        busy.mkdir()
        with gateway(code, quiet, body_timeout) as base:
            results = [signed(base, "127.0.0.2") for _ in range(deliveries)]
            print(f"no stalled senders (baseline): {_latencies(results)}")
        with gateway(code, busy, body_timeout) as base, ExitStack() as stack:
            opened = time.monotonic()
            conns: list[socket.socket] = []
            for _ in range(stalled):
                conns.append(stack.enter_context(stall(base)))
            time.sleep(0.5)  # the server has read what each sent
            results = [signed(base, "127.0.0.2") for _ in range(deliveries)]
            print(f"{stalled} stalled senders open:  {_latencies(results)}")
            deadline = opened + body_timeout + 20
            got = answers(conns, opened, deadline)
            outcome = ", ".join(
                f"{len(times)} x {status} (read {min(times):.1f}-{max(times):.1f} s after opening)"
                if status != "none"
                else f"{len(times)} x no answer"
                for status, times in sorted(got.items())
            )
            print(f"stalled senders got (within {body_timeout + 20:.0f} s of opening): {outcome}")
            again = signed(base, "127.0.0.1")
            print(f"a signed push from the stalled address afterwards: {_latencies([again])}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--code", type=Path, default=REPO, help="import goresolve's modules from this checkout")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per text measurement")
    p.add_argument("--parts", default="text,index,webhooks")
    p.add_argument("--huge-mb", type=int, default=500)
    p.add_argument("--huge-files", type=int, default=3)
    p.add_argument("--unit-files", type=int, default=10)
    p.add_argument("--embedder", default="hashing", help="the units part's embedder (minilm, static, hashing)")
    p.add_argument("--stalled", type=int, default=64)
    p.add_argument("--body-timeout", type=float, default=10.0, help="GORESOLVE_WEBHOOKS_BODY_TIMEOUT_S")
    p.add_argument("--cell", nargs=2, metavar=("TARGET", "SHAPE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.cell:
        run_cell(*args.cell)
        return
    code = args.code.resolve()
    commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"code: {commit.stdout.strip() or 'not a git checkout'} (load average {os.getloadavg()[0]:.1f})")
    parts = set(args.parts.split(","))
    if "text" in parts:
        text_part(code, args.timeout)
    if "index" in parts:
        index_part(code, args.huge_mb, args.huge_files)
    if "units" in parts:
        units_part(code, args.unit_files, args.embedder)
    if "webhooks" in parts:
        webhook_part(code, args.stalled, args.body_timeout)


if __name__ == "__main__":
    main()
