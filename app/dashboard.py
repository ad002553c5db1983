"""One session of the dashboard: its pipelines, filters, tabs, URL and page template.

Tabs are built the first time they are shown, and views in hidden tabs do not
follow new data until shown again.  The page's URL holds the question (the
messages pipeline's parameters), the tab and the state of each view a link
should reopen (:attr:`View.links`: an open conversation, an agent's page, a
table's sort...); empty values are left out of it.  Without ``tz`` in the link,
times are shown in the browser's time zone.
"""

from __future__ import annotations

import contextlib
import copy
import re
from functools import partial
from typing import Any
from urllib.parse import urlencode

import panel as pn
import param

from app.auth.identity import ANONYMOUS, Identity
from app.live import LiveControls
from app.views.agents import AgentsView
from app.views.alerts import AlertsView, offer_rules
from app.views.base import View
from app.views.filters import Filters, apply_each, url_names
from app.views.messages import MessagesView
from app.views.metrics import MetricsView
from app.views.ops import OpsView
from app.views.overview import OverviewView, offer_choices
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline
from pipelines.errors import AgentdashError
from pipelines.parameters import Choice

TABS: dict[str, tuple[str, type[View]]] = {
    "overview": ("Overview", OverviewView),
    "agents": ("Agents", AgentsView),
    "messages": ("Messages", MessagesView),
    "metrics": ("Metrics", MetricsView),
    "alerts": ("Alerts", AlertsView),
    "ops": ("Ops", OpsView),
}
TAB_NAMES = tuple(TABS)  # in the order of the tabs on the page
THEMES = ("default", "dark")

ViewState = param.parameterized_class(
    "ViewState",
    {name: copy.copy(view.param[name]) for _, view in TABS.values() for name in view.links},
)
"""The state of every view that a link keeps (:attr:`View.links`), built or not: the URL
is read once, when the page opens, and a view built later takes its state from here."""
VIEW_LINKS = {name: link for _, view in TABS.values() for name, link in view.links.items()}
VIEW_UNSET = {name: text for _, view in TABS.values() for name, text in view.unset.items()}


def _update_query(location: pn.io.location.Location, **values: Any) -> None:
    """``Location.update_query`` that leaves out the parameters whose value is empty."""
    query = {**location.query_params, **values}
    kept = {name: value for name, value in query.items() if value not in ("", None)}
    location.search = f"?{urlencode(kept)}" if kept else ""


