"""The sidebar: widgets made from the messages pipeline's own parameters.

There is no second copy of the filters: each widget is built from the
pipeline's parameter (``from_param``) and sets it, and the page's URL syncs
the same parameters (:func:`url_names`).  Values written in a link are checked
like values picked in the sidebar: a value that cannot be used is refused with
a sentence saying why (see :attr:`Filters.problems`) and the previous value stays.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

import pandas as pd
import panel as pn
import param

from app.views.base import on_the_page
from app.views.notice import Notice, plain
from app.views.picker import NamesPicker
from pipelines.errors import AgentdashError, QueryError
from pipelines.parameters import Choice, Text
from pipelines.pipeline import AgentsPipeline, MessagesPipeline, Pipeline
from pipelines.windows import as_utc, to_local, to_utc

TIME_ZONES = sorted(available_timezones())
"""Read once per process: listing them walks the tz database on disk."""


def url_names(pipeline: Pipeline) -> dict[str, str]:
    """Parameter -> query parameter of the page's URL, for the parameters links carry."""
    return {
        name: link
        for name in pipeline.asked_names()
        if (link := getattr(pipeline.param[name], "link", None))
    }


def apply_each(
    target: param.Parameterized,
    values: Mapping[str, Any],
    names: Mapping[str, str],
    unset: Mapping[str, str] | None = None,
) -> list[str]:
    """Set on ``target`` each value it accepts; a sentence for each value refused.

    Values may still be the URL's text (Panel passes on what it could not read);
    ``names`` gives each parameter's name in the URL, for the sentences, and ``unset``
    what is shown instead of a value left None, where that is not "(none)".
    """
    refused = []
    for name, value in values.items():
        try:
            parameter = target.param[name]
            if isinstance(value, str) and not isinstance(parameter, param.String | Choice):
                value = parameter.deserialize(value)
            setattr(target, name, value)
        except (ValueError, TypeError, AgentdashError) as exc:
            kept = parameter.serialize(getattr(target, name)) or (unset or {}).get(name, "(none)")
            refused.append(f"Ignored {names[name]}={values[name]}: {exc}. Kept {kept}.")
    return refused


WALL = "%Y-%m-%d %H:%M"
"""How the custom window's ends are written: a date, or a date and a time."""


def wall_text(moment: datetime, tz: str, end: bool = False) -> str:
    """An end of a custom window as typed: a date for midnight in ``tz`` (an ``end`` at
    midnight is the day before, the last day the window takes in whole), else a date
    and a time."""
    wall = to_local(pd.Timestamp(as_utc(moment)), tz)
    if wall != wall.normalize():
        return f"{wall:{WALL}}"
    return f"{(wall - timedelta(days=1) if end else wall):%Y-%m-%d}"


def read_wall(text: str, tz: str, end: bool = False) -> datetime:
    """The instant typed as an end of a custom window in ``tz``: ``2026-11-20`` is that
    day's 00:00, or as an ``end`` its 24:00; ``2026-11-20 14:30`` is that time."""
    typed = text.strip()
    try:
        wall = pd.Timestamp(typed)
    except ValueError:
        wall = None
    if wall is None or pd.isna(wall) or wall.tzinfo is not None:
        raise QueryError(f"{typed!r} is not a date: type YYYY-MM-DD or YYYY-MM-DD HH:MM")
    if end and len(typed) <= len("YYYY-MM-DD"):
        wall += timedelta(days=1)  # through the whole day
    return to_utc(wall, tz)


WINDOW_BUTTONS_CSS = ".bk-btn { padding-left: 2px; padding-right: 2px; }"


def _buttons(kind: type[pn.widgets.Widget], parameter: param.Parameter) -> pn.widgets.Widget:
    # Their labels say it all; a tooltip would only cover the tabs beside the sidebar.
    return kind.from_param(parameter, color="primary", variant="outline", description=None)


