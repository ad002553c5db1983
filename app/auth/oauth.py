"""Sign-in with Microsoft Entra ID (``AGENTDASH_AUTH=oauth``), through Panel's OAuth.

Panel's ``azurev2`` login handler runs the authorization-code flow; its URLs
come from the authority's OpenID discovery document
(``AGENTDASH_OAUTH_AUTHORITY``, by default Entra ID's for the ``tenant`` of
``AGENTDASH_OAUTH_EXTRA_PARAMS``).  The ID token it stores (signed, and
encrypted with a key derived from ``AGENTDASH_COOKIE_SECRET``) is verified
against the authority's JWKS with PyJWT; its ``roles`` claim gives the role
(app roles ``viewer`` and ``admin``) and its ``groups`` claim the teams,
through the ``[teams]`` table of the ``AGENTDASH_CONFIG`` file (group id ->
team).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections import OrderedDict
from functools import cached_property
from typing import Any

import jwt
from cryptography.fernet import Fernet, InvalidToken
from panel.auth import AzureAdV2LoginHandler

from app.auth.identity import Identity
from pipelines.errors import AuthError, ConfigError, RoleError
from pipelines.settings import Settings


class EntraId:
    """One Entra ID application: its discovery document, keys, and the identities of tokens."""

    def __init__(
        self,
        authority: str,
        client_id: str,
        client_secret: str,
        encryption_key: bytes,
        teams: dict[str, str],
    ) -> None:
        self.authority = authority.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.fernet_key = base64.urlsafe_b64encode(encryption_key)
        self.fernet = Fernet(self.fernet_key)
        self.teams = teams
        self._lock = threading.Lock()
        self._remembered: OrderedDict[str, Identity] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> EntraId:
        from app.auth.access import derive

        if not settings.oauth_key or not settings.oauth_secret:
            raise ConfigError(
                "AGENTDASH_AUTH=oauth needs AGENTDASH_OAUTH_KEY (the application's client id) "
                "and AGENTDASH_OAUTH_SECRET (a client secret of it)"
            )
        tenant = settings.oauth_extra_params.get("tenant")
        if not tenant and "{tenant}" in settings.oauth_authority:
            raise ConfigError(
                "AGENTDASH_AUTH=oauth needs the directory: "
                """AGENTDASH_OAUTH_EXTRA_PARAMS='{"tenant": "<tenant id>"}'"""
            )
        assert settings.cookie_secret is not None  # checked by Access
        return cls(
            settings.oauth_authority.format(tenant=tenant),
            settings.oauth_key,
            settings.oauth_secret,
            derive(settings.cookie_secret, "oauth cookies"),
            dict(settings.teams),
        )

    @cached_property
    def discovery(self) -> dict[str, Any]:
        """The authority's OpenID configuration (endpoints, issuer, keys' address)."""
        url = f"{self.authority}/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return dict(json.load(response))
        except (OSError, ValueError) as exc:
            raise AuthError(
                f"cannot read {url} ({exc}): check AGENTDASH_OAUTH_AUTHORITY and the tenant"
            ) from None

    @cached_property
    def keys(self) -> jwt.PyJWKClient:
        return jwt.PyJWKClient(self.discovery["jwks_uri"], lifespan=3600, timeout=10)

    def identity(self, stored: str) -> Identity:
        """The identity of the ID token Panel stored at sign-in (encrypted, as a cookie)."""
        try:
            token = self.fernet.decrypt(stored.encode()).decode()
        except (InvalidToken, ValueError):
            raise AuthError("the sign-in cookie cannot be read: sign in again") from None
        with self._lock:
            if token in self._remembered:
                self._remembered.move_to_end(token)
                return self._remembered[token]
        identity = self._verify(token)
        with self._lock:
            self._remembered[token] = identity
            while len(self._remembered) > 1024:
                self._remembered.popitem(last=False)
        return identity

    def _verify(self, token: str) -> Identity:
        try:
            key = self.keys.get_signing_key_from_jwt(token)
            # Panel renews the access token, never the ID token: the sign-in cookie's own
            # lifetime bounds the session, not the ID token's exp (about an hour on Entra ID).
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.client_id,
                options={"verify_exp": False, "require": ["iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"the authority's signing keys cannot be read: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the ID token is refused: {exc}") from None
        issuer = str(self.discovery.get("issuer", "")).replace("{tenantid}", claims.get("tid", ""))
        if claims["iss"] != issuer:
            raise AuthError(f"the ID token is from {claims['iss']!r}, not {issuer!r}")
        name = next(
            str(claims[k]) for k in ("preferred_username", "email", "upn", "sub") if claims.get(k)
        )
        groups = claims.get("groups") or []
        teams = [self.teams[g] for g in groups if isinstance(g, str) and g in self.teams]
        roles = claims.get("roles") or []
        identity = Identity.of(name, roles if isinstance(roles, list) else [], teams)
        if identity is None:
            raise RoleError(f"{name} has no role here: ask for the viewer or admin app role")
        return identity

    def login_handler(self) -> type[AzureAdV2LoginHandler]:
        """Panel's Entra ID login handler, on this authority's endpoints."""
        entra = self

        class EntraLoginHandler(AzureAdV2LoginHandler):
            _USER_KEY = "sub"  # in every ID token; the identity's name comes from its claims

            @property
            def _OAUTH_AUTHORIZE_URL(self) -> str:
                return str(entra.discovery["authorization_endpoint"])

            @property
            def _OAUTH_ACCESS_TOKEN_URL(self) -> str:
                return str(entra.discovery["token_endpoint"])

        return EntraLoginHandler
