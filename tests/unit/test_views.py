"""Views, filters and the shared memo on a small demo store, without a browser."""

from __future__ import annotations

import html
import io
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource, HoverTool, Plot
from hypothesis import given, settings
from hypothesis import strategies as st

from app import memo as compute
from app.cards import KPIS, KpiCards, coverage_note
from app.charts.layers import Layer, sync_source
from app.charts.live import LiveFigure
from app.dashboard import TABS, Dashboard
from app.memo import Memo, current, memo
from app.tabulator import sync_table, table
from app.views.agents import AgentsView
from app.views.base import narrow_time
from app.views.filters import Filters
from app.views.messages import MessagesView
from app.views.notice import plain
from app.views.overview import OverviewView, _top_bars
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline, demo, metrics
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource

pn.extension("tabulator")
hv.extension("bokeh")


AGENTS, MESSAGES = demo.generate(6, 3000, 3, seed=1)


@pytest.fixture
def store(tmp_path: Path) -> LocalSource:
    source = LocalSource(tmp_path / "store.db")
    source.upsert("agents", AGENTS)
    source.upsert("messages", MESSAGES)
    return source


@pytest.fixture
def backend(store: LocalSource) -> Iterator[LiveFrames]:
    compute.MEMO.clear()
    yield LiveFrames(store, MemoryFrameCache())
    compute.MEMO.clear()


def render(viewable: pn.viewable.Viewable) -> Document:
    """Render as a server session would, so that charts have Bokeh sources."""
    doc = Document()
    doc.add_root(pn.panel(viewable).get_root(doc))
    return doc


def add_messages(backend: LiveFrames, pipeline: MessagesPipeline, n: int = 30) -> None:
    """Write ``n`` messages of the last seconds and let the backend read them."""
    backend.source.upsert("messages", demo.live_messages(AGENTS, n, seed=2))  # type: ignore[attr-defined]
    backend.refresh(pipeline.spec())


# -- the shared memo ------------------------------------------------------------------------


def test_sessions_with_the_same_filters_share_one_computation(backend: LiveFrames) -> None:
    first, second = (MessagesPipeline(frames=backend, window="24h") for _ in range(2))
    misses = compute.MEMO.stats.misses
    assert memo(metrics.kpis, current(first)) == memo(metrics.kpis, current(second))
    assert compute.MEMO.stats.misses == misses + 1
    other = MessagesPipeline(frames=backend, window="24h", statuses=["error"])
    assert memo(metrics.kpis, current(other)).messages < memo(metrics.kpis, current(first)).messages
    assert compute.MEMO.stats.misses == misses + 2
    # The same statuses picked in another order are the same question.
    both, reversed_ = (
        MessagesPipeline(frames=backend, window="24h", statuses=statuses)
        for statuses in (["ok", "error"], ["error", "ok"])
    )
    assert memo(metrics.kpis, current(both)) == memo(metrics.kpis, current(reversed_))
    assert compute.MEMO.stats.misses == misses + 3


def test_new_data_replace_the_old_entry_of_the_same_question(backend: LiveFrames) -> None:
    pipeline = MessagesPipeline(frames=backend, window="24h")
    before = memo(metrics.kpis, current(pipeline))
    entries = len(compute.MEMO)
    add_messages(backend, pipeline)
    after = memo(metrics.kpis, current(pipeline))
    assert after.messages == before.messages + 30
    assert len(compute.MEMO) == entries


def test_the_memo_is_bounded_by_entries_and_bytes() -> None:
    small = Memo(max_entries=2)
    for key in "abc":
        small.get(key, 0, lambda: 1)
    assert len(small) == 2 and small.stats.evictions == 1
    frame = pd.DataFrame({"x": np.arange(1000)})
    tight = Memo(max_bytes=frame.memory_usage().sum() * 2)
    for key in "abcd":
        tight.get(key, 0, lambda: frame.copy())
    assert len(tight) == 2 and tight.stats.evictions == 2


