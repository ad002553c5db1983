"""Normalisation under the per-document rules, and window queries of the embedded store.

1. Throughput of normalising 1M demo messages with the rules in place, against the
   normalisation before them (``pipelines/schema.py`` at ``BEFORE``, loaded from git
   into a module of its own in this run).  Goal: at least 90% of its throughput.
2. A 24 h window read from stores of 200k and 1M messages holding the same number of
   messages a day (the larger spans 5x the days): through the indexed time column, a
   store 5x bigger should cost about the same.  The baseline is the SQL of ``BEFORE``,
   which computed each document's time from its JSON at query time.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.common import demo_store, median_seconds, report
from pipelines import demo
from pipelines.query import Query
from pipelines.schema import FieldMapping, normalise
from pipelines.sources.base import ColumnBatch
from pipelines.sources.local import LocalSource

BEFORE = "c887330"  # the last commit before the rules
MESSAGES = 1_000_000
ROOT = Path(__file__).resolve().parents[1]


def module_before(path: str, name: str) -> ModuleType:
    """``path`` of the repository as it was at ``BEFORE``, imported as module ``name``."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BEFORE}:{path}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except FileNotFoundError:
        raise SystemExit("bench_normalise needs git on PATH to read the baseline") from None
    except subprocess.CalledProcessError as exc:
        raise SystemExit(
            f"bench_normalise cannot read {path} at commit {BEFORE} ({exc.stderr.strip()}): "
            "run it in a clone that holds that commit"
        ) from None
    file = Path(tempfile.mkdtemp()) / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def throughput() -> list[tuple[str, str]]:
    old = module_before("pipelines/schema.py", "schema_before")
    _, docs = demo.generate(20, MESSAGES, 30, seed=1)
    fields = [source for _, source in FieldMapping.for_container("messages").fields]
    batch = ColumnBatch.from_rows(fields, [[d.get(f) for f in fields] for d in docs])
    new_mapping = FieldMapping.for_container("messages")
    old_mapping = old.FieldMapping.for_container("messages")
    now, before = normalise(docs, new_mapping), old.normalise(docs, old_mapping)
    # Same rows from clean data (the columns added since are read on top).
    assert now.frame[before.frame.columns].equals(before.frame) and not now.quarantined
    rows = []
    for form, given in (("documents", docs), ("column batch", batch)):
        t_new = median_seconds(lambda given=given: normalise(given, new_mapping), repeat=5)
        t_old = median_seconds(lambda given=given: old.normalise(given, old_mapping), repeat=5)
        rows += [
            (f"{form}: with the rules", f"{MESSAGES / t_new / 1e6:.2f} M docs/s ({t_new:.2f} s)"),
            (f"{form}: before", f"{MESSAGES / t_old / 1e6:.2f} M docs/s ({t_old:.2f} s)"),
            (f"{form}: ratio", f"{t_old / t_new:.0%} of the old throughput (goal >= 90%)"),
        ]
    return rows


def window_queries() -> list[tuple[str, str]]:
    old_sql = module_before("pipelines/sources/local_sql.py", "local_sql_before")
    mapping = FieldMapping.for_container("messages")
    rows = []
    timings: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size, days in ((200_000, 30), (1_000_000, 150)):  # the same messages a day
            store = demo_store(Path(tmp) / f"{size}.db", size, days)
            query = Query.build(
                "messages",
                time_field="timestamp",
                start=datetime.now(UTC) - timedelta(hours=24),
                projection=mapping.projection(
                    ["id", "conversation_id", "agent_id", "role", "timestamp"]
                ),
            )
            found = sum(len(page) for page in store.fetch(query))
            t_new = median_seconds(lambda store=store, query=query: _read(store, query))
            t_old = median_seconds(lambda s=store, q=query: _read_before(s, q, old_sql))
            timings[size] = (t_new, t_old)
            rows += [
                (f"{size:,} messages: 24h window", f"{found:,} docs in {t_new * 1000:.0f} ms"),
                (f"{size:,} messages: before", f"{t_old * 1000:.0f} ms"),
            ]
            store.close()
    (small_new, small_old), (large_new, large_old) = timings[200_000], timings[1_000_000]
    rows += [
        ("cost 1M / 200k, indexed", f"{large_new / small_new:.2f}x (goal ~1x)"),
        ("cost 1M / 200k, before", f"{large_old / small_old:.2f}x"),
    ]
    return rows


def _read(store: LocalSource, query: Query) -> int:
    return sum(len(page) for page in store.fetch(query))


def _read_before(store: LocalSource, query: Query, old_sql: Any) -> int:
    """The same read with the SQL of ``BEFORE``: the time computed from the JSON, page by
    page on the change sequence."""
    sql, params = old_sql.compile_select(query)
    conn = sqlite3.connect(store.path)
    count, last = 0, -1
    try:
        while True:
            page = conn.execute(
                f"{sql} AND seq > ? ORDER BY seq LIMIT ?", [*params, last, store.page_size]
            ).fetchall()
            count += len([json.loads(row[1]) for row in page])
            if len(page) < store.page_size:
                return count
            last = page[-1][0]
    finally:
        conn.close()


def main() -> None:
    report(f"normalisation of {MESSAGES:,} demo messages (median of 5)", throughput())
    report("24h window of the embedded store (median of 5)", window_queries())


if __name__ == "__main__":
    main()
