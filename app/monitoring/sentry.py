"""Errors and slow requests to Sentry, when ``SENTRY_DSN`` is set.

``sentry-sdk`` reads ``SENTRY_DSN``, ``SENTRY_ENVIRONMENT`` and
``SENTRY_RELEASE`` itself; ``SENTRY_TRACES_SAMPLE_RATE`` (default 0) turns on
performance tracing.  Called in each server process (``--num-procs`` workers
included: the SDK's thread does not survive a fork).
"""

from __future__ import annotations

import os

from pipelines.errors import ConfigError


def init() -> bool:
    """Start the SDK with its Tornado integration; False when no ``SENTRY_DSN`` is set."""
    if not os.environ.get("SENTRY_DSN"):
        return False
    import sentry_sdk
    from sentry_sdk.integrations.tornado import TornadoIntegration

    raw = os.environ.get("SENTRY_TRACES_SAMPLE_RATE") or "0"
    try:
        rate = float(raw)
        if not 0 <= rate <= 1:
            raise ValueError
    except ValueError:
        raise ConfigError(f"SENTRY_TRACES_SAMPLE_RATE={raw!r}: give a number from 0 to 1") from None
    sentry_sdk.init(
        integrations=[TornadoIntegration()], traces_sample_rate=rate, send_default_pii=False
    )
    return True