def test_concurrent_misses_compute_once() -> None:
    shared, calls = Memo(), []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.05)
        return 42

    threads = [threading.Thread(target=shared.get, args=("q", 1, slow)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]


# -- in-place updates ------------------------------------------------------------------------


def source_of(data: dict[str, list[float]], events: list[str]) -> ColumnDataSource:
    """A source in a document that records the kind of each change sent to browsers."""
    source = ColumnDataSource({k: np.asarray(v) for k, v in data.items()})
    doc = Document()
    doc.add_root(source)
    doc.on_change(lambda event: events.append(type(event).__name__))
    return source


def test_sync_source_patches_changed_rows_and_streams_new_ones() -> None:
    events: list[str] = []
    source = source_of({"t": [1, 2, 3], "y": [10.0, 20.0, 30.0]}, events)
    done = sync_source(source, {"t": np.array([2, 3, 4]), "y": np.array([20.0, 35.0, 5.0])})
    assert done and events == ["ColumnsPatchedEvent", "ColumnsStreamedEvent"]
    assert source.data["t"].tolist() == [2, 3, 4]
    assert source.data["y"].tolist() == [20.0, 35.0, 5.0]


def test_sync_source_refuses_rows_that_do_not_continue() -> None:
    events: list[str] = []
    source = source_of({"t": [1, 2, 3], "y": [1.0, 2.0, 3.0]}, events)
    assert not sync_source(source, {"t": np.array([5, 6]), "y": np.array([1.0, 2.0])})
    assert not sync_source(source, {"t": np.array([1, 2, 3]), "z": np.array([1.0, 2.0, 3.0])})
    assert source.data["t"].tolist() == [1, 2, 3] and events == []


def test_sync_table_patches_cells_and_streams_rows() -> None:
    shown = table(pd.DataFrame({"key": ["a", "b"], "n": [1, 2]}))
    render(shown)
    before = shown.value
    sync_table(shown, pd.DataFrame({"key": ["a", "b", "c"], "n": [1, 5, 7]}))
    assert shown.value["n"].tolist() == [1, 5, 7]
    assert shown.value["key"].tolist() == ["a", "b", "c"]
    assert before["n"].tolist() == [1, 5]  # patched in place, not replaced
    sync_table(shown, pd.DataFrame({"key": ["z"], "n": [0]}))
    assert shown.value["key"].tolist() == ["z"]


def test_new_data_stream_into_the_overview_without_drawing_it_again(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend, window="24h")
    view = OverviewView(messages=messages, agents=AgentsPipeline(frames=backend))
    render(view)
    charts = (view.volume, view.latency)
    figures = [chart.figure for chart in charts]
    add_messages(backend, messages)
    messages.sync()
    assert all(chart.figure is figure for chart, figure in zip(charts, figures, strict=True))
    expected = metrics.kpis(messages.frame)
    assert view.cards.values["messages"] == expected.messages
    drawn = sum(
        np.sum(
            np.asarray(bars.data_source.data[bars.glyph.top])
            - bars.data_source.data[bars.glyph.bottom]
        )
        for bars in view.volume.figure.renderers
    )
    assert drawn == expected.messages


def test_busiest_agents_reorder_in_place_and_the_axis_follows() -> None:
    chart = LiveFigure(_top_bars, title="Busiest agents", value_axis="x", slots=10)

    def bars(agents: list[str], counts: list[int]) -> list[Layer]:
        ids = np.array([f"id-{agent}" for agent in agents], dtype=object)
        names = np.array(agents, dtype=object)
        return [Layer("agents", {"agent": names, "messages": np.array(counts), "agent_id": ids})]

    chart.update(bars(["c", "a", "b"], [1, 5, 9]))
    figure = render(chart).select_one({"type": Plot})
    (renderer,) = figure.renderers
    source = renderer.data_source
    chart.update(bars(["a", "b", "d"], [3, 5, 9]))  # c drops out, d comes in on top
    chart.update(bars(["d", "b", "a"], [4, 6, 9]))  # and the order changes
    assert chart.figure is figure and renderer.data_source is source
    assert figure.y_range.factors == ["d", "b", "a"]
    assert list(source.data["agent"]) == ["d", "b", "a"]
    assert list(source.data["messages"]) == [4, 6, 9]


def test_kpi_cards_show_the_kpis_and_their_change(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend, window="24h")
    view = OverviewView(messages=messages)
    now, before = metrics.kpis(messages.frame), metrics.kpis(messages.previous_frame)
    changes = metrics.kpi_changes(now, before)
    shown = view.cards.div.text
    for name, card in KPIS.items():
        assert view.cards.values[name] == pytest.approx(getattr(now, name), nan_ok=True)
        assert card.fmt.format(value=getattr(now, name)) in shown
        if changes[name] is not None:
            assert f"{changes[name]:+.1%}" in shown


def test_a_hidden_view_catches_up_when_shown(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend, window="24h")
    view = OverviewView(messages=messages, shown=False)
    shown_before = view.cards.values["messages"]
    assert shown_before is not None
    add_messages(backend, messages)
    messages.sync()
    assert view.cards.values["messages"] == shown_before
    view.shown = True
    assert view.cards.values["messages"] == shown_before + 30


# -- filters and drill-down ------------------------------------------------------------------


def widgets(filters: Filters) -> list[pn.widgets.Widget]:
    """The sidebar's widgets, top to bottom, as a user sees them."""
    return [w for w in filters.__panel__().select(pn.widgets.Widget)]


def widget(filters: Filters, kind: type[pn.widgets.Widget], **like: object) -> Any:
    """The sidebar's widget of ``kind`` whose attributes have the values of ``like``."""
    (found,) = [
        w
        for w in widgets(filters)
        if isinstance(w, kind) and all(getattr(w, k) == v for k, v in like.items())
    ]
    return found


def test_filters_drive_the_pipelines_and_follow_drill_down(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend)
    agents = AgentsPipeline().follow(messages)
    filters = Filters(messages, agents)
    agent = agents.frame["id"].iloc[0]
    widget(filters, pn.widgets.RadioButtonGroup, name="Window").value = "7d"
    filters.agent_picker.value = [agent]
    widget(filters, pn.widgets.AutocompleteInput, name="Time zone").value = "Europe/Paris"
    assert (messages.window, messages.agents, messages.tz) == ("7d", [agent], "Europe/Paris")
    assert agents.agents == [agent]
    start, end = messages.bounds
    narrow_time(messages, start + (end - start) / 2, end)
    buttons = widget(filters, pn.widgets.RadioButtonGroup, name="Window")
    middle = pd.Timestamp(start + (end - start) / 2)
    # A drag's ends are milliseconds nobody chose: the window takes in the whole minutes.
    assert buttons.value == "custom" and messages.start == middle.floor("1min")
    assert messages.end == pd.Timestamp(end).ceil("1min")


def test_message_volume_bars_stack_the_counts_inside_the_window(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend, window="7d")
    view = OverviewView(messages=messages)
    render(view)
    start, end = (pd.Timestamp(t).tz_localize(None) for t in messages.bounds)
    interval = pd.Timedelta(metrics.choose_interval(*map(pd.Timestamp, messages.bounds)))
    tops = []
    for bars in view.volume.figure.renderers:
        glyph, data = bars.glyph, bars.data_source.data
        left, right = (pd.to_datetime(data[glyph.left]), pd.to_datetime(data[glyph.right]))
        assert (left >= start - interval).all() and (right <= end + interval).all()
        assert ((right - left) == interval).all()
        assert (np.asarray(data[glyph.top]) >= np.asarray(data[glyph.bottom])).all()
        tops.append(np.asarray(data[glyph.top]))
    # The top of the stack in each bin is the number of messages in it.
    assert np.max(tops, axis=0).sum() == len(messages.frame)


def test_hovering_a_time_chart_shows_every_series_from_the_source(backend: LiveFrames) -> None:
    view = OverviewView(messages=MessagesPipeline(frames=backend, window="7d"))
    for chart in (view.volume, view.latency):
        plot = chart.figure
        (hover,) = [tool for tool in plot.tools if isinstance(tool, HoverTool)]
        labels = [label for label, _ in hover.tooltips]
        # Every series, by name (the latency's dots are the lines' own, unnamed).
        assert labels[:-1] == [r.name for r in plot.renderers if r.name is not None]
        (source,) = {id(r.data_source): r.data_source for r in plot.renderers}.values()
        fields = re.findall(r"@\{?(\w+)", " ".join(field for _, field in hover.tooltips))
        assert fields and set(fields) <= set(source.data)


def test_clicking_an_agent_bar_narrows_to_that_agent(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend, window="7d")
    view = OverviewView(messages=messages)
    render(view)
    (bars,) = view.top_agents.figure.renderers
    shown = list(bars.data_source.data["agent_id"])
    # What a click on the top bar (the busiest agent) sends back from the browser.
    bars.data_source.selected.indices = [len(shown) - 1]
    assert messages.agents == [shown[-1]]
    assert set(messages.frame["agent_id"]) == {shown[-1]}
    # No bar stays highlighted; the one bar left keeps the thickness of ten.
    (bars,) = view.top_agents.figure.renderers
    assert bars.data_source.selected.indices == []
    assert view.top_agents.figure.y_range.range_padding == (10 - 1) / 2
    # A second click on it clears the filter.
    bars.data_source.selected.indices = [0]
    assert messages.agents == [] and bars.data_source.selected.indices == []


def test_new_messages_offer_a_button_a_window_sliding_on_does_not(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend, window="7d")
    view = MessagesView(messages=messages)
    shown = view.table.value
    view._data_changed()  # the window slid on: no message the table lacks
    assert not view.latest.visible and view.table.value is shown
    add_messages(backend, messages)
    messages.sync()
    assert view.latest.visible and view.table.value is shown
    assert view.count.value == f"<b>{len(shown):,}</b> messages"
    # An empty table has no reader to disturb: it takes new messages at once.
    empty = MessagesView(messages=MessagesPipeline(frames=backend, window="7d", search="zzzz"))
    assert not len(empty.table.value)
    empty.messages.search = ""
    assert len(empty.table.value) and not empty.latest.visible


def test_a_previous_period_short_of_data_is_said_so() -> None:
    assert coverage_note(0.9, 1.0, "30d") is None
    note = coverage_note(0.17, 1.0, "30d")
    assert note is not None and "previous 30d holds data for 17% of its time" in note
    cards = KpiCards(KPIS)
    values = dict.fromkeys(KPIS, 1.0)
    cards.update(values, dict.fromkeys(KPIS, 5.45), "30d", note)
    assert "+545.0%" in cards.div.text and "vs previous 30d*" in cards.div.text
    assert note in cards.div.text


def shown_alert(filters: Filters) -> str:
    """The text of the alert at the top of the sidebar ("" when there is none)."""
    alerts = filters.__panel__().select(pn.pane.Alert)
    return str(alerts[0].object) if alerts else ""


def test_bad_values_from_a_link_are_refused_with_a_reason(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend)
    filters = Filters(messages)
    filters.refuse({"window": "2d", "tz": "Mars/Base", "start": "yesterday", "search": "c-1"})
    assert (messages.window, messages.tz, messages.start, messages.search) == (
        "24h",
        "UTC",
        None,
        "c-1",
    )
    assert len(filters.problems) == 3
    assert "window '2d' is not one of 15m, 1h, 24h, 7d, 30d, 90d, custom" in filters.problems[0]
    assert "Mars/Base" in filters.problems[1] and "yesterday" in filters.problems[2]
    shown = shown_alert(filters)
    # They quote the link: shown as text, never read as markup.
    assert all(plain(problem) in shown for problem in filters.problems)
    # A link is read again once the page has loaded: each reason is still shown once.
    filters.refuse({"window": "2d"})
    assert len(filters.problems) == 3 and shown_alert(filters) == shown
    filters.reset()
    assert shown_alert(filters) == ""


def test_a_custom_window_ending_before_it_starts_is_refused(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend)
    filters = Filters(messages)
    messages.param.update(window="custom", start=datetime(2024, 5, 2), end=datetime(2024, 5, 1))
    assert messages.window == "24h"
    assert widget(filters, pn.widgets.RadioButtonGroup, name="Window").value == "24h"
    assert "is not before end" in filters.problems[-1]


def test_the_custom_range_picker_sits_under_the_window_buttons(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend)
    filters = Filters(messages)
    filters.refuse({"tz": "Mars/Base"})  # an alert at the top of the sidebar
    start, end = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)
    messages.param.update(window="custom", start=start, end=end)
    shown = widgets(filters)
    typed = widget(filters, pn.widgets.TextInput, label="From")
    assert typed.visible and typed.value == "2024-05-01"
    above = shown[shown.index(typed) - 1]
    assert isinstance(above, pn.widgets.RadioButtonGroup) and "custom" in above.options


