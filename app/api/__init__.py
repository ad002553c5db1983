"""The REST API: the JSON face of the pipelines and metrics, in the dashboard's process.

``panel serve app/main.py --plugins app.api`` (what ``agentdash serve`` runs)
adds :data:`ROUTES` to the Bokeh server's Tornado application (in Python:
``pn.serve(..., extra_patterns=ROUTES)``):

- ``GET /api/v1/metrics/summary``: the KPIs of a window (``metrics.kpis``);
- ``GET /api/v1/agents``: one row per agent (``metrics.per_agent``);
- ``GET /api/v1/messages``: messages, newest first, by pages with a cursor;
- ``GET /api/v1/conversations/{id}``: every message of a conversation, with text;
- ``GET /api/v1/quarantine``: documents that could not be read, counted and listed;
- ``GET /api/v1/openapi.json`` and ``GET /api/v1/docs``: the OpenAPI document
  and a page that renders it (no CDN);
- ``GET /health/live``, ``GET /health/ready`` (and ``/health``): the probes, open to
  anyone, telling admins the source, cache and freshness; 503 when there is no data;
- ``GET /metrics``: the server's Prometheus metrics.

Every route but the probes answers a signed-in caller only (see
:mod:`~app.api.handlers`), and a team's user only about their teams.

Every answer is computed from the process's shared live frames on a worker
thread, so a slow query never blocks the sessions' event loop; probes (``/health``)
answer on a pool of their own, so that slow reads never hold them up.  Every error
is JSON (``{"error", "detail"}``), a refused method a 405 with ``Allow``.
Nothing here runs at import: Panel imports plugins before it forks
``--num-procs`` workers.

Split by concept: :mod:`~app.api.parameters` (the query, derived from the
pipelines' declarations), :mod:`~app.api.answers` (pure functions of pipelines
and status), :mod:`~app.api.openapi` (the document) and
:mod:`~app.api.handlers` (HTTP).
"""

from app.api.handlers import ROUTES

__all__ = ["ROUTES"]
