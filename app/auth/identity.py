"""Who is asking: a name, a role and the teams whose data they may read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

VIEWER: Final = "viewer"
ADMIN: Final = "admin"
ROLES: Final = (VIEWER, ADMIN)


@dataclass(frozen=True)
class Identity:
    """A signed-in user (or, without sign-in, everyone)."""

    name: str
    role: str
    teams: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: str, roles: Iterable[str], teams: Iterable[str]) -> Identity | None:
        """The identity of claims or a users file entry; None when it names no known role."""
        known = [role for role in roles if role in ROLES]
        if not name or not known:
            return None
        role = ADMIN if ADMIN in known else VIEWER
        return cls(name, role, tuple(sorted({str(team) for team in teams if team})))

    @property
    def admin(self) -> bool:
        return self.role == ADMIN

    @property
    def scope(self) -> list[str] | None:
        """The pipelines' ``teams``: an admin without teams reads every team, anyone else
        only their own (a viewer without teams: none)."""
        if self.admin and not self.teams:
            return None
        return list(self.teams)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "role": self.role, "teams": list(self.teams)})

    @classmethod
    def from_json(cls, text: Any) -> Identity | None:
        try:
            values = json.loads(text)
            return cls.of(values["name"], [values["role"]], values["teams"])
        except (TypeError, ValueError, KeyError):
            return None


ANONYMOUS: Final = Identity("anonymous", ADMIN)
"""Everyone, when sign-in is off (``AGENTDASH_AUTH=none``): reads everything."""