def test_a_custom_window_is_whole_days_in_the_page_zone(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend, tz="Europe/Paris")
    filters = Filters(messages)
    messages.window = "custom"
    since, until = (widget(filters, pn.widgets.TextInput, label=end) for end in ("From", "To"))
    days = widget(filters, pn.widgets.DateRangePicker)
    # Picked: from 00:00 of the first day to 24:00 of the last, in Paris (UTC+1 in November).
    days.value = (date(2026, 11, 20), date(2026, 11, 21))
    assert (messages.start, messages.end) == (
        datetime(2026, 11, 19, 23, tzinfo=UTC),
        datetime(2026, 11, 21, 23, tzinfo=UTC),
    )
    assert (since.value, until.value) == ("2026-11-20", "2026-11-21")
    # Typed: a day, or a day and a time.
    since.value = "2026-11-18 08:30"
    until.value = "2026-11-18"
    assert (messages.start, messages.end) == (
        datetime(2026, 11, 18, 7, 30, tzinfo=UTC),
        datetime(2026, 11, 18, 23, tzinfo=UTC),
    )
    assert days.value == (date(2026, 11, 18), date(2026, 11, 18))
    # Days to come cannot be picked; typed, they give an empty window, not an error.
    assert days.end == datetime.now(ZoneInfo("Europe/Paris")).date()
    until.value = "2099-01-01"
    assert messages.end == datetime(2099, 1, 1, 23, tzinfo=UTC) and not filters.problems
    since.value = "not a day"
    assert "'not a day' is not a date" in filters.problems[-1]
    assert messages.start == datetime(2026, 11, 18, 7, 30, tzinfo=UTC)


