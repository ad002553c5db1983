"""Sign-in and roles: who may read what.

``AGENTDASH_AUTH`` picks the sign-in: ``none`` (everyone reads everything;
loopback only unless ``agentdash serve --allow-anonymous``), ``basic`` (the
users file, :mod:`~app.auth.users`), ``oauth`` (Entra ID, :mod:`~app.auth.oauth`)
or ``jwt`` (bearer tokens, :mod:`~app.auth.tokens`).  :mod:`~app.auth.access`
tells who sent a request, :mod:`~app.auth.provider` signs pages and websockets
in, and the REST API asks the same :func:`access`.  What reaches the data
layer is the identity's scope, the pipelines' ``teams``
(:attr:`~app.auth.identity.Identity.scope`).
"""

from __future__ import annotations

import threading

from app.auth.access import Access
from app.auth.identity import ANONYMOUS, Identity
from pipelines.settings import load_settings

__all__ = ["ANONYMOUS", "Access", "Identity", "access"]

_access: Access | None = None
_lock = threading.Lock()


def access() -> Access:
    """The process's sign-in, from the settings, made on first use."""
    global _access
    with _lock:
        if _access is None:
            _access = Access(load_settings())
        return _access
