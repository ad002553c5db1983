"""Data layer of agentdash: sources, normalisation, cache, live frames, pipelines, metrics.

Importable without Panel or Bokeh.  From the outside in:

- ``sources/``: a :class:`~pipelines.sources.base.Source` reads documents (the
  embedded SQLite store, or Cosmos DB), each compiling a :class:`Query` into
  its own parameterized SQL beside it;
- ``schema``: the canonical columns and the normalisation of raw documents
  into them, quarantining what cannot be read;
- ``cache`` and ``arrow``: frames shared between processes (Redis) or kept in
  memory, as Arrow IPC;
- ``live``: :class:`LiveFrames`, the frames one process serves, read once
  through the cache and kept current from the change feed (``merge`` applies
  the changes, ``reading`` reads pages, ``status`` reports freshness and cost);
- ``pipeline``: :class:`MessagesPipeline` and :class:`AgentsPipeline`, the
  user's question declared once as parameters (types in ``parameters``,
  windows in ``windows``), and the frames that answer it;
- ``metrics``: KPIs, time series and tables, pure functions of frames;
- ``rollups``: :class:`~pipelines.rollups.Rollups`, hourly buckets that give the metrics'
  answers for long windows without their rows, kept current from the change feed.
"""

from pipelines.errors import (
    AgentdashError,
    ConfigError,
    QueryError,
    SourceAuthError,
    SourceError,
    SourceNotFoundError,
    SourceUnavailableError,
)
from pipelines.live import FrameSpec, LiveFrames
from pipelines.pipeline import AgentsPipeline, MessagesPipeline
from pipelines.query import Query
from pipelines.settings import Settings, load_settings

__all__ = [
    "AgentdashError",
    "AgentsPipeline",
    "ConfigError",
    "FrameSpec",
    "LiveFrames",
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
