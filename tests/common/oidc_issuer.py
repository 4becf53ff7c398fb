"""A tiny OIDC issuer on 127.0.0.1 for the tests: discovery document, JWKS, and token signing.

    with LocalIssuer() as issuer:
        token = issuer.token(sub="alice", aud="goresolve:jira-read", groups=["eng"])

It serves `/.well-known/openid-configuration` (whose `issuer` is its own base URL) and `/jwks`, with
one RSA (RS256) and one EC P-256 (ES256) key; `rotate()` replaces the keys under new key ids, as an
IdP does. `hits` counts requests per path, so tests can see caching and refreshing.

An outage is switched on per path: `failing` (answered 500), `held` (the reply waits until `release()`,
at most `hold_s`) and `trickle` (headers at once, then the body a byte per `trickle_s`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class LocalIssuer:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.failing: set[str] = set()
        self.held: set[str] = set()
        self.trickle: set[str] = set()
        self.replies: dict[str, bytes] = {}  # path -> the raw body answered instead
        self.hold_s = 120.0
        self.trickle_s = 0.5
        self._released = threading.Event()
        self._keys: dict[str, tuple[str, Any]] = {}  # kid -> (alg, private key)
        self._server: ThreadingHTTPServer | None = None
        self.url = ""
        self.rotate()

    def rotate(self) -> None:
        """New RS256 and ES256 keys under new key ids; the old ones leave the JWKS."""
        self._keys = {
            f"rsa-{uuid.uuid4().hex[:8]}": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            f"ec-{uuid.uuid4().hex[:8]}": ("ES256", ec.generate_private_key(ec.SECP256R1())),
        }

    def release(self) -> None:
        """Answer the held requests now (and any later ones at once)."""
        self.held.clear()
        self._released.set()

    def kid(self, alg: str) -> str:
        return next(k for k, (a, _) in self._keys.items() if a == alg)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, (alg, private) in self._keys.items():
            algo = RSAAlgorithm if alg == "RS256" else ECAlgorithm
            jwk = json.loads(algo.to_jwk(private.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def token(
        self, *, alg: str = "RS256", kid: str | None = None, ttl_s: int = 300, issuer: str | None = None, **claims: Any
    ) -> str:
        """A signed token; `claims` default to sub=alice, aud=goresolve:jira-read."""
        now = int(time.time())
        body = {"iss": issuer or self.url, "sub": "alice", "aud": "goresolve:jira-read", "iat": now, "exp": now + ttl_s}
        body.update(claims)
        kid = kid or self.kid(alg)
        private = self._keys[kid][1] if kid in self._keys else self._keys[self.kid(alg)][1]
        return jwt.encode(body, private, algorithm=alg, headers={"kid": kid})

    # --- HTTP ---------------------------------------------------------------------------------------

    def __enter__(self) -> LocalIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.hits[self.path] += 1
                if self.path in issuer.held:
                    issuer._released.wait(issuer.hold_s)  # pyright: ignore[reportPrivateUsage]
                if self.path in issuer.failing:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/.well-known/openid-configuration":
                    body: Any = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                elif self.path == "/jwks":
                    body = issuer.jwks()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                raw = issuer.replies.get(self.path, json.dumps(body).encode())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                try:
                    if self.path in issuer.trickle:
                        for i in range(len(raw)):
                            self.wfile.write(raw[i : i + 1])
                            self.wfile.flush()
                            time.sleep(issuer.trickle_s)
                    else:
                        self.wfile.write(raw)
                except OSError:  # the client gave up
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
