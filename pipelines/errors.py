"""One exception family; messages tell the user what to do next."""

from __future__ import annotations


class AgentdashError(Exception):
    """Base class of every error the project raises on purpose."""


class ConfigError(AgentdashError):
    """A setting is missing or has a value that cannot work."""


class QueryError(AgentdashError, ValueError):
    """A filter or window was refused before anything was queried."""


class SourceError(AgentdashError):
    """The data source could not answer."""


class SourceAuthError(SourceError):
    """The source rejected the credentials (HTTP 401/403)."""


class SourceNotFoundError(SourceError):
    """A database or container does not exist (HTTP 404)."""


class SourceUnavailableError(SourceError):
    """The source is unreachable or kept failing after retries."""


class AuthError(AgentdashError):
    """Credentials are missing, wrong, expired or forged: the caller is not signed in."""


class RoleError(AuthError):
    """Signed in, but with no role that may read this (HTTP 403)."""


class StoreUnavailableError(AgentdashError):
    """Where quarantined documents are kept (Redis, a SQLite file) cannot be used."""


class RollupsFormatError(AgentdashError, ValueError):
    """Stored rollups cannot be read by this release: rebuild them from the messages."""
