"""Metrics on small hand-written frames, with expected numbers worked out by hand."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import metrics
from pipelines.metrics import Kpis
from pipelines.schema import MESSAGE_COLUMNS, MESSAGE_DTYPES

NaN = math.nan
COLUMNS = MESSAGE_COLUMNS
DTYPES = MESSAGE_DTYPES


def messages_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """A canonical messages frame from rows given in ``COLUMNS`` order (None for missing;
    columns left out at the end of a row are missing too)."""
    padded = [[*row, *[None] * (len(COLUMNS) - len(row))] for row in rows]
    frame = pd.DataFrame(padded, columns=list(COLUMNS), dtype=object)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame.astype(DTYPES)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# Three conversations on 2024-01-01. Agent replies: m2 m4 m5 m7 m9 m10 (m4 error, m7 timeout);
# latencies of replies: 100 300 400 200 1000 (m9 has none).  Models: m2 m4 priced (0.5 and
# 0.25 USD), m10's model has no price; the others name none.
SAMPLE = messages_frame([
    # id    conv  agent  role     timestamp              lat   in    out   status     user
    ("m1",  "c1", None,  "user",  "2024-01-01 10:00:00", None, 12,   None, "ok",      "u1"),
    ("m2",  "c1", "a1",  "agent", "2024-01-01 10:00:02", 100,  30,   40,   "ok",      None),
    ("m3",  "c1", "a1",  "tool",  "2024-01-01 10:00:03", None, None, 5,    "ok",      None),
    ("m4",  "c1", "a2",  "agent", "2024-01-01 10:00:10", 300,  20,   10,   "error",   None),
    ("m5",  "c1", "a1",  "agent", "2024-01-01 10:00:20", 400,  10,   10,   "ok",      None),
    ("m6",  "c2", None,  "user",  "2024-01-01 10:20:00", None, 8,    None, "ok",      "u2"),
    ("m7",  "c2", "a2",  "agent", "2024-01-01 10:20:05", 200,  10,   20,   "timeout", None),
    ("m8",  "c2", None,  "user",  "2024-01-01 10:40:00", None, 5,    None, "ok",      "u2"),
    ("m9",  "c3", "a1",  "agent", "2024-01-01 10:50:00", None, None, None, "ok",      None),
    ("m10", "c3", "a2",  "agent", "2024-01-01 10:50:30", 1000, 0,    50,   "ok",      None),
])  # fmt: skip
SAMPLE.loc[[1, 3, 9], "model"] = ["gx", "gx", "odd"]
SAMPLE.loc[[1, 3], "tokens_cached_in"] = [0, 5]
SAMPLE.loc[[1, 3], "cost_usd"] = [0.5, 0.25]
EMPTY = SAMPLE.iloc[:0]
PER_AGENT_COLUMNS = [
    "agent_id", "name", "kind", "team", "status", "last_seen", "messages", "conversations",
    "error_rate", "latency_p50", "latency_p95", "tokens_in", "tokens_out", "cost_usd",
]  # fmt: skip
CONVERSATION_COLUMNS = [
    "conversation_id", "user_id", "started", "ended", "duration_s", "turns", "agents", "errors",
    "unanswered", "latency_total_ms",
]  # fmt: skip


def test_helper_builds_canonical_dtypes() -> None:
    assert SAMPLE.dtypes.astype(str).to_dict() == DTYPES


# --- kpis -----------------------------------------------------------------------------------


def test_kpis_of_sample() -> None:
    # Sorted reply latencies 100 200 300 400 1000; linear interpolation at rank 4q:
    # p50 = 300, p95 = 400 + 0.8 * 600 = 880, p99 = 400 + 0.96 * 600 = 976.
    assert metrics.kpis(SAMPLE).to_dict() == {
        "messages": 10,
        "conversations": 3,
        "active_agents": 2,
        "error_rate": pytest.approx(2 / 6),
        "latency_ms": {"p50": 300.0, "p95": pytest.approx(880.0), "p99": pytest.approx(976.0)},
        "tokens": {"in": 95, "out": 135},
        "cost": {"usd": 0.75, "unpriced_messages": 1},
    }


def test_kpis_ignore_extra_columns_and_row_order() -> None:
    with_content = SAMPLE.assign(content="hello")
    assert metrics.kpis(with_content.iloc[::-1]) == metrics.kpis(SAMPLE)


def test_kpis_of_empty_frame() -> None:
    kpis = metrics.kpis(EMPTY)
    assert kpis.to_dict() == {
        "messages": 0,
        "conversations": 0,
        "active_agents": 0,
        "error_rate": None,  # no reply: no rate
        "latency_ms": {"p50": None, "p95": None, "p99": None},
        "tokens": {"in": 0, "out": 0},
        "cost": {"usd": 0.0, "unpriced_messages": 0},
    }
    assert json.dumps(kpis.to_dict(), allow_nan=False)


def test_kpis_without_agent_replies() -> None:
    users_only = SAMPLE[SAMPLE["role"] == "user"]
    kpis = metrics.kpis(users_only)
    assert (kpis.messages, kpis.conversations, kpis.active_agents) == (3, 2, 0)
    assert math.isnan(kpis.error_rate) and kpis.to_dict()["error_rate"] is None
    assert kpis.to_dict()["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    assert kpis.to_dict()["tokens"] == {"in": 25, "out": 0}


def test_kpis_with_all_latencies_missing_still_count_errors() -> None:
    frame = messages_frame(
        [
            ("x1", "c1", "a1", "agent", "2024-01-01 10:00", None, None, None, "error", None),
            ("x2", "c1", "a1", "agent", "2024-01-01 10:01", None, None, None, "ok", None),
        ]
    )
    kpis = metrics.kpis(frame)
    assert kpis.error_rate == 0.5
    assert math.isnan(kpis.latency_p50) and math.isnan(kpis.latency_p99)
    assert kpis.to_dict()["tokens"] == {"in": 0, "out": 0}


def test_kpis_of_a_single_message() -> None:
    frame = messages_frame(
        [("x1", "c1", "a1", "agent", "2024-01-01 10:00", 250.0, 7, None, "timeout", None)]
    )
    assert metrics.kpis(frame) == Kpis(
        messages=1,
        conversations=1,
        active_agents=1,
        error_rate=1.0,
        latency_p50=250.0,
        latency_p95=250.0,
        latency_p99=250.0,
        tokens_in=7,
        tokens_out=0,
        cost_usd=0.0,
        unpriced_messages=0,
    )


def test_kpis_dict_holds_plain_python_numbers() -> None:
    payload = metrics.kpis(SAMPLE).to_dict()
    assert {type(payload[k]) for k in ("messages", "conversations", "active_agents")} == {int}
    assert type(payload["error_rate"]) is float
    assert {type(v) for v in payload["latency_ms"].values()} == {float}
    assert {type(v) for v in payload["tokens"].values()} == {int}
    assert (type(payload["cost"]["usd"]), type(payload["cost"]["unpriced_messages"])) == (
        float,
        int,
    )
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload


def test_kpi_changes() -> None:
    previous = Kpis(10, 4, 2, 0.25, 100.0, NaN, 200.0, 0, 50, 2.0, 0)
    current = Kpis(15, 3, 2, 0.5, 150.0, 300.0, NaN, 10, 25, 3.0, 1)
    assert metrics.kpi_changes(current, previous) == {
        "messages": 0.5,
        "conversations": -0.25,
        "active_agents": 0.0,
        "error_rate": 1.0,
        "latency_p50": 0.5,
        "latency_p95": None,  # previous NaN
        "latency_p99": None,  # current NaN
        "tokens_in": None,  # previous 0
        "tokens_out": -0.5,
        "cost_usd": 0.5,
        "unpriced_messages": None,  # previous 0
    }


# --- windows and intervals --------------------------------------------------------------------


def test_trim_window_includes_both_ends() -> None:
    trimmed = metrics.trim_window(SAMPLE, utc("2024-01-01 10:00:02"), utc("2024-01-01 10:20:05"))
    assert trimmed["id"].tolist() == ["m2", "m3", "m4", "m5", "m6", "m7"]


@pytest.mark.parametrize(
    ("span", "interval"),
    [
        ("1h", "30s"),  # 120 bins; 10s would give 360
        ("1D", "5min"),  # 288 bins
        ("7D", "1h"),  # 168 bins; 30min would give 336
        ("30D", "3h"),  # 240 bins
        ("365D", "2D"),  # 183 bins; 1D would give 365
    ],
)
def test_choose_interval(span: str, interval: str) -> None:
    start = utc("2024-01-01")
    assert metrics.choose_interval(start, start + pd.Timedelta(span)) == interval


def test_choose_interval_takes_fewer_bins_when_asked() -> None:
    start = utc("2024-01-01")
    assert metrics.choose_interval(start, start + pd.Timedelta("24h"), max_bins=60) == "30min"


@given(seconds=st.integers(min_value=600, max_value=2100 * 86400))
def test_choose_interval_gives_60_to_300_bins(seconds: int) -> None:
    start = utc("2024-01-01")
    end = start + pd.Timedelta(seconds=seconds)
    bins = (end - start) / pd.Timedelta(metrics.choose_interval(start, end))
    assert 60 <= bins <= 300


# --- time series ------------------------------------------------------------------------------


def quarter_hours(*times: str) -> pd.DatetimeIndex:
    labels = [utc(f"2024-01-01 {time}") for time in times]
    return pd.DatetimeIndex(labels, freq="15min", name="timestamp").as_unit("ns")


def test_volume_series_by_status() -> None:
    expected = pd.DataFrame(
        {"error": [1, 0, 0, 0], "ok": [4, 1, 1, 2], "timeout": [0, 1, 0, 0]},
        index=quarter_hours("10:00", "10:15", "10:30", "10:45"),
    ).rename_axis(columns="status")
    pd.testing.assert_frame_equal(metrics.volume_series(SAMPLE, "15min"), expected)


def test_volume_series_by_agent_keeps_messages_without_agent() -> None:
    expected = pd.DataFrame(
        {"(none)": [1, 1, 1, 0], "a1": [3, 0, 0, 1], "a2": [1, 1, 0, 1]},
        index=quarter_hours("10:00", "10:15", "10:30", "10:45"),
    ).rename_axis(columns="agent_id")
    pd.testing.assert_frame_equal(metrics.volume_series(SAMPLE, "15min", by="agent_id"), expected)


def test_volume_series_fills_empty_bins_with_zero() -> None:
    volume = metrics.volume_series(SAMPLE, "5min", by=None)
    assert volume.columns.tolist() == ["messages"]
    assert volume.index[0] == utc("2024-01-01 10:00") and volume.index[-1] == utc(
        "2024-01-01 10:50"
    )
    assert volume["messages"].tolist() == [5, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2]


def test_daily_bins_start_at_local_midnight() -> None:
    frame = messages_frame(
        [
            # 23:30 on Jan 1 in Paris, then 00:30 and 13:00 on Jan 2.
            ("x1", "c1", None, "user", "2024-01-01 22:30", None, None, None, "ok", "u1"),
            ("x2", "c1", None, "user", "2024-01-01 23:30", None, None, None, "ok", "u1"),
            ("x3", "c1", None, "user", "2024-01-02 12:00", None, None, None, "ok", "u1"),
        ]
    )
    paris = metrics.volume_series(frame, "1D", by=None, tz="Europe/Paris")
    assert paris.index.tolist() == [
        pd.Timestamp("2024-01-01", tz="Europe/Paris"),
        pd.Timestamp("2024-01-02", tz="Europe/Paris"),
    ]
    assert paris["messages"].tolist() == [1, 2]
    assert metrics.volume_series(frame, "1D", by=None)["messages"].tolist() == [2, 1]


def test_daily_bins_follow_daylight_saving_time() -> None:
    frame = messages_frame(
        [
            # 23:30 on Mar 30 (UTC+1), then 00:30 on Apr 1 (UTC+2); Mar 31 lasts 23 hours.
            ("x1", "c1", None, "user", "2024-03-30 22:30", None, None, None, "ok", "u1"),
            ("x2", "c1", None, "user", "2024-03-31 22:30", None, None, None, "ok", "u1"),
        ]
    )
    paris = metrics.volume_series(frame, "1D", by=None, tz="Europe/Paris")
    assert [str(label) for label in paris.index] == [
        "2024-03-30 00:00:00+01:00",
        "2024-03-31 00:00:00+01:00",
        "2024-04-01 00:00:00+02:00",
    ]
    assert paris["messages"].tolist() == [1, 0, 1]


def test_latency_series() -> None:
    # 10:00 bin: 100 300 400 -> p50 300, p95 300 + 0.9 * 100, p99 300 + 0.98 * 100.
    expected = pd.DataFrame(
        {
            "p50": [300.0, 200.0, NaN, 1000.0],
            "p95": [390.0, 200.0, NaN, 1000.0],
            "p99": [398.0, 200.0, NaN, 1000.0],
            "count": [3, 1, 0, 1],
        },
        index=quarter_hours("10:00", "10:15", "10:30", "10:45"),
    )
    pd.testing.assert_frame_equal(metrics.latency_series(SAMPLE, "15min"), expected)


def test_latency_series_custom_percentiles() -> None:
    series = metrics.latency_series(SAMPLE, "1h", percentiles=(0, 99.9))
    assert series.columns.tolist() == ["p0", "p99.9", "count"]
    assert series["p0"].tolist() == [100.0]


def test_error_rate_series() -> None:
    index = quarter_hours("10:00", "10:15", "10:30", "10:45")
    overall = metrics.error_rate_series(SAMPLE, "15min", by=None)
    expected = pd.DataFrame({"error_rate": [1 / 3, 1.0, NaN, 0.0]}, index=index)
    pd.testing.assert_frame_equal(overall, expected)
    by_agent = metrics.error_rate_series(SAMPLE, "15min")
    expected = pd.DataFrame(
        {"a1": [0.0, NaN, NaN, 0.0], "a2": [1.0, 1.0, NaN, 0.0]}, index=index
    ).rename_axis(columns="agent_id")
    pd.testing.assert_frame_equal(by_agent, expected)


def test_week_over_week() -> None:
    now = utc("2024-01-15")
    frame = messages_frame(
        [
            ("x1", "c1", None, "user", "2023-12-31 23:59", None, None, None, "ok", "u1"),  # out
            ("x2", "c1", None, "user", "2024-01-01 00:00", None, None, None, "ok", "u1"),
            ("x3", "c1", None, "user", "2024-01-02 12:00", None, None, None, "ok", "u1"),
            ("x4", "c1", None, "user", "2024-01-08 00:00", None, None, None, "ok", "u1"),
            ("x5", "c1", None, "user", "2024-01-09 05:00", None, None, None, "ok", "u1"),
            ("x6", "c1", None, "user", "2024-01-15 00:00", None, None, None, "ok", "u1"),
            ("x7", "c1", None, "user", "2024-01-15 00:01", None, None, None, "ok", "u1"),  # out
        ]
    )
    table = metrics.week_over_week(frame, "1D", now)
    assert table["offset"].tolist() == [pd.Timedelta(days=d) for d in range(7)]
    assert table["this_week"].tolist() == [1, 1, 0, 0, 0, 0, 1]
    assert table["last_week"].tolist() == [1, 1, 0, 0, 0, 0, 0]


# --- tables -----------------------------------------------------------------------------------


def test_per_agent_without_agents_frame() -> None:
    table = metrics.per_agent(SAMPLE)
    assert table["agent_id"].tolist() == ["a1", "a2"]
    assert table["messages"].tolist() == [4, 3]
    assert table["conversations"].tolist() == [2, 3]
    assert table["error_rate"].tolist() == pytest.approx([0.0, 2 / 3])
    # a1: 100 400 -> p95 100 + 0.95 * 300; a2: 200 300 1000 -> p95 300 + 0.9 * 700.
    assert table["latency_p50"].tolist() == pytest.approx([250.0, 300.0])
    assert table["latency_p95"].tolist() == pytest.approx([385.0, 930.0])
    assert table["tokens_in"].tolist() == [40, 30]
    assert table["tokens_out"].tolist() == [55, 80]
    assert table["last_seen"].tolist() == [utc("2024-01-01 10:50:00"), utc("2024-01-01 10:50:30")]
    assert table[["name", "kind", "team", "status"]].isna().all(axis=None)


def test_per_agent_lists_every_known_agent() -> None:
    agents = pd.DataFrame(
        {
            "id": ["a1", "a9"],
            "name": ["Planner", "Idle"],
            "kind": ["llm", "tool"],
            "status": ["active", "retired"],
            "team": ["core", "ops"],
            "created_at": [utc("2023-01-01"), utc("2023-01-01")],
            "last_seen": [utc("2023-12-31"), utc("2023-06-01")],
        }
    ).astype({c: "str" for c in ("id", "name", "kind", "status", "team")})
    table = metrics.per_agent(SAMPLE, agents)
    assert table.columns.tolist() == PER_AGENT_COLUMNS
    assert table["agent_id"].tolist() == ["a1", "a2", "a9"]
    assert table["name"].tolist()[::2] == ["Planner", "Idle"] and pd.isna(table["name"][1])
    assert table["messages"].tolist() == [4, 3, 0]
    # a1's stored last_seen is older than its last message; a9 has no message here.
    assert table["last_seen"].tolist() == [
        utc("2024-01-01 10:50:00"),
        utc("2024-01-01 10:50:30"),
        utc("2023-06-01"),
    ]
    idle = table.iloc[2]
    assert (idle["conversations"], idle["tokens_in"]) == (0, 0)
    assert math.isnan(idle["error_rate"]) and math.isnan(idle["latency_p50"])


def test_conversation_stats() -> None:
    stats = metrics.conversation_stats(SAMPLE.iloc[::-1])
    expected = pd.DataFrame(
        {
            "conversation_id": ["c1", "c2", "c3"],
            "user_id": ["u1", "u2", None],
            "started": [
                utc("2024-01-01 10:00:00"),
                utc("2024-01-01 10:20"),
                utc("2024-01-01 10:50"),
            ],
            "ended": [
                utc("2024-01-01 10:00:20"),
                utc("2024-01-01 10:40"),
                utc("2024-01-01 10:50:30"),
            ],
            "duration_s": [20.0, 1200.0, 30.0],
            "turns": [5, 3, 2],
            "agents": [2, 1, 2],
            "errors": [1, 1, 0],
            "unanswered": [False, True, False],
            "latency_total_ms": [800.0, 200.0, 1000.0],
        }
    ).astype(
        {
            "conversation_id": "str",
            "user_id": "str",
            "started": "M8[ns, UTC]",
            "ended": "M8[ns, UTC]",
        }
    )
    pd.testing.assert_frame_equal(stats, expected)


def test_conversation_stats_takes_the_earliest_user() -> None:
    frame = messages_frame(
        [
            ("x1", "c1", None, "user", "2024-01-01 10:05", None, None, None, "ok", "late"),
            ("x2", "c1", "a1", "agent", "2024-01-01 10:01", 5.0, None, None, "ok", None),
            ("x3", "c1", None, "user", "2024-01-01 10:00", None, None, None, "ok", "early"),
        ]
    )
    stats = metrics.conversation_stats(frame)
    assert stats["user_id"].tolist() == ["early"]
    assert stats["unanswered"].tolist() == [True]  # the reply came before the last user message


def test_slowest_conversations_rank_by_total_latency() -> None:
    slowest = metrics.slowest_conversations(SAMPLE, n=2)
    assert slowest["conversation_id"].tolist() == ["c3", "c1"]
    assert slowest["latency_total_ms"].tolist() == [1000.0, 800.0]


def test_handoffs_stay_within_conversations() -> None:
    # Reply order: c1 a1 a2 a1, c2 a2, c3 a1 a2. Crossing from c1 to c2 or c2 to c3 is no hand-off.
    expected = pd.DataFrame({"source": ["a1", "a2"], "target": ["a2", "a1"], "count": [2, 1]})
    expected = expected.astype({"source": "str", "target": "str"})
    pd.testing.assert_frame_equal(metrics.handoffs(SAMPLE.iloc[::-1]), expected)


def test_top_errors() -> None:
    expected = pd.DataFrame(
        {
            "agent_id": ["a2", "a2"],
            "status": ["timeout", "error"],
            "count": [1, 1],
            "last_seen": [utc("2024-01-01 10:20:05"), utc("2024-01-01 10:00:10")],
        }
    ).astype({"agent_id": "str", "status": "str", "last_seen": "M8[ns, UTC]"})
    pd.testing.assert_frame_equal(metrics.top_errors(SAMPLE), expected)
    assert len(metrics.top_errors(SAMPLE, n=1)) == 1


def test_latency_distribution() -> None:
    # 100 .. 1000 in three bins of 300: [100, 400) holds 100 200 300; the last bin is closed.
    histogram = metrics.latency_distribution(SAMPLE, bins=3)
    assert histogram["left"].tolist() == [100.0, 400.0, 700.0]
    assert histogram["right"].tolist() == [400.0, 700.0, 1000.0]
    assert histogram["count"].tolist() == [3, 1, 1]


def test_latency_distribution_on_a_log_scale() -> None:
    # 100 .. 1000 in two bins of a factor sqrt(10) each: 100 200 300 below 316.2, 400 1000 above.
    histogram = metrics.latency_distribution(SAMPLE, bins=2, log=True)
    assert histogram["left"].tolist() == pytest.approx([100.0, 100 * 10**0.5])
    assert histogram["right"].tolist() == pytest.approx([100 * 10**0.5, 1000.0])
    assert histogram["count"].tolist() == [3, 2]
    zero = messages_frame(
        [
            (f"x{latency}", "c", "a", "agent", "2024-01-01 10:00", latency, None, None, "ok", None)
            for latency in (0.0, 10.0, 1000.0)
        ]
    )
    # No log of zero: a reply answered at once falls in the first bin.
    assert metrics.latency_distribution(zero, bins=2, log=True)["count"].tolist() == [2, 1]


def test_coverage_is_the_share_of_a_period_its_data_reach() -> None:
    start, end = utc("2024-01-01 00:00"), utc("2024-01-01 20:00")
    # SAMPLE starts at 10:00: the second half of the 20 hours.
    assert metrics.coverage(SAMPLE, start, end) == pytest.approx(0.5)
    assert metrics.coverage(SAMPLE, utc("2024-01-01 10:00"), end) == 1.0
    assert metrics.coverage(EMPTY, start, end) == 0.0


def test_latency_ecdf() -> None:
    ecdf = metrics.latency_ecdf(SAMPLE)
    assert ecdf["latency_ms"].tolist() == [100.0, 200.0, 300.0, 400.0, 1000.0]
    assert ecdf["fraction"].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    per_agent = metrics.latency_ecdf(SAMPLE, by="agent_id")
    assert per_agent["agent_id"].tolist() == ["a1", "a1", "a2", "a2", "a2"]
    assert per_agent["fraction"].tolist() == pytest.approx([1 / 2, 1, 1 / 3, 2 / 3, 1])


def test_latency_ecdf_counts_ties_once() -> None:
    frame = messages_frame(
        [
            ("x1", "c1", "a1", "agent", "2024-01-01 10:00", 100.0, None, None, "ok", None),
            ("x2", "c1", "a1", "agent", "2024-01-01 10:01", 100.0, None, None, "ok", None),
            ("x3", "c1", "a1", "agent", "2024-01-01 10:02", 200.0, None, None, "ok", None),
        ]
    )
    ecdf = metrics.latency_ecdf(frame)
    assert ecdf["latency_ms"].tolist() == [100.0, 200.0]
    assert ecdf["fraction"].tolist() == pytest.approx([2 / 3, 1.0])


@pytest.mark.parametrize(
    ("compute", "columns"),
    [
        (metrics.per_agent, PER_AGENT_COLUMNS),
        (metrics.conversation_stats, CONVERSATION_COLUMNS),
        (metrics.slowest_conversations, CONVERSATION_COLUMNS),
        (metrics.handoffs, ["source", "target", "count"]),
        (metrics.top_errors, ["agent_id", "status", "count", "last_seen"]),
        (metrics.latency_distribution, ["left", "right", "count"]),
        (metrics.latency_ecdf, ["latency_ms", "fraction"]),
        (lambda frame: metrics.volume_series(frame, "1h", by=None), ["messages"]),
        (lambda frame: metrics.latency_series(frame, "1h"), ["p50", "p95", "p99", "count"]),
    ],
)
def test_empty_frame_gives_empty_table(compute: Any, columns: list[str]) -> None:
    table = compute(EMPTY)
    assert len(table) == 0
    assert table.columns.tolist() == columns


# --- properties -------------------------------------------------------------------------------

message_rows = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3"]),
        st.sampled_from([None, "a1", "a2", "a3"]),
        st.sampled_from(["user", "agent", "system", "tool"]),
        st.integers(min_value=0, max_value=3 * 86400),  # seconds after START, across a DST change
        st.one_of(st.none(), st.integers(min_value=0, max_value=10_000).map(float)),
        st.one_of(st.none(), st.integers(min_value=0, max_value=500)),
        st.one_of(st.none(), st.integers(min_value=0, max_value=500)),
        st.sampled_from(["ok", "error", "timeout", "other"]),
        st.sampled_from([None, "u1", "u2"]),
    ),
    max_size=40,
)
START = utc("2024-03-30")


def generated(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    return messages_frame(
        [
            (f"m{i}", conversation, agent, role, START + pd.Timedelta(seconds=seconds), *rest)
            for i, (conversation, agent, role, seconds, *rest) in enumerate(rows)
        ]
    )


@settings(max_examples=60, deadline=None)
@given(
    rows=message_rows,
    interval=st.sampled_from(["5min", "1h", "1D"]),
    by=st.sampled_from([None, "status", "agent_id", "role"]),
    tz=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
)
def test_time_series_count_every_message_once(
    rows: list[tuple[Any, ...]], interval: str, by: str | None, tz: str
) -> None:
    frame = generated(rows)
    volume = metrics.volume_series(frame, interval, by=by, tz=tz)
    assert volume.to_numpy().sum() == len(frame)
    latency = metrics.latency_series(frame, interval, tz=tz)
    assert latency.index.equals(volume.index)
    timed_replies = (frame["role"] == "agent") & frame["latency_ms"].notna()
    assert latency["count"].sum() == timed_replies.sum()


@settings(max_examples=60, deadline=None)
@given(rows=message_rows)
def test_per_agent_agrees_with_kpis(rows: list[tuple[Any, ...]]) -> None:
    frame = generated(rows)
    table = metrics.per_agent(frame)
    assert table["messages"].sum() == frame["agent_id"].notna().sum()
    for row in table.itertuples():
        kpis = metrics.kpis(frame[frame["agent_id"] == row.agent_id])
        assert (row.messages, row.conversations) == (kpis.messages, kpis.conversations)
        assert (row.tokens_in, row.tokens_out) == (kpis.tokens_in, kpis.tokens_out)
        assert row.error_rate == pytest.approx(kpis.error_rate, nan_ok=True)
        assert row.latency_p50 == pytest.approx(kpis.latency_p50, nan_ok=True)
        assert row.latency_p95 == pytest.approx(kpis.latency_p95, nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(rows=message_rows)
def test_kpis_dict_is_plain_json(rows: list[tuple[Any, ...]]) -> None:
    payload = metrics.kpis(generated(rows)).to_dict()
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    counts = [payload["messages"], payload["conversations"], payload["active_agents"]]
    assert all(type(value) is int for value in counts)
    rate = payload["error_rate"]
    assert rate is None or (0.0 <= rate <= 1.0 and type(rate) is float)
    latency = payload["latency_ms"]
    if latency["p50"] is None:
        assert latency["p95"] is None and latency["p99"] is None
    else:
        assert latency["p95"] is not None and latency["p99"] is not None
        assert latency["p50"] <= latency["p95"] <= latency["p99"]


# --- cost ---------------------------------------------------------------------------------------


def test_per_agent_sums_the_cost_of_priced_messages() -> None:
    table = metrics.per_agent(SAMPLE).set_index("agent_id")
    # a1: m2 (0.5); a2: m4 (0.25), m10 unpriced and left out.
    assert table["cost_usd"].to_dict() == {"a1": 0.5, "a2": 0.25}


def test_breakdown_by_model() -> None:
    table = metrics.breakdown(SAMPLE, "model")
    assert table.to_dict("records") == [
        {
            "model": metrics.MISSING_LABEL,
            "messages": 7,
            "conversations": 3,
            "error_rate": pytest.approx(1 / 3),  # replies m5, m7 (timeout), m9
            "tokens_in": 45,  # m1 12, m5 10, m6 8, m7 10, m8 5
            "tokens_out": 35,  # m3 5, m5 10, m7 20
            "cost_usd": 0.0,
            "unpriced_messages": 0,
        },
        {
            "model": "gx",
            "messages": 2,
            "conversations": 1,
            "error_rate": 0.5,  # m2 ok, m4 error
            "tokens_in": 50,
            "tokens_out": 50,
            "cost_usd": 0.75,
            "unpriced_messages": 0,
        },
        {
            "model": "odd",
            "messages": 1,
            "conversations": 1,
            "error_rate": 0.0,
            "tokens_in": 0,
            "tokens_out": 50,
            "cost_usd": 0.0,
            "unpriced_messages": 1,
        },
    ]


def test_cost_series_by_model_counts_priced_messages_only() -> None:
    table = metrics.cost_series(SAMPLE, "30min", tz="UTC")
    assert list(table.columns) == ["gx"]
    assert table["gx"].tolist() == [0.75, 0.0]
    assert table.index.equals(metrics.volume_series(SAMPLE, "30min", by=None).index)


def test_unpriced_models() -> None:
    assert metrics.unpriced_models(SAMPLE).to_dict() == {"odd": 1}
    assert metrics.unpriced_models(EMPTY).empty
