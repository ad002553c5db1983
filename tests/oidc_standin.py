"""A small OpenID Connect provider on loopback, standing in for Microsoft Entra ID.

Entra ID cannot be reached from the tests; this speaks the part of OpenID
Connect that the dashboard's sign-in uses, at Entra ID's paths under
``http://127.0.0.1:PORT/{tenant}/``:

- ``v2.0/.well-known/openid-configuration``: the discovery document;
- ``discovery/v2.0/keys``: the JWKS holding the RSA key that signs ID tokens;
- ``oauth2/v2.0/authorize``: a page with one "Sign in as ..." button per user
  (a browser clicks one), answering the ``redirect_uri`` with a one-time code;
- ``oauth2/v2.0/token``: the code and the client's secret for an ID token
  (RS256: ``sub``, ``preferred_username``, ``roles``, ``groups``, ``tid``)
  and an access token.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.conftest import free_port


@dataclass
class OidcProvider:
    client_id: str
    client_secret: str
    users: dict[str, dict[str, Any]]
    """preferred_username -> extra claims (roles, groups)."""
    tenant: str = "tests-tenant"
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(4)
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (user, redirect_uri)
        self.tokens_issued = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.tenant}"

    @property
    def authority(self) -> str:
        """What ``AGENTDASH_OAUTH_AUTHORITY`` names (Entra ID's form, on loopback)."""
        return f"http://127.0.0.1:{self.port}/{{tenant}}/v2.0"

    @property
    def issuer(self) -> str:
        return f"{self.base}/v2.0"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{self.base}/oauth2/v2.0/token",
            "jwks_uri": f"{self.base}/discovery/v2.0/keys",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def id_token(self, user: str, audience: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience or self.client_id,
            "sub": f"sub-{user}",
            "preferred_username": user,
            "tid": self.tenant,
            "iat": now,
            "exp": now + 3600,
            **self.users[user],
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def start(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, status: int, body: str, kind: str = "application/json") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                path = url.path.removeprefix(f"/{provider.tenant}")
                if path == "/v2.0/.well-known/openid-configuration":
                    self.answer(200, json.dumps(provider.discovery()))
                elif path == "/discovery/v2.0/keys":
                    self.answer(200, json.dumps(provider.jwks()))
                elif path == "/oauth2/v2.0/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    if query.get("client_id") != provider.client_id:
                        self.answer(400, json.dumps({"error": "unauthorized_client"}))
                        return
                    self.answer(200, provider.login_page(query), "text/html; charset=utf-8")
                else:
                    self.answer(404, json.dumps({"error": "not found"}))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                path = urlparse(self.path).path.removeprefix(f"/{provider.tenant}")
                if path == "/oauth2/v2.0/authorize":
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = (form["user"], form["redirect_uri"])
                    target = form["redirect_uri"]
                    target += ("&" if "?" in target else "?") + urlencode(
                        {"code": code, "state": form["state"]}
                    )
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/oauth2/v2.0/token":
                    self.token(form)
                else:
                    self.answer(404, json.dumps({"error": "not found"}))

            def token(self, form: dict[str, str]) -> None:
                if (form.get("client_id"), form.get("client_secret")) != (
                    provider.client_id,
                    provider.client_secret,
                ):
                    self.answer(401, json.dumps({"error": "invalid_client"}))
                    return
                user, redirect_uri = provider.codes.pop(form.get("code", ""), ("", ""))
                if not user or form.get("redirect_uri") != redirect_uri:
                    self.answer(400, json.dumps({"error": "invalid_grant"}))
                    return
                provider.tokens_issued += 1
                access = provider.id_token(user, audience="api://agentdash")
                body = {
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "access_token": access,
                    "id_token": provider.id_token(user),
                }
                self.answer(200, json.dumps(body))

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def login_page(self, query: dict[str, str]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""))}">'
            for name in ("redirect_uri", "state")
        )
        buttons = "".join(
            f'<form method="post">{hidden}<input type="hidden" name="user" '
            f'value="{html.escape(user)}"><button>Sign in as {html.escape(user)}</button></form>'
            for user in self.users
        )
        return f"<!doctype html><title>Sign in</title><h1>Stand-in directory</h1>{buttons}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
