"""Data layer of agentdash: sources, normalisation, cache, pipelines and metrics.

Importable without Panel or Bokeh.
"""

from pipelines.backend import Backend, FrameSpec
from pipelines.errors import (
    AgentdashError,
    ConfigError,
    QueryError,
    SourceAuthError,
    SourceError,
    SourceNotFoundError,
    SourceUnavailableError,
)
from pipelines.pipeline import AgentsPipeline, MessagesPipeline
from pipelines.query import Query
from pipelines.settings import Settings, load_settings

__all__ = [
    "AgentdashError",
    "AgentsPipeline",
    "Backend",
    "ConfigError",
    "FrameSpec",
    "MessagesPipeline",
    "Query",
    "QueryError",
    "Settings",
    "SourceAuthError",
    "SourceError",
    "SourceNotFoundError",
    "SourceUnavailableError",
    "load_settings",
]
