"""Cache hit of a 1M-message frame through Redis: Arrow IPC + zstd versus pickle.

The baseline stores the same frame in the same Redis the way ``pn.cache``-style
caches do (a pickled DataFrame).  Goal: Arrow at least 3x faster on a hit.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path

import pandas as pd
import redis

from benchmarks.common import RedisServer, median_seconds, report
from pipelines import demo
from pipelines.arrow import frame_from_bytes, frame_to_bytes
from pipelines.cache import RedisFrameCache
from pipelines.schema import FieldMapping, normalise

MESSAGES = 1_000_000


def main() -> None:
    _, docs = demo.generate(20, MESSAGES, 7, seed=1)
    frame = normalise(docs, FieldMapping.for_container("messages")).frame
    del docs
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            client = redis.Redis.from_url(server.url)
            arrow = frame_to_bytes(frame)
            pickled = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
            client.set("bench:arrow", arrow)
            client.set("bench:pickle", pickled)
            cache = RedisFrameCache(server.url)

            def arrow_hit() -> pd.DataFrame:
                return frame_from_bytes(client.get("bench:arrow"))

            def pickle_hit() -> pd.DataFrame:
                return pickle.loads(client.get("bench:pickle"))

            assert arrow_hit().equals(frame) and pickle_hit().equals(frame)
            t_arrow = median_seconds(arrow_hit)
            t_pickle = median_seconds(pickle_hit)
            t_put = median_seconds(lambda: client.set("bench:arrow", frame_to_bytes(frame)))
            del cache
        finally:
            server.stop()
    report(
        f"cache hit, {len(frame):,} messages through Redis (median of 5)",
        [
            ("arrow ipc + zstd", f"{t_arrow * 1000:.0f} ms, {len(arrow) / 1e6:.1f} MB"),
            ("pickle (baseline)", f"{t_pickle * 1000:.0f} ms, {len(pickled) / 1e6:.1f} MB"),
            ("arrow write", f"{t_put * 1000:.0f} ms"),
            ("ratio pickle / arrow", f"{t_pickle / t_arrow:.1f}x (goal >= 3x)"),
        ],
    )


if __name__ == "__main__":
    main()
