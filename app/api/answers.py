"""What the REST API answers: JSON-ready values from pipelines, frames and status.

Pure functions (no HTTP, no I/O beyond reading the pipelines given), on the same KPI
definitions as the dashboard and the reports (:mod:`pipelines.metrics`); the metrics are
computed once per data version, as the page's are (:mod:`app.memo`).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from app.api.parameters import ApiError, refused
from app.memo import answers as answered
from app.memo import current, memo
from pipelines.answers import ask
from pipelines.pipeline import AgentsPipeline, MessagesPipeline
from pipelines.status import Status


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON objects: ISO 8601 UTC times, null for missing values."""
    return list(json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms")))


def summary(messages: MessagesPipeline) -> dict[str, Any]:
    """The KPIs of the pipeline's window (``metrics.kpis``; from the rollups for a long
    window, see :meth:`MessagesPipeline.answers`)."""
    kpis = memo(ask, answered(messages), "kpis")  # once per data version, as the page's
    return {"window": messages.window_spec.describe(), **kpis.to_dict()}


def agents(messages: MessagesPipeline, known: AgentsPipeline) -> dict[str, Any]:
    """One row per agent of ``known`` (and per agent seen only in the messages)."""
    table = memo(ask, answered(messages), "per_agent", current(known))
    return {"window": messages.window_spec.describe(), "items": records(table)}


def _encode_cursor(timestamp: int, message_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([timestamp, message_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        timestamp, message_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(timestamp, int) and isinstance(message_id, str):
            return timestamp, message_id
    # RecursionError: JSON nested thousands deep.
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, RecursionError):
        pass
    raise refused("cursor: give a next_cursor this API returned")


def page(frame: pd.DataFrame, limit: int, cursor: str | None) -> tuple[pd.DataFrame, str | None]:
    """The ``limit`` newest messages older than ``cursor`` and the cursor after them.

    Keyset pagination on (timestamp, id): a page never repeats or skips a
    message, even while new ones arrive, and costs one pass over the frame.
    """
    stamps = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8
    if cursor is None:
        older = np.ones(len(frame), dtype=bool)
    else:
        after_stamp, after_id = _decode_cursor(cursor)
        older = stamps < after_stamp
        tied = np.flatnonzero(stamps == after_stamp)
        older[tied] = frame["id"].iloc[tied].to_numpy(dtype=object) < after_id
    rows = np.flatnonzero(older)
    more = len(rows) > limit
    if more:
        # Partition instead of sorting everything: only the newest `limit` are ordered.
        cut = np.partition(stamps[rows], len(rows) - limit)[len(rows) - limit]
        rows = rows[stamps[rows] >= cut]
    chosen = frame.iloc[rows].sort_values(["timestamp", "id"], ascending=False).head(limit)
    if not more:
        return chosen, None
    return chosen, _encode_cursor(chosen["timestamp"].iloc[-1].value, str(chosen["id"].iloc[-1]))


def messages(pipeline: MessagesPipeline, limit: int, cursor: str | None) -> dict[str, Any]:
    """A page of the pipeline's messages, newest first."""
    chosen, next_cursor = page(pipeline.frame, limit, cursor)
    return {"items": records(chosen), "next_cursor": next_cursor}


def conversation(conversation_id: str, turns: pd.DataFrame) -> dict[str, Any]:
    """The messages of one conversation; 404 when there is none."""
    if turns.empty:
        raise ApiError(404, "not found", f"no conversation has the id {conversation_id!r}")
    return {"id": conversation_id, "messages": records(turns)}


def health(
    status: Status, *, error: str | None, refresher: dict[str, Any], extra: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """The health of one process: ``ok``, ``stale`` or ``no data`` (503), and why."""
    if not status.frames:
        state = "no data"
    elif status.stale:
        state = "stale"
    else:
        state = "ok"
    oldest = status.oldest
    body = {
        "status": state,
        "error": error,
        **extra,
        **status.to_json(),
        "age_seconds": (datetime.now(UTC) - oldest).total_seconds() if oldest else None,
        "refresher": refresher,
    }
    return (200 if status.frames else 503), body
