"""Sign-in for the dashboard's pages and websockets: a Bokeh auth provider over :class:`Access`.

A page or websocket without credentials is sent to ``/login`` (Panel's login
handlers: a user name and password for ``basic``, a token for ``jwt``, Entra
ID for ``oauth``); credentials that are refused count as none; a user with no
role gets 403.  Once a page is let in, :class:`SessionIdentity` writes its
identity into the page's Bokeh session token (signed), where the session
reads it: :func:`session_identity`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import panel as pn
from bokeh.application.handlers.handler import Handler
from bokeh.document import Document
from bokeh.server.auth_provider import AuthProvider
from panel.auth import BasicLoginHandler, _validate_next_url
from tornado.escape import url_escape
from tornado.httputil import HTTPServerRequest
from tornado.web import HTTPError, RequestHandler

from app.auth.access import SESSION_COOKIES, SESSION_DAYS, Access
from app.auth.identity import ANONYMOUS, Identity
from app.auth.tokens import COOKIE
from pipelines.errors import AuthError, RoleError

log = logging.getLogger(__name__)

LOGIN, LOGOUT = "/login", "/logout"
PAYLOAD_KEY = "agentdash_identity"
_TEMPLATE = jinja2.Template(
    (Path(__file__).parents[1] / "templates" / "login.html").read_text(), autoescape=True
)


class Provider(AuthProvider):
    """Bokeh's hooks for pages and websockets, answered by one :class:`Access`."""

    def __init__(self, access: Access) -> None:
        self.access = access
        super().__init__()

    @property
    def get_user(self) -> Callable[[RequestHandler], str | None]:  # type: ignore[override]
        def get_user(handler: RequestHandler) -> str | None:
            try:
                identity = self.access.identify(handler.request)
            except RoleError as exc:
                raise HTTPError(403, reason="no role", log_message=str(exc)) from None
            except AuthError as exc:
                log.info("sign-in refused for %s: %s", handler.request.path, exc)
                return None
            return None if identity is None else identity.name

        return get_user

    @property
    def login_url(self) -> str:
        return LOGIN

    @property
    def login_handler(self) -> type[RequestHandler]:
        access = self.access
        if access.mode == "oauth":
            return access.oauth.login_handler()

        class PasswordLogin(BasicLoginHandler):
            _login_endpoint, _login_template = LOGIN, _TEMPLATE

            def _validate(self, username: str, password: str) -> bool:
                return access.users.verify(username, password) is not None

        return PasswordLogin if access.mode == "basic" else TokenLogin

    @property
    def logout_url(self) -> str:
        return LOGOUT

    @property
    def logout_handler(self) -> type[RequestHandler]:
        return Logout


class TokenLogin(RequestHandler):
    """The browser's sign-in of ``jwt``: a token, checked, kept in the ``agentdash_token``
    cookie."""

    def get(self) -> None:
        # Kept across a refused attempt, which comes back here without it.
        next_url = _validate_next_url(self.get_argument("next", None))
        if next_url:
            self.set_cookie("next_url", next_url, httponly=True, samesite="Lax")
        self.finish(
            _TEMPLATE.render(
                login_endpoint=LOGIN, token=True, errormessage=self.get_argument("error", "")
            )
        )

    def post(self) -> None:
        token = self.get_argument("token", "").strip()
        access: Access = self.application.auth_provider.access  # type: ignore[attr-defined]
        try:
            access.tokens.identity(token)
        except AuthError as exc:
            self.redirect(f"{LOGIN}?error={url_escape(str(exc))}")
            return
        self.set_cookie(
            COOKIE,
            token,
            expires_days=SESSION_DAYS,
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
            path="/",
        )
        self.redirect(_validate_next_url(self.get_cookie("next_url", "/")) or "/")


class Logout(RequestHandler):
    def get(self) -> None:
        for name in SESSION_COOKIES:
            self.clear_cookie(name, path="/")
        self.redirect(LOGIN)


class SessionIdentity(Handler):
    """Adds the identity of the request that opens a page to its session's token."""

    def __init__(self, access: Access) -> None:
        super().__init__()
        self.access = access

    def modify_document(self, doc: Document) -> None:
        pass  # the page is built by the application's own handler

    def process_request(self, request: HTTPServerRequest) -> dict[str, Any]:
        try:
            identity = self.access.identify(request)
        except AuthError:
            return {}
        return {} if identity is None else {PAYLOAD_KEY: identity.to_json()}


def session_identity(anonymous_allowed: bool) -> Identity | None:
    """The identity of the session being built (``pn.state.curdoc``); without one, everyone
    when sign-in is off (``anonymous_allowed``), else None."""
    doc = pn.state.curdoc
    context = None if doc is None else doc.session_context
    payload = getattr(context, "token_payload", None) or {}
    identity = Identity.from_json(payload.get(PAYLOAD_KEY))
    if identity is None and anonymous_allowed:
        return ANONYMOUS
    return identity