class Dashboard(pn.viewable.Viewer):
    """The tabs of one session over one pair of pipelines, and the filters driving them.

    ``identity`` is who the session is for: its pipelines hold only that user's teams,
    and only an admin sees the Ops tab's quarantined documents.  None: everything, as
    in a notebook.
    """

    tab = Choice(default="overview", objects=list(TAB_NAMES), link="tab", doc="The tab shown.")

    def __init__(
        self,
        frames: LiveFrames | None = None,
        location: pn.io.location.Location | None = None,
        identity: Identity | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.identity = identity
        self.messages = MessagesPipeline(
            frames=frames, teams=None if identity is None else identity.scope
        )
        self.agents = AgentsPipeline().follow(self.messages)
        self.filters = Filters(self.messages, self.agents)
        self.views: dict[str, View] = {}
        self.state = ViewState()
        offer_choices(self.state)
        offer_rules(self.state)
        self._zone_linked = False
        # A tab holds its view once built; until then, a spacer that the browser does not
        # get either (dynamic tabs send only what the tab shown holds).
        self.tabs = pn.Tabs(
            *[(title, pn.Spacer(sizing_mode="stretch_width")) for title, _ in TABS.values()],
            active=TAB_NAMES.index(self.tab),
            dynamic=True,
            sizing_mode="stretch_width",
        )
        self.tabs.param.watch(self._tab_picked, "active")
        # The link picks the tab and filters first; the tab shown is then built into the
        # page's first document, so its figures arrive with the page (no second round trip).
        self.sync_url(location)
        self._show_tab()

    def __panel__(self) -> pn.Tabs:
        return self.tabs

    def sync_url(self, location: pn.io.location.Location | None) -> None:
        """Keep the messages pipeline's question and the tab in the page's query string;
        refuse bad values there.

        Outside a server there is no URL (``pn.state.location`` is None): nothing to keep.
        ``Dashboard(location=...)`` calls it before building the tab the link names.
        """
        if location is None:
            return
        asked = location.query_params  # the link as opened, before the syncs write to it
        # One write per change, without the empty values (``agent=&status=`` after a reset):
        # a second write to tidy the first would race with the browser's own echo of it.
        location.update_query = partial(_update_query, location)  # type: ignore[method-assign]
        location.sync(self.messages, url_names(self.messages), on_error=self.filters.refuse)
        # The views' state before the tab: setting the tab builds its view.
        location.sync(
            self.state, VIEW_LINKS, on_error=self._refuser(self.state, VIEW_LINKS, VIEW_UNSET)
        )
        location.sync(self, {"tab": "tab"}, on_error=self._refuser(self, {"tab": "tab"}))
        theme = asked.get("theme")
        if theme is not None and theme not in THEMES:
            self.filters.report(
                [f"Ignored theme={theme}: the theme is {' or '.join(THEMES)}. Kept default."]
            )
        self._zone_linked = "tz" in asked

    def browser_zone(self, zone: str) -> None:
        """Show times in the browser's ``zone``, unless the link named one (or the zone is
        unknown here: UTC it is)."""
        if not self._zone_linked and self.messages.tz == self.messages.param["tz"].default:
            with contextlib.suppress(AgentdashError):
                self.messages.tz = zone

    def _refuser(
        self,
        target: param.Parameterized,
        names: dict[str, str],
        unset: dict[str, str] | None = None,
    ) -> Any:
        return lambda values: self.filters.report(apply_each(target, values, names, unset))

    def _tab_picked(self, event: param.parameterized.Event) -> None:
        self.tab = TAB_NAMES[event.new]

    @param.depends("tab", watch=True)
    def _show_tab(self) -> None:
        self.tabs.active = TAB_NAMES.index(self.tab)
        for name, view in self.views.items():
            view.shown = name == self.tab
        if self.tab not in self.views:
            self._build(self.tab)

    def _build(self, name: str) -> None:
        kind = TABS[name][1]
        names = list(kind.links)
        extra: dict[str, Any] = {n: getattr(self.state, n) for n in names}
        if kind is OpsView:
            extra["admin"] = self.identity is None or self.identity.admin
        # Its state from the link is the view's from the start, and arrives with it.
        view = kind(messages=self.messages, agents=self.agents, **extra)
        self.views[name] = view
        if names:
            view.param.watch(lambda *e: self.state.param.update({x.name: x.new for x in e}), names)
            self.state.param.watch(lambda *e: view.param.update({x.name: x.new for x in e}), names)
        self.tabs[TAB_NAMES.index(name)] = (TABS[name][0], view)

    def template(self) -> pn.template.BootstrapTemplate:
        """The page: filters in the sidebar, tabs in the main area, live controls on top."""
        theme = "dark" if pn.config.theme == "dark" else "default"
        live = LiveControls(
            pipelines=[self.messages, self.agents], theme=theme, on_zone=self.browser_zone
        )
        header: list[Any] = [live]
        if self.identity is not None and self.identity != ANONYMOUS:
            header.append(_signed_in(self.identity))
        page = pn.template.BootstrapTemplate(
            title="Agent dashboard",
            sidebar=[self.filters],
            main=[self],
            header=header,
            sidebar_width=330,
            # Views show their own spinner while they compute.  The template's would flash
            # at every live update, one more message per session, and being an HTML pane
            # it would bring MathJax into every page (see below).
            busy_indicator=None,
        )
        # Panel sends MathJax (1.7 MB of JavaScript, a fifth of a second to load) with any
        # page holding an HTML pane, and the template's own empty script area is one: an
        # empty spacer stands in for it.  (Alerts are built only when shown, for the same
        # reason.)  If Panel renames the area, pages load MathJax again and a UI test fails.
        if "js_area" in getattr(page, "_render_items", {}):
            area = pn.Spacer(width=0, height=0, margin=0)
            page._render_items["js_area"] = (area, [])
        return page


def _signed_in(identity: Identity) -> pn.pane.Markdown:
    """Who the page is for, and the way out."""
    teams = ", ".join(identity.teams) or ("every team" if identity.admin else "no team")
    # Names come from a users file or a token: shown as text, never as markup.
    who = f"{identity.name} ({identity.role}, {teams})"
    who = re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~&])", r"\\\1", who)
    return pn.pane.Markdown(
        f"{who} · [Sign out](/logout)",
        disable_anchors=True,
        renderer_options={"html": False},
        styles={"color": "white", "white-space": "nowrap"},
        stylesheets=["a { color: white; font-weight: 600; }"],
        sizing_mode="fixed",
        width=380,
        align="center",
        margin=(0, 10),
    )
