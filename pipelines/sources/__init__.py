"""Sources: where documents come from (the embedded store, Cosmos DB), one contract."""

from __future__ import annotations

from pipelines.settings import Settings
from pipelines.sources.base import Source


def open_source(settings: Settings) -> Source:
    """The source the settings name: Cosmos DB, or the embedded store (made if missing)."""
    if settings.source == "cosmos":
        from pipelines.sources.cosmos import CosmosSource

        return CosmosSource.from_settings(settings)
    from pipelines.sources.local import LocalSource

    return LocalSource.from_settings(settings)
