"""The sidebar: widgets made from the messages pipeline's own parameters.

There is no second copy of the filters: each widget is built from the
pipeline's parameter (``from_param``) and sets it, and the page's URL syncs
the same parameters (:func:`url_names`).  Values written in a link are checked
like values picked in the sidebar: a value that cannot be used is refused with
a sentence saying why (see :attr:`Filters.problems`) and the previous value stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import available_timezones

import pandas as pd
import panel as pn
import param

from app.views.notice import Notice
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
    target: param.Parameterized, values: Mapping[str, Any], names: Mapping[str, str]
) -> list[str]:
    """Set on ``target`` each value it accepts; a sentence for each value refused.

    Values may still be the URL's text (Panel passes on what it could not read);
    ``names`` gives each parameter's name in the URL, for the sentences.
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
            refused.append(f"Ignored `{names[name]}={values[name]}`: {exc}. Kept {kept}.")
    return refused


def _buttons(kind: type[pn.widgets.Widget], parameter: param.Parameter) -> pn.widgets.Widget:
    # Their labels say it all; a tooltip would only cover the tabs beside the sidebar.
    return kind.from_param(parameter, color="primary", variant="outline", description=None)


class Filters(pn.viewable.Viewer):
    """Window, agents, statuses, roles, id search and time zone of one session's messages.

    Widgets set the messages pipeline's parameters, and changes made to them
    elsewhere (a drill-down, the URL) show in the widgets.  The agents pipeline
    lists the agents to pick from.  A custom window ending before it starts is
    refused here, and the window shown before stays.  Values refused
    (``problems``) are shown above the filters until dismissed.
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
        self.agents.param.watch(self._agent_options, "version")
        self._agents_listed: pd.DataFrame | None = None
        messages.param.watch(self._value_options, "version")
        self._values_listed: pd.DataFrame | None = None
        self._widgets = self._make_widgets()
        self._range: pn.widgets.DatetimeRangePicker | None = None
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
        if self.problems:
            self._problems.notify("\n\n".join(self.problems))
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
        options = dict(zip(names, agents["id"], strict=True))
        # Ids picked in a link but unknown to the agents list stay selectable.
        picked = self.messages.agents
        options.update({agent: agent for agent in picked if agent not in options.values()})
        self._agent_choice.options = options

    def _value_options(self, *events: param.parameterized.Event) -> None:
        """The values to pick for the model and each dimension: those of the data read."""
        try:
            frame = self.messages.live.frame
        except AgentdashError:  # the views say so; the sidebar keeps its options
            return
        if frame is self._values_listed:
            return
        self._values_listed = frame
        for name, choice in self._value_choices.items():
            column = self.messages.columns[name]
            found = frame[column].dropna().unique().tolist() if column in frame else []
            picked = [value for value in getattr(self.messages, name) if value not in found]
            choice.options = sorted(found) + picked

    def _make_widgets(self) -> pn.Column:
        messages = self.messages.param
        # Labels and placeholders say what these take; a tooltip each would cost every
        # session two more models.
        self._agent_choice = pn.widgets.MultiChoice.from_param(
            messages.agents,
            label="Agents",
            options={},
            placeholder="all agents",
            description=None,
        )
        self._agent_options()
        # The model and the configured dimensions: filters declared by the pipeline.
        self._value_choices = {
            name: pn.widgets.MultiChoice.from_param(
                messages[name],
                label=name.replace("_", " ").capitalize(),
                options=[],
                placeholder=f"all {name}" if name.endswith("s") else "all",
                description=None,
            )
            for name in self.messages.breakdowns()
        }
        self._value_options()
        reset = pn.widgets.Button(label="Reset filters", color="default")
        reset.on_click(lambda event: self.reset())
        self._window_buttons = _buttons(pn.widgets.RadioButtonGroup, messages.window)
        return pn.Column(
            self._window_buttons,
            self._agent_choice,
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
        """Show the dates of a custom window; the picker is built when first needed."""
        messages = self.messages
        custom = messages.window == "custom"
        if self._range is None:
            if not custom:
                return
            self._range = pn.widgets.DatetimeRangePicker(label="From, to")
            self._range.param.watch(self._range_picked, "value")
            # Under the window buttons (an alert may be above them).
            self._widgets.insert(self._widgets.objects.index(self._window_buttons) + 1, self._range)
        self._range.visible = custom
        try:
            messages.window_spec  # noqa: B018
        except QueryError:  # refused (see _check_window): the picker keeps the dates shown
            return
        if custom and messages.start is not None and messages.end is not None:
            self._range.value = tuple(
                to_local(pd.Timestamp(as_utc(t)), messages.tz).to_pydatetime()
                for t in (messages.start, messages.end)
            )

    def _range_picked(self, event: param.parameterized.Event) -> None:
        if event.new is None:
            return
        start, end = (to_utc(t, self.messages.tz) for t in event.new)
        self.messages.param.update(start=start, end=end)

    def __panel__(self) -> pn.Column:
        return self._widgets


def _text(parameter: Text, label: str, placeholder: str) -> pn.widgets.TextInput:
    return pn.widgets.TextInput.from_param(
        parameter, label=label, placeholder=placeholder, description=None
    )
