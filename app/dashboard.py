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
from typing import Any
from urllib.parse import parse_qsl, urlencode

import panel as pn
import param

from app.live import LiveControls
from app.views.agents import AgentsView
from app.views.base import View
from app.views.filters import Filters, apply_each, url_names
from app.views.messages import MessagesView
from app.views.metrics import MetricsView
from app.views.ops import OpsView
from app.views.overview import OverviewView
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline
from pipelines.errors import AgentdashError
from pipelines.parameters import Choice

TABS: dict[str, tuple[str, type[View]]] = {
    "overview": ("Overview", OverviewView),
    "agents": ("Agents", AgentsView),
    "messages": ("Messages", MessagesView),
    "metrics": ("Metrics", MetricsView),
    "ops": ("Ops", OpsView),
}
TAB_NAMES = tuple(TABS)  # in the order of the tabs on the page
THEMES = ("default", "dark")


class Dashboard(pn.viewable.Viewer):
    """The tabs of one session over one pair of pipelines, and the filters driving them."""

    tab = Choice(default="overview", objects=list(TAB_NAMES), link="tab", doc="The tab shown.")

    def __init__(
        self,
        frames: LiveFrames | None = None,
        location: pn.io.location.Location | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.messages = MessagesPipeline(frames=frames)
        self.agents = AgentsPipeline().follow(self.messages)
        self.filters = Filters(self.messages, self.agents)
        self.views: dict[str, View] = {}
        self._location = location
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
        location.param.watch(self._tidy_url, "search")
        location.sync(self.messages, url_names(self.messages), on_error=self.filters.refuse)
        location.sync(self, {"tab": "tab"}, on_error=self._refuser(self, {"tab": "tab"}))
        asked = location.query_params
        theme = asked.get("theme")
        if theme is not None and theme not in THEMES:
            self.filters.report(
                [f"Ignored theme={theme}: the theme is {' or '.join(THEMES)}. Kept default."]
            )
        browser = pn.state.browser_info
        if "tz" not in asked and browser is not None:
            # The browser says its zone once the page has loaded.
            browser.param.watch(self._browser_zone, "timezone")
            if browser.timezone:
                self._browser_zone()

    def _browser_zone(self, *events: param.parameterized.Event) -> None:
        zone = pn.state.browser_info.timezone if pn.state.browser_info else None
        if zone and self.messages.tz == self.messages.param["tz"].default:
            # A zone this machine's tz database lacks: UTC it is.
            with contextlib.suppress(AgentdashError):
                self.messages.tz = zone

    def _tidy_url(self, event: param.parameterized.Event) -> None:
        """Leave empty values out of the URL (``agent=&status=`` after a reset)."""
        query = parse_qsl(str(event.new).lstrip("?"), keep_blank_values=True)
        kept = [(name, value) for name, value in query if value != ""]
        if len(kept) != len(query):
            event.obj.search = f"?{urlencode(kept)}" if kept else ""

    def _refuser(self, target: param.Parameterized, names: dict[str, str]) -> Any:
        return lambda values: self.filters.report(apply_each(target, values, names))

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
        view = TABS[name][1](messages=self.messages, agents=self.agents)
        self.views[name] = view
        if self._location is not None and view.links:
            # Before the view is in the page: its state from the link arrives with it.
            self._location.sync(view, view.links, on_error=self._refuser(view, view.links))
        self.tabs[TAB_NAMES.index(name)] = (TABS[name][0], view)

    def template(self) -> pn.template.BootstrapTemplate:
        """The page: filters in the sidebar, tabs in the main area, live controls on top."""
        theme = "dark" if pn.config.theme == "dark" else "default"
        live = LiveControls(pipelines=[self.messages, self.agents], theme=theme)
        page = pn.template.BootstrapTemplate(
            title="Agent dashboard",
            sidebar=[self.filters],
            main=[self],
            header=[live],
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
