"""The users file of ``AGENTDASH_AUTH=basic``: names, roles, teams and argon2 password hashes.

TOML, one table per user, written by ``agentdash users add|remove`` and read
again by the server whenever it changes (a removed user is refused at once)::

    [users.alice]
    role = "admin"
    teams = ["alpha"]
    password = "$argon2id$v=19$m=65536,t=3,p=4$..."
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.auth.identity import ROLES, Identity
from pipelines.errors import ConfigError

_HASHER = PasswordHasher()
# Checked when the name is unknown, so that a wrong name costs what a wrong password does.
_NOBODY = _HASHER.hash("no such user")
_REMEMBERED_SECONDS = 60.0


@dataclass(frozen=True)
class User:
    name: str
    role: str
    teams: tuple[str, ...]
    password: str
    """The argon2 hash, never the password."""

    def identity(self) -> Identity:
        identity = Identity.of(self.name, [self.role], self.teams)
        assert identity is not None  # roles are checked when the file is read
        return identity


class UsersFile:
    """The users of one TOML file, read again when it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._read: tuple[float, int, dict[str, User]] | None = None
        # sha256(name, password) -> (identity, until): HTTP Basic sends the password with
        # every API request, and a hash made to be slow must not be checked each time.
        self._remembered: dict[bytes, tuple[Identity, float]] = {}

    def users(self) -> dict[str, User]:
        """Every user by name (none while the file does not exist)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        with self._lock:
            if self._read is None or self._read[:2] != (stat.st_mtime, stat.st_size):
                self._read = (stat.st_mtime, stat.st_size, self._parse())
                self._remembered.clear()
            return self._read[2]

    def _parse(self) -> dict[str, User]:
        where = f"AGENTDASH_USERS_FILE={str(self.path)!r}"
        try:
            with open(self.path, "rb") as fh:
                raw = tomllib.load(fh).get("users", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where} is not valid TOML: {exc}") from None
        users = {}
        for name, entry in raw.items():
            if not isinstance(entry, dict) or entry.get("role") not in ROLES:
                raise ConfigError(f"{where}: user {name!r} needs a role, one of {ROLES}")
            teams = entry.get("teams", [])
            if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
                raise ConfigError(f"{where}: the teams of {name!r} must be a list of names")
            if not str(entry.get("password", "")).startswith("$argon2"):
                raise ConfigError(
                    f"{where}: user {name!r} has no argon2 password hash: set it with "
                    "`agentdash users add`"
                )
            users[name] = User(name, entry["role"], tuple(teams), entry["password"])
        return users

    def verify(self, name: str, password: str) -> Identity | None:
        """The identity of ``name`` if ``password`` is theirs, else None."""
        users = self.users()
        key = hashlib.sha256(f"{name}\0{password}".encode()).digest()
        now = time.monotonic()
        remembered = self._remembered.get(key)
        if remembered is not None and remembered[1] > now and name in users:
            return remembered[0]
        user = users.get(name)
        try:
            _HASHER.verify(user.password if user else _NOBODY, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None:
            return None
        identity = user.identity()
        with self._lock:
            self._remembered[key] = (identity, now + _REMEMBERED_SECONDS)
        return identity

    def identity(self, name: str) -> Identity | None:
        """The identity of a user already signed in (None once removed)."""
        user = self.users().get(name)
        return None if user is None else user.identity()

    # -- writing (``agentdash users``) ---------------------------------------------------
    def add(self, name: str, role: str, teams: Sequence[str], password: str) -> None:
        """Add ``name`` or replace their role, teams and password."""
        if not name or any(c.isspace() for c in name):
            raise ConfigError(f"user name {name!r}: give a name without spaces")
        if role not in ROLES:
            raise ConfigError(f"--role {role!r}: give one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise ConfigError("the password must have at least 8 characters")
        users = self._entries()
        users[name] = {"role": role, "teams": list(teams), "password": _HASHER.hash(password)}
        self._write(users)

    def remove(self, name: str) -> None:
        users = self._entries()
        if name not in users:
            raise ConfigError(f"no user {name!r} in {self.path}")
        del users[name]
        self._write(users)

    def _entries(self) -> dict[str, Any]:
        self.users()  # refuses a file that cannot be read before it is rewritten
        if not self.path.exists():
            return {}
        with open(self.path, "rb") as fh:
            return dict(tomllib.load(fh).get("users", {}))

    def _write(self, users: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Whole or not at all, readable by its owner only: it holds password hashes.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
        try:
            with os.fdopen(fd, "wb") as fh:
                tomli_w.dump({"users": users}, fh)
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise
