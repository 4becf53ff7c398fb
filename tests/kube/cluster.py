"""A real kube-apiserver backed by a real etcd on 127.0.0.1, for the dispatcher's cluster tests.

Both binaries are built from the wrapper modules beside this file by scripts/build-kube.sh (cached
by version; the first build takes minutes). There is no kubelet, scheduler or controller manager:
Pods stay Pending and Jobs never run, so a test marks them finished through their status
subresources. Authentication is a static admin token plus ServiceAccount tokens from the
TokenRequest API; authorization is RBAC; admission is the API server's default set (PodSecurity,
ServiceAccount, ...).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Generator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://kubernetes.default.svc.cluster.local"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kube_binaries() -> Path:
    """The cached bin directory (builds on first use: minutes on 2 cores)."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "build-kube.sh")],
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/build-kube.sh failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Cluster:
    url: str
    admin_token: str
    ca_file: Path


def _wait(check: object, timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: exited {proc.returncode}\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout}s\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


@contextmanager
def _process(argv: list[str], log: Path) -> Generator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@contextmanager
def api_server(work: Path) -> Generator[Cluster]:
    """etcd + kube-apiserver on free loopback ports; yields the URL, an admin token and the serving CA."""
    bins = kube_binaries()
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is needed to make the ServiceAccount signing key")
    work.mkdir(parents=True, exist_ok=True)
    key = work / "sa.key"
    pub = work / "sa.pub"
    subprocess.run([openssl, "genrsa", "-out", str(key), "2048"], check=True, capture_output=True, timeout=60)
    subprocess.run([openssl, "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True,
                   timeout=60)  # fmt: skip
    admin_token = "admin-" + "x" * 32
    (work / "tokens.csv").write_text(f'{admin_token},admin,admin,"system:masters"\n', encoding="utf-8")
    client_port, peer_port, secure_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{client_port}"
    url = f"https://127.0.0.1:{secure_port}"
    certs = work / "certs"
    with ExitStack() as stack:
        etcd_log = work / "etcd.log"
        etcd = stack.enter_context(
            _process(
                [
                    str(bins / "etcd"),
                    "--data-dir",
                    str(work / "etcd"),
                    "--listen-client-urls",
                    etcd_url,
                    "--advertise-client-urls",
                    etcd_url,
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-advertise-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-cluster",
                    f"default=http://127.0.0.1:{peer_port}",
                    "--log-level",
                    "warn",
                    "--quota-backend-bytes",
                    str(256 << 20),
                ],
                etcd_log,
            )
        )
        _wait(lambda: _http_ok(f"{etcd_url}/health"), 60, "etcd", etcd, etcd_log)
        api_log = work / "kube-apiserver.log"
        api = stack.enter_context(
            _process(
                [
                    str(bins / "kube-apiserver"),
                    "--etcd-servers",
                    etcd_url,
                    "--bind-address",
                    "127.0.0.1",
                    "--advertise-address",
                    "127.0.0.1",
                    "--secure-port",
                    str(secure_port),
                    "--cert-dir",
                    str(certs),
                    "--token-auth-file",
                    str(work / "tokens.csv"),
                    "--authorization-mode",
                    "RBAC",
                    "--service-account-issuer",
                    ISSUER,
                    "--service-account-key-file",
                    str(pub),
                    "--service-account-signing-key-file",
                    str(key),
                    "--service-cluster-ip-range",
                    "10.0.0.0/24",
                    "--enable-priority-and-fairness=false",
                    "--watch-cache=false",
                    "--v",
                    "0",
                ],
                api_log,
            )
        )
        ca_file = certs / "apiserver.crt"

        def ready() -> bool:
            return ca_file.exists() and _http_ok(f"{url}/readyz", ca_file, admin_token)

        _wait(ready, 120, "kube-apiserver", api, api_log)
        yield Cluster(url=url, admin_token=admin_token, ca_file=ca_file)


def _http_ok(url: str, ca_file: Path | None = None, token: str | None = None) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    if context is not None:
        context.check_hostname = False  # the self-signed serving cert names "localhost" and the host name
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as resp:
            return resp.status == 200
    except OSError:
        return False
