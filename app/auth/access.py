"""Who sent a request, by the sign-in ``AGENTDASH_AUTH`` chooses.

:meth:`Access.identify` reads one HTTP request (its ``Authorization`` header or
its cookies) and answers the :class:`~app.auth.identity.Identity` it carries,
None when it carries no credentials, or raises
:class:`~pipelines.errors.AuthError` (401) for credentials that are wrong,
expired or forged and :class:`~pipelines.errors.RoleError` (403) for a user
with no role.  The dashboard's pages and websockets, the REST API, downloads
and ``/metrics`` all ask it, so they all see the same identity.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import cached_property
from typing import TYPE_CHECKING

from tornado.httputil import HTTPServerRequest
from tornado.web import decode_signed_value

from app.auth.identity import ANONYMOUS, Identity
from app.auth.tokens import COOKIE, TokenVerifier
from app.auth.users import UsersFile
from pipelines.errors import AuthError, ConfigError
from pipelines.settings import Settings

if TYPE_CHECKING:
    from app.auth.oauth import EntraId

SESSION_DAYS = 1.0
"""How long a sign-in cookie is good for."""

USER_COOKIE = "user"  # Panel's name for the signed cookie of the signed-in user
SESSION_COOKIES = (USER_COOKIE, "id_token", "access_token", "refresh_token", "oauth_expiry", COOKIE)
"""Cookies that carry credentials: cleared at sign-out, never copied into a page."""


def derive(secret: str, purpose: str) -> bytes:
    """A key for one purpose (Bokeh session signing, cookie encryption) from the cookie secret."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


class Access:
    """The sign-in of one server: its mode and what it checks credentials against."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mode = settings.auth
        if self.mode == "none":
            return
        if not settings.cookie_secret or len(settings.cookie_secret) < 32:
            raise ConfigError(
                f"AGENTDASH_AUTH={self.mode} needs AGENTDASH_COOKIE_SECRET, a random text of "
                "at least 32 characters: python -c 'import secrets; print(secrets.token_hex())'"
            )
        self.cookie_secret: str = settings.cookie_secret
        if self.mode == "basic":
            if settings.users_file is None:
                raise ConfigError(
                    "AGENTDASH_AUTH=basic needs AGENTDASH_USERS_FILE: create it with "
                    "`agentdash users add NAME --role admin`"
                )
            self.users.users()  # a file that cannot be read is refused at start-up
        elif self.mode == "jwt":
            self.tokens  # noqa: B018 (a missing key is refused at start-up)
        elif self.mode == "oauth":
            self.oauth  # noqa: B018

    @property
    def on(self) -> bool:
        return self.mode != "none"

    @cached_property
    def users(self) -> UsersFile:
        assert self.settings.users_file is not None
        return UsersFile(self.settings.users_file)

    @cached_property
    def tokens(self) -> TokenVerifier:
        return TokenVerifier.from_settings(self.settings)

    @cached_property
    def oauth(self) -> EntraId:
        # Imported when used: it brings Panel's OAuth handlers and the cryptography package.
        from app.auth.oauth import EntraId

        return EntraId.from_settings(self.settings)

    def identify(self, request: HTTPServerRequest) -> Identity | None:
        """The identity ``request`` carries; None without credentials (see the module)."""
        if self.mode == "none":
            return ANONYMOUS
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        scheme = scheme.lower()
        if self.mode == "basic":
            if scheme == "basic":
                return self._basic(credentials)
            name = self.signed_cookie(request, USER_COOKIE)
            return None if name is None else self._known(name)
        if self.mode == "jwt":
            token = credentials if scheme == "bearer" else _cookie(request, COOKIE)
            return None if not token else self.tokens.identity(token.strip())
        token = self.signed_cookie(request, "id_token")
        return None if token is None else self.oauth.identity(token)

    def signed_cookie(self, request: HTTPServerRequest, name: str) -> str | None:
        """The value of a cookie this server signed; None when absent, expired or tampered."""
        raw = _cookie(request, name)
        if raw is None:
            return None
        value = decode_signed_value(self.cookie_secret, name, raw, max_age_days=SESSION_DAYS)
        return None if value is None else value.decode("utf-8", "replace")

    def _basic(self, credentials: str) -> Identity:
        try:
            name, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("malformed HTTP Basic credentials") from None
        identity = self.users.verify(name, password)
        if identity is None:
            raise AuthError("wrong user name or password")
        return identity

    def _known(self, name: str) -> Identity:
        identity = self.users.identity(name)
        if identity is None:
            raise AuthError(f"user {name!r} is no longer in the users file")
        return identity


def _cookie(request: HTTPServerRequest, name: str) -> str | None:
    morsel = request.cookies.get(name)
    return None if morsel is None else morsel.value
