"""A session's filters: one object driving its pipelines, in the sidebar and in the URL.

Values written in a link are checked like values picked in the sidebar: a
value that cannot be used is refused with a sentence saying why (see
:attr:`Filters.problems`) and the previous value stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import available_timezones

import pandas as pd
import panel as pn
import param

from app.views.notice import Notice
from pipelines.errors import AgentdashError, QueryError
from pipelines.pipeline import AgentsPipeline, MessagesPipeline, TimeZone
from pipelines.schema import ROLES, STATUSES
from pipelines.windows import WINDOWS, Window, as_utc

FILTERS = ("window", "start", "end", "agents", "statuses", "roles", "search", "tz")
URL_NAMES = {
    "window": "window",
    "start": "start",
    "end": "end",
    "agents": "agent",
    "statuses": "status",
    "roles": "role",
    "search": "search",
    "tz": "tz",
}
"""Filter parameter -> query parameter of the page's URL."""
TIME_ZONES = sorted(available_timezones())
"""Read once per process: listing them walks the tz database on disk."""


def _choices(objects: list[Any]) -> str:
    return ", ".join(map(str, objects))


class Choice(param.Selector):
    """One of ``objects``; anything else is refused with a sentence naming them."""

    def _validate_value(self, value: Any, allow_None: bool | None = None) -> None:
        allowed = self.allow_None if allow_None is None else allow_None
        if not (value is None and allowed) and value not in self.objects:
            raise QueryError(f"{self.name} {value!r} is not one of {_choices(self.objects)}")


class _CommaSeparated:
    """Lists travel in the URL as ``a,b`` rather than JSON."""

    @classmethod
    def serialize(cls, value: list[str] | None) -> str | None:
        return None if value is None else ",".join(value)

    @classmethod
    def deserialize(cls, value: str | list[str]) -> list[str]:
        if isinstance(value, list):
            return value
        return [item for item in value.split(",") if item]


class Names(_CommaSeparated, param.List):
    """A list of free-form names (e.g. agent ids)."""


class Choices(_CommaSeparated, param.ListSelector):
    """Some of ``objects``; any other item is refused with a sentence naming them."""

    def _validate_value(self, value: Any, allow_None: bool | None = None) -> None:
        self._validate_type(value)
        for item in value or ():
            if item not in self.objects:
                raise QueryError(f"{self.name} {item!r} is not one of {_choices(self.objects)}")


class Instant(param.Date):
    """A date or time, UTC when naive; ISO 8601 in the URL."""

    @classmethod
    def serialize(cls, value: datetime | date | None) -> str:
        if value is None:
            return ""  # Panel would write None as "null"
        if not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        return as_utc(value).isoformat()

    @classmethod
    def deserialize(cls, value: str | datetime | None) -> datetime | None:
        if value is None or value == "":
            return None
        return as_utc(value, "date")


def apply_each(
    target: param.Parameterized, values: Mapping[str, Any], url_names: Mapping[str, str]
) -> list[str]:
    """Set on ``target`` each value it accepts; a sentence for each value refused.

    Values may still be the URL's text (Panel passes on what it could not read).
    """
    refused = []
    for name, value in values.items():
        try:
            parameter = target.param[name]
            if isinstance(value, str) and not isinstance(parameter, param.String | Choice):
                value = parameter.deserialize(value)
            setattr(target, name, value)
        except (ValueError, TypeError, AgentdashError) as exc:
            kept = parameter.serialize(getattr(target, name)) or "(none)"
            refused.append(f"Ignored `{url_names[name]}={values[name]}`: {exc}. Kept {kept}.")
    return refused


def _buttons(kind: type[pn.widgets.Widget], parameter: param.Parameter) -> pn.widgets.Widget:
    # Their labels say it all; a tooltip would only cover the tabs beside the sidebar.
    return kind.from_param(parameter, color="primary", variant="outline", description=None)


