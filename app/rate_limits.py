"""Rate limits on the REST API and on new pages, per user and per client address (``limits``).

``AGENTDASH_RATE_LIMIT`` (default ``120/minute``, any rate the ``limits``
library reads, e.g. ``10/second;200/hour``) applies to each key separately,
in a moving window kept in Redis when ``AGENTDASH_REDIS_URL`` is set (shared
by every process and replica) and in the process's memory otherwise.  While
Redis fails, each process counts in its own memory, with one warning: limits
stay in force, a little looser, and never block a request on a dead Redis.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

_RETRY_REDIS_SECONDS = 30.0


class RateLimits:
    """The limits of one server; :meth:`hit` counts a request."""

    def __init__(self, rate: str, redis_url: str | None = None) -> None:
        self.items: list[RateLimitItem] = parse_many(rate)
        self.memory = MovingWindowRateLimiter(MemoryStorage())
        self.shared: MovingWindowRateLimiter | None = None
        if redis_url:
            storage = RedisStorage(
                redis_url,
                key_prefix="agentdash:limits",
                wrap_exceptions=True,
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
            )
            self.shared = MovingWindowRateLimiter(storage)
        self._redis_failed_at: float | None = None

    def _limiter(self) -> MovingWindowRateLimiter:
        if self.shared is None:
            return self.memory
        failed = self._redis_failed_at
        if failed is not None and time.monotonic() - failed < _RETRY_REDIS_SECONDS:
            return self.memory
        return self.shared

    def hit(self, *keys: str) -> float | None:
        """Count one request for each key ("ip:...", "user:..."); None when every key is
        within its limits, else the seconds to wait before the next request is let in."""
        limiter = self._limiter()
        try:
            return self._hit(limiter, keys)
        except StorageError as exc:
            if self._redis_failed_at is None:
                log.warning("rate limits: Redis fails (%s), counting in memory meanwhile", exc)
            self._redis_failed_at = time.monotonic()
            return self._hit(self.memory, keys)

    def _hit(self, limiter: MovingWindowRateLimiter, keys: tuple[str, ...]) -> float | None:
        wait = 0.0
        for key in keys:
            for item in self.items:
                if not limiter.hit(item, key):
                    reset = limiter.get_window_stats(item, key).reset_time
                    wait = max(wait, reset - time.time(), 1.0)
        if limiter is self.shared and self._redis_failed_at is not None:
            log.warning("rate limits: Redis answers again")
            self._redis_failed_at = None
        return math.ceil(wait) if wait else None