def test_url_forms_of_lists_and_dates() -> None:
    statuses, start = MessagesPipeline.param["statuses"], MessagesPipeline.param["start"]
    assert statuses.deserialize("error,timeout") == ["error", "timeout"]
    assert statuses.serialize(["error", "timeout"]) == "error,timeout"
    assert statuses.deserialize("") == []
    assert start.deserialize("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert start.serialize(datetime(2024, 5, 1, 2, tzinfo=UTC)) == "2024-05-01T02:00:00+00:00"
    assert start.serialize(None) == "" and start.deserialize("") is None


# -- the views -------------------------------------------------------------------------------


def test_every_tab_builds_and_shows_data(backend: LiveFrames) -> None:
    dashboard = Dashboard(backend)
    render(dashboard)
    for name in TABS:
        dashboard.tab = name
        view = dashboard.views[name]
        assert not view.problem.visible, view.problem.object
        assert view.shown and all(v.shown is (n == name) for n, v in dashboard.views.items())


def test_tabs_are_built_when_first_shown(backend: LiveFrames) -> None:
    dashboard = Dashboard(backend)
    assert list(dashboard.views) == ["overview"]
    dashboard.tab = "ops"
    assert list(dashboard.views) == ["overview", "ops"]


def test_selecting_a_message_opens_its_conversation(backend: LiveFrames) -> None:
    view = MessagesView(messages=MessagesPipeline(frames=backend))
    view.table.selection = [0]
    expected = view.table.value["conversation_id"].iloc[0]
    assert view.conversation == expected
    turns = view.messages.conversation(expected)
    assert len(view.thread.turns) == len(turns)
    assert html.escape(turns["content"].iloc[0]) in view.thread.turns[0].object


def test_selecting_an_agent_opens_its_page(backend: LiveFrames) -> None:
    view = AgentsView(messages=MessagesPipeline(frames=backend, window="7d"))
    render(view)
    view.table.selection = [0]
    agent = view.table.value["agent_id"].iloc[0]
    assert view.agent == agent and view.page is not None
    assert f"### {plain(view.table.value['name'].iloc[0])}" in view.page.header.object
    assert not view.page.problem.visible
    conversations = view.page.conversations.value
    assert len(conversations) > 0
    view.page.conversations.selection = [0]
    assert view.page.thread.conversation == conversations["conversation_id"].iloc[0]


def test_downloads_hold_the_filtered_rows(backend: LiveFrames) -> None:
    messages = MessagesPipeline(frames=backend, window="7d", statuses=["error", "timeout"])
    view = MessagesView(messages=messages)
    csv = pd.read_csv(view.download("csv"))
    parquet = pd.read_parquet(view.download("parquet"))
    assert len(csv) == len(parquet) == len(messages.frame) > 0
    assert set(csv["status"]) <= {"error", "timeout"}
    assert sorted(parquet["id"]) == sorted(messages.frame["id"])
    assert str(parquet["timestamp"].dt.tz) == "UTC"
    assert isinstance(view.download("csv"), io.BytesIO)


def test_a_source_failing_on_first_load_shows_a_message(tmp_path: Path) -> None:
    class Broken(LocalSource):
        def fetch(self, query):  # type: ignore[no-untyped-def]
            raise OSError("disk on fire")

    broken = LiveFrames(Broken(tmp_path / "broken.db"), MemoryFrameCache())
    view = OverviewView(messages=MessagesPipeline(frames=broken))
    assert view.problem.visible
    assert "could not be read" in view.problem.object and "disk on fire" in view.problem.object


# -- any question, any view ------------------------------------------------------------------

QUESTIONS = st.fixed_dictionaries(
    {
        "window": st.sampled_from(["15m", "1h", "24h", "7d", "30d", "past", "future"]),
        "agents": st.lists(
            st.sampled_from([a["id"] for a in AGENTS] + [a["name"] for a in AGENTS] + ["nobody"]),
            max_size=3,
        ),
        "statuses": st.lists(st.sampled_from(["ok", "error", "timeout", "other"]), max_size=2),
        "roles": st.lists(st.sampled_from(["user", "agent", "system", "tool"]), max_size=2),
        "search": st.sampled_from(["", "c-", "u-00", "zzzz", "<b>"]),
        "tz": st.sampled_from(["UTC", "Europe/Paris", "Asia/Kolkata", "Pacific/Chatham"]),
    }
)
CUSTOM = {
    "past": (datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC)),
    "future": (datetime(2099, 1, 1, tzinfo=UTC), datetime(2099, 1, 3, tzinfo=UTC)),
}