class Filters(pn.viewable.Viewer):
    """Time window, agents, statuses, roles, id search and time zone of one session.

    Changes are pushed to the session's messages and agents pipelines, and
    changes made to the messages pipeline (drill-down) come back here.  Values
    refused (``problems``) are shown above the filters until dismissed.
    """

    window = Choice(
        default="24h",
        objects=[*WINDOWS, "custom"],
        doc="Relative window ending at the time of the data, or 'custom' (start and end).",
    )
    start = Instant(default=None, allow_None=True, doc="Start of a custom window.")
    end = Instant(default=None, allow_None=True, doc="End of a custom window.")
    agents = Names(default=[], item_type=str, doc="Only these agent ids (all when empty).")
    statuses = Choices(
        default=[], objects=list(STATUSES), doc="Only these statuses (all when empty)."
    )
    roles = Choices(default=[], objects=list(ROLES), doc="Only these roles (all when empty).")
    search = param.String(default="", doc="Conversation or user ids containing this text.")
    tz = TimeZone(default="UTC", doc="Time zone of time bins and labels.")
    problems = param.List(
        default=[], item_type=str, precedence=-1, doc="Values refused, as sentences to show."
    )

    def __init__(
        self, messages: MessagesPipeline, agents: AgentsPipeline | None = None, **params: Any
    ) -> None:
        values = {name: getattr(messages, name) for name in FILTERS}
        super().__init__(**{**values, **params})
        self.messages = messages
        self.agent_pipeline = agents or AgentsPipeline(backend=messages.backend)
        self.param.watch(self._push, list(FILTERS))
        messages.param.watch(self._pull, list(FILTERS))
        self.agent_pipeline.param.watch(self._agent_options, "version")
        self._agents_listed: pd.DataFrame | None = None
        self._push()
        self._widgets = self._make_widgets()
        self._range: pn.widgets.DatetimeRangePicker | None = None
        self.param.watch(self._show_range, ["window", "start", "end", "tz"])
        self._show_range()
        self._problems = Notice(
            self._widgets, "warning", dismiss=lambda: setattr(self, "problems", [])
        )
        self.param.watch(self._show_problems, "problems")
        self._show_problems()

    def _push(self, *events: param.parameterized.Event) -> None:
        start, end = self.start, self.end
        if self.window == "custom":
            bounds = self.messages.bounds
            start, end = start or bounds[0], end or bounds[1]
            try:
                Window.parse(start=start, end=end)
            except QueryError as exc:
                self.report([f"{exc}: kept the {self.messages.window} window."])
                kept = self.messages
                self.param.update(window=kept.window, start=kept.start, end=kept.end)
                return
        else:
            start = end = None
        self.messages.param.update(
            window=self.window,
            start=start,
            end=end,
            agents=list(self.agents),
            statuses=list(self.statuses),
            roles=list(self.roles),
            search=self.search,
            tz=self.tz,
        )
        self.agent_pipeline.param.update(agents=list(self.agents), tz=self.tz)

    def _pull(self, *events: param.parameterized.Event) -> None:
        self.param.update({event.name: event.new for event in events})

    def _show_problems(self, *events: param.parameterized.Event) -> None:
        if self.problems:
            self._problems.notify("\n\n".join(self.problems))
        else:
            self._problems.clear()

    def refuse(self, values: Mapping[str, Any]) -> None:
        """Apply what can be of ``values`` read from the URL; report the rest."""
        self.report(apply_each(self, values, URL_NAMES))

    def report(self, refused: list[str]) -> None:
        """Show the sentences of ``refused`` not shown already (a link is read more than once)."""
        new = [sentence for sentence in refused if sentence not in self.problems]
        if new:
            self.problems = [*self.problems, *new]

    def reset(self) -> None:
        """Back to the defaults: the last 24 hours, everything, UTC."""
        self.param.update(
            {name: self.param[name].default for name in FILTERS if name != "tz"}, problems=[]
        )

    # -- widgets ----------------------------------------------------------------------
    def _agent_options(self, *events: param.parameterized.Event) -> None:
        try:
            agents = self.agent_pipeline.frame
        except AgentdashError:  # the views say so; the sidebar keeps its options
            return
        if agents is self._agents_listed:
            return  # new messages, same agents: nothing to recompute or send
        self._agents_listed = agents
        names = agents["name"].fillna(agents["id"])
        options = dict(zip(names, agents["id"], strict=True))
        # Ids picked in a link but unknown to the agents list stay selectable.
        options.update({agent: agent for agent in self.agents if agent not in options.values()})
        self._agent_choice.options = options

    def _make_widgets(self) -> pn.Column:
        # Labels and placeholders say what these take; a tooltip each would cost every
        # session two more models.
        self._agent_choice = pn.widgets.MultiChoice.from_param(
            self.param.agents,
            label="Agents",
            options={},
            placeholder="all agents",
            description=None,
        )
        self._agent_options()
        reset = pn.widgets.Button(label="Reset filters", color="default")
        reset.on_click(lambda event: self.reset())
        self._window_buttons = _buttons(pn.widgets.RadioButtonGroup, self.param.window)
        return pn.Column(
            self._window_buttons,
            self._agent_choice,
            pn.widgets.StaticText(
                value="Status and role (none picked: all)", margin=(5, 10, 0, 10)
            ),
            _buttons(pn.widgets.CheckButtonGroup, self.param.statuses),
            _buttons(pn.widgets.CheckButtonGroup, self.param.roles),
            pn.widgets.TextInput.from_param(
                self.param.search,
                label="Conversation or user id",
                placeholder="contains…",
                description=None,
            ),
            pn.widgets.AutocompleteInput.from_param(
                self.param.tz,
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
        """Show the dates of a custom window; the picker is built when first needed."""
        custom = self.window == "custom"
        if self._range is None:
            if not custom:
                return
            self._range = pn.widgets.DatetimeRangePicker(label="From, to")
            self._range.param.watch(self._range_picked, "value")
            # Under the window buttons (an alert may be above them).
            self._widgets.insert(self._widgets.objects.index(self._window_buttons) + 1, self._range)
        self._range.visible = custom
        if custom and self.start is not None and self.end is not None:
            self._range.value = tuple(
                pd.Timestamp(t).tz_convert(self.tz).tz_localize(None).to_pydatetime()
                for t in (self.start, self.end)
            )

    def _range_picked(self, event: param.parameterized.Event) -> None:
        if event.new is None:
            return
        start, end = (
            pd.Timestamp(t).tz_localize(self.tz, ambiguous=True, nonexistent="shift_forward")
            for t in event.new
        )
        self.param.update(start=start.tz_convert("UTC"), end=end.tz_convert("UTC"))

    def __panel__(self) -> pn.Column:
        return self._widgets