class Filters(pn.viewable.Viewer):
    """Window, agents, statuses, roles, id search and time zone of one session's messages.

    Widgets set the messages pipeline's parameters, and changes made to them
    elsewhere (a drill-down, the URL) show in the widgets.  The agents pipeline
    lists the agents to pick from, by name.  A custom window is typed (a date, or
    a date and a time, in the page's zone) or picked as whole days, from 00:00 of
    the first to 24:00 of the last; one ending before it starts is refused here,
    and the window shown before stays.  Values refused (``problems``) are shown
    above the filters, as text, until dismissed.
    """

    problems = param.List(
        default=[], item_type=str, precedence=-1, doc="Values refused, as sentences to show."
    )

    def __init__(
        self, messages: MessagesPipeline, agents: AgentsPipeline | None = None, **params: Any
    ) -> None:
        super().__init__(**params)
        self.messages = messages
        self.agents = agents or AgentsPipeline().follow(messages)
        self._kept = (messages.window, messages.start, messages.end)
        # After every other watcher (the widgets' among them), so that they see the window
        # put back last, not the one refused.
        messages.param.watch(self._check_window, ["window", "start", "end"], precedence=10)
        self.agents.param.watch(
            lambda *_: self._when_read(self.agents, self._agent_options), "version"
        )
        self._agents_listed: pd.DataFrame | None = None
        messages.param.watch(
            lambda *_: self._when_read(self.messages, self._value_options), "version"
        )
        self._values_listed: tuple[Hashable, ...] | None = None  # the data they come from
        self._widgets = self._make_widgets()
        self._range: pn.Column | None = None
        self._showing = False
        messages.param.watch(self._show_range, ["window", "start", "end", "tz"])
        self._show_range()
        self._problems = Notice(
            self._widgets, "warning", dismiss=lambda: setattr(self, "problems", [])
        )
        self.param.watch(self._show_problems, "problems")
        self._show_problems()

    def _check_window(self, *events: param.parameterized.Event) -> None:
        messages = self.messages
        try:
            messages.window_spec  # noqa: B018
        except QueryError as exc:
            window, start, end = self._kept
            self.report([f"{exc}: kept the {window} window."])
            messages.param.update(window=window, start=start, end=end)
            return
        self._kept = (messages.window, messages.start, messages.end)

    def _show_problems(self, *events: param.parameterized.Event) -> None:
        # They quote what a link said: text, never markup.
        if self.problems:
            self._problems.notify("\n\n".join(map(plain, self.problems)))
        else:
            self._problems.clear()

    def refuse(self, values: Mapping[str, Any]) -> None:
        """Apply what can be of ``values`` read from the URL; report the rest."""
        self.report(apply_each(self.messages, values, url_names(self.messages)))

    def report(self, refused: list[str]) -> None:
        """Show the sentences of ``refused`` not shown already (a link is read more than once)."""
        new = [sentence for sentence in refused if sentence not in self.problems]
        if new:
            self.problems = [*self.problems, *new]

    def reset(self) -> None:
        """Back to the defaults: the last 24 hours, everything; the time zone stays."""
        messages = self.messages
        messages.param.update(
            {name: messages.param[name].default for name in messages.question_names()}
        )
        self.problems = []

    # -- widgets ----------------------------------------------------------------------
    def _agent_options(self, *events: param.parameterized.Event) -> None:
        try:
            agents = self.agents.frame
        except AgentdashError:  # the views say so; the sidebar keeps its options
            return
        if agents is self._agents_listed:
            return  # new messages, same agents: nothing to recompute or send
        self._agents_listed = agents
        names = agents["name"].fillna(agents["id"])
        self.agent_picker.options = [
            [agent, str(name)] for agent, name in zip(agents["id"], names, strict=True)
        ]

    @staticmethod
    def _when_read(pipeline: Pipeline, fill: Callable[[], None]) -> None:
        """``fill()`` now when the pipeline's frames are in memory (or outside a server);
        otherwise once the page has loaded, after reading them off the event loop: the
        page is sent without waiting for its data."""
        doc = pn.state.curdoc
        if pipeline.ready() or doc is None or doc.session_context is None:
            fill()
            return

        async def read_then_fill() -> None:
            with contextlib.suppress(AgentdashError):  # the views say so
                await asyncio.to_thread(pipeline.prefetch)
            on_the_page(fill)

        pn.state.onload(read_then_fill)

    def _value_options(self, *events: param.parameterized.Event) -> None:
        """The values to pick for the model and each dimension: those of the data read."""
        try:
            version = self.messages.data_version()
            if version == self._values_listed:
                return
            values = {
                name: self.messages.values(str(self.messages.columns[name]))
                for name in self._value_choices
            }
        except AgentdashError:  # the views say so; the sidebar keeps its options
            return
        self._values_listed = version
        for name, choice in self._value_choices.items():
            found = values[name]
            picked = [value for value in getattr(self.messages, name) if value not in found]
            choice.options = [[value, str(value)] for value in [*found, *picked]]

    def _picker(self, name: str, label: str, placeholder: str) -> NamesPicker:
        """A picker of the values of the pipeline's list parameter ``name``, both ways."""
        picker = NamesPicker(
            label=label, placeholder=placeholder, value=list(getattr(self.messages, name))
        )
        picker.param.watch(lambda event: setattr(self.messages, name, list(event.new)), "value")
        self.messages.param.watch(lambda event: setattr(picker, "value", list(event.new)), name)
        return picker

    def _make_widgets(self) -> pn.Column:
        messages = self.messages.param
        # Labels and placeholders say what these take; a tooltip each would cost every
        # session two more models.
        self.agent_picker = self._picker("agents", "Agents", "all agents: type or pick a name")
        self._when_read(self.agents, self._agent_options)
        # The model and the configured dimensions: filters declared by the pipeline; their
        # values come from documents too, so they are pickers of names as well.
        self._value_choices = {
            name: self._picker(
                name,
                name.replace("_", " ").capitalize(),
                f"all {name}: type or pick" if name.endswith("s") else "all: type or pick",
            )
            for name in self.messages.breakdowns()
        }
        self._when_read(self.messages, self._value_options)
        reset = pn.widgets.Button(label="Reset filters", color="default")
        reset.on_click(lambda event: self.reset())
        self._window_buttons = _buttons(pn.widgets.RadioButtonGroup, messages.window)
        # Seven windows share the sidebar's width: narrow padding keeps "custom" whole.
        self._window_buttons.stylesheets = [WINDOW_BUTTONS_CSS]
        return pn.Column(
            self._window_buttons,
            self.agent_picker,
            *self._value_choices.values(),
            pn.widgets.StaticText(
                value="Status and role (none picked: all)", margin=(5, 10, 0, 10)
            ),
            _buttons(pn.widgets.CheckButtonGroup, messages.statuses),
            _buttons(pn.widgets.CheckButtonGroup, messages.roles),
            _text(messages.search, "Conversation or user id", "contains…"),
            pn.widgets.AutocompleteInput.from_param(
                messages.tz,
                label="Time zone",
                options=TIME_ZONES,
                restrict=True,
                case_sensitive=False,
                search_strategy="includes",
                min_characters=1,
                description=None,
            ),
            reset,
            sizing_mode="stretch_width",
        )

    def _show_range(self, *events: param.parameterized.Event) -> None:
        """Show the ends of a custom window; the widgets are built when first needed."""
        messages = self.messages
        custom = messages.window == "custom"
        if self._range is None:
            if not custom:
                return
            self._range = self._range_widgets()
            # Under the window buttons (an alert may be above them).
            self._widgets.insert(self._widgets.objects.index(self._window_buttons) + 1, self._range)
        self._range.visible = custom
        try:
            messages.window_spec  # noqa: B018
        except QueryError:  # refused (see _check_window): the widgets keep the ends shown
            return
        if custom and messages.start is not None and messages.end is not None:
            tz = messages.tz
            first = to_local(pd.Timestamp(as_utc(messages.start)), tz)
            last = to_local(pd.Timestamp(as_utc(messages.end)) - pd.Timedelta(1, "us"), tz)
            today = to_local(pd.Timestamp.now(tz="UTC"), tz).date()
            days = (first.date(), max(first, last).date())
            self._showing = True  # what is shown is no new choice
            try:
                self._from.value = wall_text(messages.start, tz)
                self._to.value = wall_text(messages.end, tz, end=True)
                # Days to come hold no message: they cannot be picked (they can be typed).
                # (None between: the days shown before may lie past the new bound.)
                self._days.value = None
                self._days.end = max(today, *days)
                self._days.value = days
            finally:
                self._showing = False

    def _range_widgets(self) -> pn.Column:
        self._from = pn.widgets.TextInput(
            label="From", placeholder="YYYY-MM-DD HH:MM", sizing_mode="stretch_width"
        )
        self._to = pn.widgets.TextInput(
            label="To", placeholder="YYYY-MM-DD HH:MM", sizing_mode="stretch_width"
        )
        self._days = pn.widgets.DateRangePicker(
            label="Or pick whole days", sizing_mode="stretch_width"
        )
        self._from.param.watch(self._typed, "value")
        self._to.param.watch(self._typed, "value")
        self._days.param.watch(self._days_picked, "value")
        return pn.Column(pn.Row(self._from, self._to), self._days, sizing_mode="stretch_width")

    def _typed(self, event: param.parameterized.Event) -> None:
        if self._showing:
            return
        end = event.obj is self._to
        if not event.new.strip():
            self._show_range()  # an emptied box: the end stays
            return
        try:
            moment = read_wall(event.new, self.messages.tz, end=end)
        except QueryError as exc:
            self.report([f"Ignored {'to' if end else 'from'} {exc}."])
            return
        self.messages.param.update({"end" if end else "start": moment})

    def _days_picked(self, event: param.parameterized.Event) -> None:
        if self._showing or event.new is None:
            return
        first, last = event.new
        tz = self.messages.tz
        start = to_utc(datetime.combine(first, datetime.min.time()), tz)
        end = to_utc(datetime.combine(last + timedelta(days=1), datetime.min.time()), tz)
        self.messages.param.update(start=start, end=end)

    def __panel__(self) -> pn.Column:
        return self._widgets


def _text(parameter: Text, label: str, placeholder: str) -> pn.widgets.TextInput:
    return pn.widgets.TextInput.from_param(
        parameter, label=label, placeholder=placeholder, description=None
    )
