"""Bearer tokens of ``AGENTDASH_AUTH=jwt``, verified with PyJWT.

A token names its user in ``sub``, their roles in ``roles`` (``viewer``,
``admin``) and their teams in ``teams``; it must carry ``exp``, and ``aud`` and
``iss`` when ``AGENTDASH_JWT_AUDIENCE``/``AGENTDASH_JWT_ISSUER`` are set.
HS256 with ``AGENTDASH_JWT_SECRET``, or RS256/ES256 with the PEM public key
named by ``AGENTDASH_JWT_PUBLIC_KEY``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import jwt

from app.auth.identity import Identity
from pipelines.errors import AuthError, ConfigError, RoleError
from pipelines.settings import Settings

COOKIE = "agentdash_token"
"""The cookie a browser carries the token in."""


class TokenVerifier:
    """Checks tokens against one key, audience and issuer; remembers the last good ones."""

    def __init__(
        self,
        key: str | bytes,
        algorithms: list[str],
        audience: str | None = None,
        issuer: str | None = None,
        remembered: int = 1024,
    ) -> None:
        self.key, self.algorithms = key, algorithms
        self.audience, self.issuer = audience, issuer
        self._remembered: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        self._size = remembered
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        if settings.jwt_public_key is not None:
            try:
                key: str | bytes = settings.jwt_public_key.read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"AGENTDASH_JWT_PUBLIC_KEY={str(settings.jwt_public_key)!r}: {exc.strerror}"
                ) from None
            algorithms = ["RS256", "ES256"]
        elif settings.jwt_secret:
            key, algorithms = settings.jwt_secret, ["HS256"]
        else:
            raise ConfigError(
                "AGENTDASH_AUTH=jwt needs AGENTDASH_JWT_SECRET (HS256) or "
                "AGENTDASH_JWT_PUBLIC_KEY (a PEM file, RS256/ES256)"
            )
        return cls(key, algorithms, settings.jwt_audience, settings.jwt_issuer)

    def identity(self, token: str) -> Identity:
        """Who the token names; AuthError when it is expired, forged or meant for another."""
        now = time.time()
        with self._lock:
            remembered = self._remembered.get(token)
            if remembered is not None and remembered[1] > now:
                self._remembered.move_to_end(token)
                return remembered[0]
        claims = self._claims(token)
        name = str(claims["sub"])
        identity = Identity.of(name, _names(claims.get("roles")), _names(claims.get("teams")))
        if identity is None:
            raise RoleError(f"{name} has no role here: the token's roles need viewer or admin")
        with self._lock:
            self._remembered[token] = (identity, float(claims["exp"]))
            while len(self._remembered) > self._size:
                self._remembered.popitem(last=False)
        return identity

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("the token is meant for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("the token is from another issuer") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the token is refused: {exc}") from None


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []
