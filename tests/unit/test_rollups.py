"""Hourly rollups answer as the metrics do over the raw rows of the same hours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import metrics
from pipelines.answers import FrameAnswers
from pipelines.errors import QueryError, RollupsFormatError
from pipelines.rollups import FORMAT_VERSION, RANK_ERROR, Rollups, conversation_hashes
from pipelines.schema import MESSAGE_DTYPES

HOUR = pd.Timedelta(hours=1)
# Days over a change of daylight saving time in Europe/Berlin or America/New_York.
STARTS = [pd.Timestamp(day, tz="UTC") for day in ("2024-03-30", "2024-03-09", "2024-10-26")]
AGENTS = [None, "a0", "a1", "a2"]
STATUSES = [None, "ok", "error", "timeout"]
ROLES = ["agent", "user", "tool"]
MODELS = [None, "m0", "m1"]
REGIONS = [None, "eu", "us"]
KEYS = {"agent_id": AGENTS, "status": STATUSES, "role": ROLES, "model": MODELS}
ROW_COLUMNS = [
    "conversation_id", "agent_id", "role", "status", "model", "user_id", "region",
    "latency_ms", "tokens_in", "tokens_out", "cost_usd", "second",
]  # fmt: skip

row = st.fixed_dictionaries(
    {
        "conversation_id": st.sampled_from(["c0", "c1", "c2", "c3", "c4"]),
        "agent_id": st.sampled_from(AGENTS),
        "role": st.sampled_from(ROLES),
        "status": st.sampled_from(STATUSES),
        "model": st.sampled_from(MODELS),
        "user_id": st.sampled_from([None, "u0", "u1", "u2"]),
        "region": st.sampled_from(REGIONS),
        # Whole milliseconds repeat, so percentiles meet ties.
        "latency_ms": st.none() | st.integers(0, 3000).map(float),
        "tokens_in": st.none() | st.integers(0, 500),
        "tokens_out": st.none() | st.integers(0, 500),
        # Multiples of 1/1024 add up exactly in any order: sums compare with ==.
        "cost_usd": st.none() | st.integers(0, 4096).map(lambda k: k / 1024),
        "second": st.integers(0, 3 * 24 * 3600 - 1),
    }
)
frames = st.tuples(st.sampled_from(STARTS), st.lists(row, max_size=80)).map(
    lambda drawn: messages_frame(drawn[0], drawn[1])
)


def messages_frame(start: pd.Timestamp, rows: Sequence[dict[str, Any]], first_id: int = 0):
    """A canonical frame with a ``region`` dimension; each row ``second``s after ``start``
    (plus its position in nanoseconds, so that no two replies share an instant)."""
    frame = pd.DataFrame(list(rows), columns=ROW_COLUMNS, dtype=object)
    ids = range(first_id, first_id + len(frame))
    frame["id"] = [f"m{i}" for i in ids]
    frame["timestamp"] = [
        start + pd.Timedelta(seconds=int(s)) + pd.Timedelta(nanoseconds=i)
        for s, i in zip(frame["second"], ids, strict=True)
    ]
    frame["tokens_cached_in"] = None
    frame = frame.drop(columns="second")[[*MESSAGE_DTYPES, "region"]]
    return frame.astype(MESSAGE_DTYPES | {"region": "str"})


def hours_of(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    return frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]


def among(column: pd.Series, wanted: Sequence[Any] | None) -> pd.Series:
    if wanted is None:
        return pd.Series(True, index=column.index)
    present = [w for w in wanted if w is not None]
    return column.isin(present) | (column.isna() if None in wanted else False)


def assert_rank_within(latency: pd.Series, value: float, share: float, error: float) -> None:
    """``value`` sits at rank ``share`` of ``latency`` give or take ``error``."""
    if math.isnan(value):
        assert latency.empty
        return
    below, at_most = (latency < value).mean(), (latency <= value).mean()
    assert below - error <= share <= at_most + error, (value, share, below, at_most)


def reply_latency(frame: pd.DataFrame) -> pd.Series:
    return frame.loc[frame["role"] == "agent", "latency_ms"].dropna()


def assert_answers_equal(rollups: Rollups, raw: pd.DataFrame, tz: str = "UTC") -> None:
    """Every answer of ``rollups`` is the metrics answer over ``raw``."""
    expected, got = metrics.kpis(raw), rollups.kpis()
    assert got.to_dict() | {"latency_ms": None} == expected.to_dict() | {"latency_ms": None}
    for p in metrics.LATENCY_PERCENTILES:
        assert_rank_within(reply_latency(raw), getattr(got, f"latency_p{p}"), p / 100, RANK_ERROR)
    for by in [None, "status", "agent_id", "model", "region"]:
        for name in ["volume_series", "cost_series", "error_rate_series"]:
            pd.testing.assert_frame_equal(
                getattr(rollups, name)("1h", by=by, tz=tz),
                getattr(metrics, name)(raw, "1h", by=by, tz=tz),
            )
    for by in [*KEYS, "region"]:
        pd.testing.assert_frame_equal(rollups.breakdown(by), metrics.breakdown(raw, by))
    pd.testing.assert_series_equal(rollups.unpriced_models(), metrics.unpriced_models(raw))
    latency = ["latency_p50", "latency_p95"]
    table, raw_table = rollups.per_agent(), metrics.per_agent(raw)
    pd.testing.assert_frame_equal(table.drop(columns=latency), raw_table.drop(columns=latency))
    for agent, p50, p95 in table[["agent_id", *latency]].itertuples(index=False):
        of_agent = reply_latency(raw[raw["agent_id"] == agent])
        assert_rank_within(of_agent, p50, 0.5, RANK_ERROR)
        assert_rank_within(of_agent, p95, 0.95, RANK_ERROR)
    series = rollups.latency_series("1h", tz=tz)
    raw_series = metrics.latency_series(raw, "1h", tz=tz)
    pd.testing.assert_series_equal(series["count"], raw_series["count"])
    assert list(series.columns) == list(raw_series.columns)
    # Fewer latencies than the sketch holds: the sketch keeps them all.
    pd.testing.assert_frame_equal(rollups.latency_ecdf(), metrics.latency_ecdf(raw))
    pd.testing.assert_frame_equal(
        rollups.latency_ecdf("agent_id"), metrics.latency_ecdf(raw, "agent_id")
    )
    for log in (False, True):
        pd.testing.assert_frame_equal(
            rollups.latency_distribution(7, log), metrics.latency_distribution(raw, 7, log)
        )
    for n in (1, 3, 10):
        pd.testing.assert_frame_equal(rollups.top_errors(n), metrics.top_errors(raw, n))
    assert rollups.last_message() == FrameAnswers(raw).last_message()
    assert_ranking_equal(rollups.latency_ranking(), raw)


def assert_ranking_equal(ranking: pd.DataFrame, raw: pd.DataFrame) -> None:
    """``ranking`` ranks the conversations of ``raw`` by their replies' total latency, with
    the time of each one's first reply with a latency."""
    timed = raw[(raw["role"] == "agent").to_numpy() & raw["latency_ms"].notna().to_numpy()]
    timed = timed.assign(conversation=conversation_hashes(timed["conversation_id"]))
    totals = timed.groupby("conversation").agg(
        latency_total_ms=("latency_ms", "sum"), first=("timestamp", "min")
    )
    totals = totals[totals["latency_total_ms"] > 0].reset_index()
    expected = totals.sort_values(
        ["latency_total_ms", "conversation"], ascending=[False, True], ignore_index=True
    )
    columns = ["conversation", "latency_total_ms", "first"]
    pd.testing.assert_frame_equal(ranking[columns], expected[columns], check_dtype=False)


@settings(max_examples=40, deadline=None)
@given(
    frame=frames,
    first=st.integers(0, 80),
    length=st.integers(0, 80),
    agents=st.none() | st.lists(st.sampled_from(AGENTS), unique=True),
    statuses=st.none() | st.lists(st.sampled_from(STATUSES), unique=True),
    roles=st.none() | st.lists(st.sampled_from(ROLES), unique=True),
    models=st.none() | st.lists(st.sampled_from(MODELS), unique=True),
    regions=st.none() | st.lists(st.sampled_from(REGIONS), unique=True),
)
def test_a_selection_answers_as_metrics_over_the_rows_of_its_hours(
    frame, first, length, agents, statuses, roles, models, regions
):
    day = frame["timestamp"].min().floor("D") if len(frame) else STARTS[0]
    start, end = day + first * HOUR, day + (first + length) * HOUR
    rollups = Rollups.build(frame, dimensions=["region"])
    chosen = rollups.select(
        start,
        end,
        agents=agents,
        statuses=statuses,
        roles=roles,
        models=models,
        dimensions={"region": regions},
    )
    raw = hours_of(frame, start, end)
    wanted = {"agent_id": agents, "status": statuses, "role": roles, "model": models}
    for column, values in (wanted | {"region": regions}).items():
        raw = raw[among(raw[column], values)]
    assert_answers_equal(chosen, raw)
    assert chosen.coverage(start, end) == metrics.coverage(raw, start, end)


@settings(max_examples=40, deadline=None)
@given(
    frame=frames,
    zone=st.sampled_from([("Europe/Berlin", 0), ("America/New_York", 0), ("Asia/Kolkata", 30)]),
    interval=st.sampled_from(["1h", "3h", "6h", "12h", "1D", "2D", "7D"]),
)
def test_series_in_a_time_zone_bin_as_metrics_do(frame, zone, interval):
    tz, offset = zone
    rollups = Rollups.build(frame, offset_minutes=offset)
    series = {"volume_series": "status", "cost_series": "model", "error_rate_series": "agent_id"}
    for name, by in series.items():
        pd.testing.assert_frame_equal(
            getattr(rollups, name)(interval, by=by, tz=tz),
            getattr(metrics, name)(frame, interval, by=by, tz=tz),
        )
    pd.testing.assert_series_equal(
        rollups.latency_series(interval, tz=tz)["count"],
        metrics.latency_series(frame, interval, tz=tz)["count"],
    )


def test_bins_finer_than_an_hour_or_off_the_hour_are_refused():
    frame = messages_frame(STARTS[0], [{"role": "agent", "second": 10, "latency_ms": 5.0}])
    rollups = Rollups.build(frame)
    with pytest.raises(QueryError, match="whole number of hours"):
        rollups.volume_series("30min")
    with pytest.raises(QueryError, match="offset_minutes"):
        rollups.volume_series("1h", tz="Asia/Kolkata")
    with pytest.raises(QueryError, match="offset_minutes"):
        Rollups.build(frame, offset_minutes=30).volume_series("1D", tz="UTC")
    with pytest.raises(QueryError, match="user_id"):
        rollups.breakdown("user_id")


def prefix_handoffs(frame: pd.DataFrame, before: pd.Timestamp) -> pd.Series:
    counts = metrics.handoffs(frame[frame["timestamp"] < before])
    return counts.set_index(["source", "target"])["count"]


@settings(max_examples=40, deadline=None)
@given(frame=frames, first=st.integers(0, 80), length=st.integers(0, 80))
def test_handoffs_are_counted_in_the_hour_of_the_later_reply(frame, first, length):
    rollups = Rollups.build(frame)
    pd.testing.assert_frame_equal(rollups.handoffs(), metrics.handoffs(frame))
    # Hand-offs of a window: those before its end less those before its start, whichever
    # side of the start the earlier reply lies.
    day = frame["timestamp"].min().floor("D") if len(frame) else STARTS[0]
    start, end = day + first * HOUR, day + (first + length) * HOUR
    expected = prefix_handoffs(frame, end).sub(prefix_handoffs(frame, start), fill_value=0)
    got = rollups.select(start, end).handoffs().set_index(["source", "target"])["count"]
    pd.testing.assert_series_equal(
        got.sort_index(), expected[expected > 0].astype("int64").sort_index(), check_names=False
    )


def test_an_agents_filter_keeps_the_handoffs_between_two_of_them():
    frame = messages_frame(
        STARTS[0],
        [
            {"conversation_id": "c", "role": "agent", "agent_id": agent, "second": second}
            for agent, second in [("a0", 0), ("a1", 10), ("a2", 20), ("a0", 30)]
        ],
    )
    chosen = Rollups.build(frame).select(STARTS[0], STARTS[0] + HOUR, agents=["a0", "a2"])
    assert chosen.handoffs().to_dict("records") == [{"source": "a2", "target": "a0", "count": 1}]


class Source:
    """Rows by id, as a store holds them; ``reread`` as the rollups' caller would."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def upsert(self, rows: pd.DataFrame) -> None:
        kept = self.frame[~self.frame["id"].isin(rows["id"])]
        self.frame = pd.concat([kept, rows], ignore_index=True)

    def remove(self, ids: Sequence[str]) -> None:
        self.frame = self.frame[~self.frame["id"].isin(ids)].reset_index(drop=True)

    def reread(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return hours_of(self.frame, start, end)


def changed_rows(frame: pd.DataFrame, data: st.DataObject) -> pd.DataFrame:
    """Some rows of ``frame`` with a new status, latency, agent or time (perhaps another hour)."""
    chosen = data.draw(st.lists(st.sampled_from(list(frame.index)), unique=True, max_size=6))
    rows = frame.loc[chosen].copy()
    for i in rows.index:
        rows.loc[i, "status"] = data.draw(st.sampled_from(STATUSES))
        rows.loc[i, "latency_ms"] = data.draw(st.none() | st.integers(0, 3000).map(float))
        rows.loc[i, "agent_id"] = data.draw(st.sampled_from(AGENTS))
        shift = pd.Timedelta(seconds=data.draw(st.integers(-30 * 3600, 30 * 3600)))
        rows.loc[i, "timestamp"] = rows.loc[i, "timestamp"] + shift
    return rows.astype(frame.dtypes.to_dict())


@settings(max_examples=40, deadline=None)
@given(frame=frames, data=st.data())
def test_applying_changes_equals_building_from_the_rows_afterwards(frame, data):
    source = Source(frame)
    rollups = Rollups.build(frame, dimensions=["region"])
    next_id = len(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        # New rows, some late (hours already rolled up, inside known conversations).
        start = data.draw(st.sampled_from(STARTS))
        inserted = messages_frame(start, data.draw(st.lists(row, max_size=8)), next_id)
        next_id += len(inserted)
        updated = changed_rows(source.frame, data) if len(source.frame) else inserted[:0]
        gone = data.draw(st.lists(st.sampled_from([*source.frame["id"], "never-seen"]), max_size=4))
        changed = pd.concat([inserted, updated], ignore_index=True)
        source.upsert(changed)
        source.remove(gone)
        rollups = rollups.apply(changed, gone, source.reread)
        rebuilt = Rollups.build(source.frame, dimensions=["region"])
        pd.testing.assert_frame_equal(rollups.table, rebuilt.table)
        pd.testing.assert_frame_equal(rollups.handoffs(), rebuilt.handoffs())
        pd.testing.assert_frame_equal(rollups.latency_ranking(), rebuilt.latency_ranking())
    assert_answers_equal(rollups, source.frame)


@settings(max_examples=20, deadline=None)
@given(frame=frames, cut=st.integers(0, 4))
def test_merging_rollups_of_other_conversations_equals_building_both(frame, cut):
    early = frame["conversation_id"] < f"c{cut}"
    merged = Rollups.build(frame[early]).merge(Rollups.build(frame[~early]))
    whole = Rollups.build(frame)
    pd.testing.assert_frame_equal(merged.table, whole.table)
    pd.testing.assert_frame_equal(merged.handoffs(), whole.handoffs())
    pd.testing.assert_frame_equal(merged.latency_ranking(), whole.latency_ranking())
    assert merged.kpis().to_dict() == whole.kpis().to_dict()
    if len(frame):
        with pytest.raises(QueryError, match="same messages"):
            whole.merge(whole)
    with pytest.raises(QueryError, match="keyed differently"):
        whole.merge(Rollups.build(frame, offset_minutes=30))


@settings(max_examples=20, deadline=None)
@given(frame=frames, data=st.data())
def test_bytes_round_trip_and_keep_taking_changes(frame, data):
    source = Source(frame)
    rollups = Rollups.build(frame, dimensions=["region"], offset_minutes=30)
    restored = Rollups.from_bytes(rollups.to_bytes())
    pd.testing.assert_frame_equal(restored.table, rollups.table)
    pd.testing.assert_frame_equal(restored.handoffs(), rollups.handoffs())
    assert (restored.dimensions, restored.offset_minutes) == (("region",), 30)
    assert_answers_equal(restored, frame, tz="Asia/Kolkata")
    changed = messages_frame(STARTS[1], data.draw(st.lists(row, max_size=5)), len(frame))
    changed = pd.concat([changed, changed_rows(frame, data) if len(frame) else changed[:0]])
    source.upsert(changed)
    after = restored.apply(changed, [], source.reread)
    rebuilt = Rollups.build(source.frame, dimensions=["region"], offset_minutes=30)
    pd.testing.assert_frame_equal(after.table, rebuilt.table)
    selection = Rollups.from_bytes(rollups.select(STARTS[0], STARTS[2]).to_bytes())
    with pytest.raises(QueryError, match="selection"):
        selection.apply(changed, [], source.reread)


def test_bytes_of_another_format_are_refused():
    data = Rollups.build(messages_frame(STARTS[0], [])).to_bytes()
    magic = data.index(FORMAT_VERSION.to_bytes(4, "little"))
    stale = data[:magic] + (FORMAT_VERSION + 1).to_bytes(4, "little") + data[magic + 4 :]
    with pytest.raises(RollupsFormatError, match="rebuild"):
        Rollups.from_bytes(stale)
    with pytest.raises(RollupsFormatError, match="not rollups"):
        Rollups.from_bytes(b"PAR1" + data)


def test_empty_rollups_answer_as_metrics_over_no_rows():
    empty = messages_frame(STARTS[0], [])
    rollups = Rollups.build(empty, dimensions=["region"])
    assert_answers_equal(rollups, empty)
    pd.testing.assert_frame_equal(rollups.handoffs(), metrics.handoffs(empty))
    assert rollups.hours is None
    assert rollups.coverage(STARTS[0], STARTS[1]) == 0.0
    assert rollups.kpis().to_dict() == metrics.kpis(empty).to_dict()


def test_percentiles_of_many_latencies_are_within_the_rank_error():
    rng = np.random.default_rng(7)
    n = 200_000
    frame = pd.DataFrame(
        {
            "id": [f"m{i}" for i in range(n)],
            "conversation_id": "c",
            "agent_id": rng.choice(["a0", "a1"], n),
            "role": "agent",
            "timestamp": STARTS[0] + pd.to_timedelta(rng.integers(0, 10 * 86400, n), unit="s"),
            "latency_ms": rng.lognormal(6, 1, n),
            "status": "ok",
        }
    ).reindex(columns=list(MESSAGE_DTYPES))
    frame = frame.astype(MESSAGE_DTYPES)
    rollups = Rollups.build(frame)
    latency = frame["latency_ms"]
    kpis = rollups.kpis()
    assert RANK_ERROR < 0.01
    for p in metrics.LATENCY_PERCENTILES:
        assert_rank_within(latency, getattr(kpis, f"latency_p{p}"), p / 100, RANK_ERROR)
    series = rollups.latency_series("1D")
    days = latency.groupby(frame["timestamp"].dt.floor("D"))
    for (day, p50), (_, values) in zip(series["p50"].items(), days, strict=True):
        assert_rank_within(values, p50, 0.5, RANK_ERROR)
        assert day in series.index
    assert rollups.hours == (STARTS[0], STARTS[0] + 10 * 24 * HOUR - HOUR)
    assert rollups.nbytes > 0


def test_buckets_past_the_sketch_size_take_changes_as_well():
    rng = np.random.default_rng(3)
    rows = [
        {
            "conversation_id": f"c{i % 40}",
            "agent_id": f"a{i % 2}",
            "role": "agent",
            "status": "ok",
            "latency_ms": float(rng.integers(0, 10_000)),
            "second": int(rng.integers(0, 2 * 3600)),
        }
        for i in range(3000)
    ]
    frame = messages_frame(STARTS[0], rows)
    source = Source(frame[:2000])
    rollups = Rollups.build(source.frame)
    updated = frame[:300].assign(latency_ms=frame["latency_ms"][:300] * 2, status="error")
    changed = pd.concat([frame[2000:], updated], ignore_index=True)
    source.upsert(changed)
    source.remove(list(frame["id"][300:400]))
    rollups = rollups.apply(changed, list(frame["id"][300:400]), source.reread)
    pd.testing.assert_frame_equal(rollups.table, Rollups.build(source.frame).table)
    kpis, latency = rollups.kpis(), source.frame["latency_ms"]
    for p in metrics.LATENCY_PERCENTILES:
        assert_rank_within(latency, getattr(kpis, f"latency_p{p}"), p / 100, RANK_ERROR)
    # Sketches merge with random compactions: what round-trips exactly is what is held.
    data = rollups.to_bytes()
    assert Rollups.from_bytes(data).to_bytes() == data
