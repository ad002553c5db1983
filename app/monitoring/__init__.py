"""Watching the server itself: Prometheus metrics, request logs, Sentry.

- :mod:`~app.monitoring.metrics`: ``GET /metrics`` in the Prometheus text
  format (``prometheus-client``; its multiprocess mode sums ``--num-procs``
  workers, and processes given the same ``PROMETHEUS_MULTIPROC_DIR``);
- :mod:`~app.monitoring.logs`: one log line per request with its duration,
  plain text or, with ``AGENTDASH_LOG_FORMAT=json``, one JSON object a line;
- :mod:`~app.monitoring.sentry`: errors to Sentry when ``SENTRY_DSN`` is set.
"""
