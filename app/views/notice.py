"""Alerts that are in the page only while they have something to say."""

from __future__ import annotations

from typing import Any

import panel as pn


class Notice(pn.viewable.Viewer):
    """A ``pn.pane.Alert`` built the first time it is shown and taken out when hidden.

    Panel sends MathJax (1.7 MB of JavaScript) with any page holding a Markdown or
    HTML pane, hidden or not; a page whose alerts are not built yet loads without it.
    """

    def __init__(self, alert_type: str = "warning", **alert_params: Any) -> None:
        super().__init__()
        self._alert_type = alert_type
        self._alert_params = alert_params
        self._alert: pn.pane.Alert | None = None
        self._slot = pn.Column(sizing_mode="stretch_width", margin=0)

    def __panel__(self) -> pn.Column:
        return self._slot

    @property
    def visible(self) -> bool:
        return bool(self._slot.objects)

    @property
    def object(self) -> str:
        """The Markdown shown (or last shown)."""
        return str(self._alert.object) if self._alert is not None else ""

    def notify(self, text: str) -> None:
        if self._alert is None:
            self._alert = pn.pane.Alert(text, alert_type=self._alert_type, **self._alert_params)
        elif self._alert.object != text:
            self._alert.object = text
        if not self._slot.objects:
            self._slot.objects = [self._alert]

    def clear(self) -> None:
        if self._slot.objects:
            self._slot.objects = []
