"""Colours and styles shared by the views; chosen to read on light and dark backgrounds."""

from __future__ import annotations

GOOD = "#2e9e5b"
BAD = "#d1495b"
MUTED = "#8a8f98"

STATUS_COLORS = {"ok": "#4c9a6a", "error": "#d1495b", "timeout": "#e8a33d", "other": "#8d99ae"}
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
"""Tableau 10: distinct on white and on near-black."""

ROLE_COLORS = {"user": "#4e79a7", "agent": "#59a14f", "tool": "#f28e2b", "system": "#8a8f98"}
"""The dot before a speaker in a conversation (emoji need fonts an air-gapped desktop may lack)."""

CARD_STYLE = {"border": "1px solid rgba(128, 128, 128, 0.35)", "border-radius": "8px"}
"""Inline style of KPI cards (inline, because Panel components live in shadow DOM)."""


def color_for(label: str, index: int) -> str:
    """The colour of a series: statuses keep theirs, anything else cycles the palette."""
    return STATUS_COLORS.get(label, PALETTE[index % len(PALETTE)])