@pytest.fixture(scope="module")
def every_view(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A dashboard with every tab built, and an agent page open, on a small store."""
    source = LocalSource(tmp_path_factory.mktemp("views") / "store.db")
    source.upsert("agents", AGENTS)
    source.upsert("messages", MESSAGES)
    dashboard = Dashboard(LiveFrames(source, MemoryFrameCache()))
    render(dashboard)
    for name in TABS:
        dashboard.tab = name
    dashboard.views["agents"].agent = AGENTS[0]["id"]
    yield dashboard
    compute.MEMO.clear()


@settings(max_examples=20)
@given(question=QUESTIONS)
def test_any_question_updates_every_view(every_view: Dashboard, question: dict[str, Any]) -> None:
    window = question.pop("window")
    span = CUSTOM.get(window)
    messages = every_view.messages
    if span is None:
        messages.param.update(window=window, **question)
    else:
        messages.param.update(window="custom", start=span[0], end=span[1], **question)
    page = every_view.views["agents"].page
    assert page is not None
    for view in [*every_view.views.values(), page]:
        view.refresh()  # raises if a view cannot show this question
        assert not view.problem.visible, view.problem.object


def test_the_ops_refreshes_table_takes_new_refreshes_as_rows(backend: LiveFrames) -> None:
    from app.tables import refreshes_table
    from app.views.ops import HISTORY_SHOWN, OpsView

    messages = MessagesPipeline(frames=backend)
    view = OpsView(messages=messages)
    render(view)
    before = view.history.value
    messages.refresh()
    view.refresh()
    after = view.history.value
    # The refreshes since are rows added at the end (the browser sorts newest first); the
    # rows shown before stay, until the oldest roll out past HISTORY_SHOWN.
    assert len(before) < len(after) <= HISTORY_SHOWN
    assert after.iloc[: len(before)]["at"].tolist() == before["at"].tolist()
    assert after["at"].iloc[-1] == refreshes_table(backend.status(), messages.tz)["at"].iloc[-1]
