"""Alerts that are in the page only while they have something to say."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

import panel as pn

# CommonMark takes any ASCII punctuation escaped by a backslash as that character, as text.
_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")


def plain(text: object) -> str:
    """``text`` for a Markdown pane, shown as it is: never read as markup, HTML or math.

    For every text from documents, settings or links: a name such as
    ``<img src=x onerror=...>`` or ``**x**`` is shown as written.
    """
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(text).split()))


class Notice:
    """A ``pn.pane.Alert`` that a layout, ``host``, holds only while it is shown.

    The alert is built the first time it is shown, and until then nothing of it
    is in the page, not even an empty placeholder: each object a page holds
    costs every session its memory (an empty layout about as much as a button).
    Panel also sends MathJax (1.7 MB of JavaScript) with any page holding a
    Markdown or HTML pane, hidden or not; a page whose alerts are not built yet
    loads without it.

    The alert goes in at the top of ``host``.  With ``dismiss``, it has a Dismiss
    button under it that calls ``dismiss()``.
    """

    def __init__(
        self,
        host: pn.layout.ListLike,
        alert_type: str = "warning",
        *,
        dismiss: Callable[[], None] | None = None,
        **alert_params: Any,
    ) -> None:
        self._host = host
        self._dismiss = dismiss
        self._alert_type = alert_type
        self._alert_params = alert_params
        self._alert: pn.pane.Alert | None = None
        self._box: pn.viewable.Viewable | None = None  # the alert, with its button if any
        self._shown = False

    @property
    def visible(self) -> bool:
        return self._shown

    @property
    def object(self) -> str:
        """The Markdown shown (or last shown)."""
        return str(self._alert.object) if self._alert is not None else ""

    def notify(self, text: str) -> None:
        if self._alert is None:
            self._alert = pn.pane.Alert(text, alert_type=self._alert_type, **self._alert_params)
            self._box = self._alert if self._dismiss is None else self._with_button(self._alert)
        elif self._alert.object != text:
            self._alert.object = text
        if not self._shown:
            self._shown = True
            self._host.insert(0, self._box)

    def clear(self) -> None:
        if self._shown:
            self._shown = False
            assert self._box is not None  # built by the notify() that showed it
            self._host.remove(self._box)

    def _with_button(self, alert: pn.pane.Alert) -> pn.Column:
        assert self._dismiss is not None
        dismiss = self._dismiss
        button = pn.widgets.Button(label="Dismiss", color="default", width=90)
        button.on_click(lambda event: dismiss())
        return pn.Column(alert, button, sizing_mode="stretch_width")
