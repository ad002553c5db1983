"""Tables as people read them: names for ids, local times, newest first.

Pure pandas over the pipelines' frames and the metrics' tables, shared by the
dashboard's views, the reports and the notebooks.  Times come out as naive wall
times in the time zone asked for (see :func:`pipelines.windows.to_local`),
which is how tables and chart axes show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

import pandas as pd

from pipelines import metrics
from pipelines.answers import Answers
from pipelines.status import Status
from pipelines.windows import to_local

AGENT_COLUMNS = [
    "agent_id",
    "name",
    "team",
    "kind",
    "status",
    "last_seen",
    "messages",
    "conversations",
    "error_rate",
    "latency_p50",
    "latency_p95",
    "tokens_in",
    "tokens_out",
    "cost_usd",
]
CONVERSATION_COLUMNS = ["started", "conversation_id", "user_id", "turns", "errors", "duration_s"]
MESSAGE_COLUMNS = [
    "time",
    "conversation_id",
    "agent",
    "role",
    "status",
    "latency_ms",
    "tokens_in",
    "tokens_out",
]
"""The columns of :func:`message_table` a reader sees."""
MESSAGE_KEPT = ["user_id", "timestamp", "agent_id", "id"]
"""The columns of :func:`message_table` kept for downloads (UTC timestamps, ids), not shown."""
REFRESH_COLUMNS = [
    "at",
    "spec",
    "documents",
    "rows_changed",
    "request_charge",
    "throttled",
    "requests",
    "took_ms",
    "error",
]


def agent_names(agents: pd.DataFrame) -> dict[str, str]:
    """Agent id -> display name, for labels (ids without a name keep the id)."""
    named = agents.dropna(subset=["name"])
    return dict(zip(named["id"], named["name"], strict=True))


def named(table: pd.DataFrame, names: Mapping[str, str], *columns: str) -> pd.DataFrame:
    """``table`` with agent ids in ``columns`` replaced by their names."""
    return table.assign(**{c: table[c].map(lambda agent: names.get(agent, agent)) for c in columns})


def local_times(frame: pd.DataFrame, tz: str) -> pd.DataFrame:
    """``frame`` with its aware timestamp columns as wall times in ``tz``."""
    aware = [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    return frame.assign(**{c: to_local(frame[c], tz) for c in aware})


def agent_table(window: Answers, agents: pd.DataFrame, tz: str) -> pd.DataFrame:
    """``per_agent`` of a window's answers with local times and a name for every agent."""
    table = window.per_agent(agents)
    table["name"] = table["name"].fillna(table["agent_id"])
    table["last_seen"] = to_local(table["last_seen"], tz)
    return table[AGENT_COLUMNS]


def agent_conversations(messages: pd.DataFrame, agent_id: str, tz: str) -> pd.DataFrame:
    """``metrics.conversation_stats`` of the conversations ``agent_id`` was in, newest first."""
    mine = messages["conversation_id"][messages["agent_id"] == agent_id].unique()
    stats = metrics.conversation_stats(messages[messages["conversation_id"].isin(mine)])
    stats["started"] = to_local(stats["started"], tz)
    return stats.iloc[::-1].reset_index(drop=True)[CONVERSATION_COLUMNS]


def message_table(messages: pd.DataFrame, agents: pd.DataFrame, tz: str) -> pd.DataFrame:
    """Messages newest first with a local ``time`` and the agent's name."""
    frame = messages.sort_values("timestamp", ascending=False, kind="stable", ignore_index=True)
    names = agent_names(agents)
    codes, ids = pd.factorize(frame["agent_id"])
    labels = pd.Series([names.get(agent, agent) for agent in ids] + [pd.NA], dtype="str")
    # Mapping the few distinct ids, then taking by code, avoids a lookup per message.
    frame["agent"] = labels.to_numpy()[codes]
    frame["time"] = to_local(frame["timestamp"], tz)
    return frame[[*MESSAGE_COLUMNS, *MESSAGE_KEPT]]


def frames_table(status: Status, tz: str) -> pd.DataFrame:
    """One row per live frame: rows, memory, time of the data, staleness and the last error."""
    table = pd.DataFrame(
        [asdict(frame) for frame in status.frames],
        columns=["frame", "rows", "bytes", "as_of", "stale", "error", "version"],
    )
    table["as_of"] = to_local(pd.to_datetime(table["as_of"], utc=True), tz)
    table.insert(2, "memory_mb", table.pop("bytes").astype("float64") / 1e6)
    return table


def refreshes_table(status: Status, tz: str) -> pd.DataFrame:
    """The recorded reads of the live frames, oldest first; how long each took in ms."""
    records = [asdict(r) for r in status.refreshes]
    history = pd.DataFrame(records, columns=[*REFRESH_COLUMNS, "seconds"])
    history["at"] = to_local(pd.to_datetime(history["at"], utc=True), tz)
    history["took_ms"] = history["seconds"].astype("float64") * 1000
    return history[REFRESH_COLUMNS]
