"""One way to ask for the metrics of a period, whether its rows or its rollups hold it.

:class:`Answers` is what the views, the REST API and the reports ask of a period of
messages: the functions of :mod:`pipelines.metrics`, as methods without the frame.
:class:`FrameAnswers` answers from the rows (exactly, as ``metrics`` does);
:class:`~pipelines.rollups.Rollups` (a selection of hours) answers long windows from
hourly rollups, with the same shapes, latency percentiles within the sketch's error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pandas as pd

from pipelines import metrics


class Answers(Protocol):
    """The metrics of a period of messages (see :mod:`pipelines.metrics` for each)."""

    def kpis(self) -> metrics.Kpis: ...

    def coverage(self, start: pd.Timestamp, end: pd.Timestamp) -> float: ...

    def volume_series(
        self, interval: str, by: str | None = "status", tz: str = "UTC"
    ) -> pd.DataFrame: ...

    def cost_series(
        self, interval: str, by: str | None = "model", tz: str = "UTC"
    ) -> pd.DataFrame: ...

    def error_rate_series(
        self, interval: str, by: str | None = "agent_id", tz: str = "UTC"
    ) -> pd.DataFrame: ...

    def latency_series(
        self,
        interval: str,
        percentiles: Sequence[float] = metrics.LATENCY_PERCENTILES,
        tz: str = "UTC",
    ) -> pd.DataFrame: ...

    def per_agent(self, agents: pd.DataFrame | None = None) -> pd.DataFrame: ...

    def breakdown(self, by: str) -> pd.DataFrame: ...

    def unpriced_models(self) -> pd.Series: ...

    def handoffs(self) -> pd.DataFrame: ...

    def latency_distribution(self, bins: int = 50, log: bool = False) -> pd.DataFrame: ...

    def latency_ecdf(self, by: str | None = None) -> pd.DataFrame: ...

    def top_errors(self, n: int = 10) -> pd.DataFrame: ...

    def last_message(self) -> pd.Timestamp | None:
        """The time of the latest message (None: there is none)."""
        ...


class FrameAnswers:
    """The metrics of the rows of a frame, as :mod:`pipelines.metrics` computes them."""

    #: Numbers from rows are exact.
    rolled_up = False

    def __init__(self, messages: pd.DataFrame) -> None:
        self.messages = messages

    def __len__(self) -> int:
        return len(self.messages)

    def kpis(self) -> metrics.Kpis:
        return metrics.kpis(self.messages)

    def coverage(self, start: pd.Timestamp, end: pd.Timestamp) -> float:
        return metrics.coverage(self.messages, start, end)

    def volume_series(
        self, interval: str, by: str | None = "status", tz: str = "UTC"
    ) -> pd.DataFrame:
        return metrics.volume_series(self.messages, interval, by=by, tz=tz)

    def cost_series(self, interval: str, by: str | None = "model", tz: str = "UTC") -> pd.DataFrame:
        return metrics.cost_series(self.messages, interval, by=by, tz=tz)

    def error_rate_series(
        self, interval: str, by: str | None = "agent_id", tz: str = "UTC"
    ) -> pd.DataFrame:
        return metrics.error_rate_series(self.messages, interval, by=by, tz=tz)

    def latency_series(
        self,
        interval: str,
        percentiles: Sequence[float] = metrics.LATENCY_PERCENTILES,
        tz: str = "UTC",
    ) -> pd.DataFrame:
        return metrics.latency_series(self.messages, interval, percentiles, tz=tz)

    def per_agent(self, agents: pd.DataFrame | None = None) -> pd.DataFrame:
        return metrics.per_agent(self.messages, agents)

    def breakdown(self, by: str) -> pd.DataFrame:
        return metrics.breakdown(self.messages, by)

    def unpriced_models(self) -> pd.Series:
        return metrics.unpriced_models(self.messages)

    def handoffs(self) -> pd.DataFrame:
        return metrics.handoffs(self.messages)

    def latency_distribution(self, bins: int = 50, log: bool = False) -> pd.DataFrame:
        return metrics.latency_distribution(self.messages, bins, log=log)

    def latency_ecdf(self, by: str | None = None) -> pd.DataFrame:
        return metrics.latency_ecdf(self.messages, by=by)

    def top_errors(self, n: int = 10) -> pd.DataFrame:
        return metrics.top_errors(self.messages, n)

    def last_message(self) -> pd.Timestamp | None:
        return self.messages["timestamp"].max() if len(self.messages) else None


def ask(answers: Answers, question: str, *args: Any, **kwargs: Any) -> Any:
    """``answers.<question>(*args, **kwargs)``: one function to memoise every question by
    its name (see :func:`app.memo.memo`)."""
    return getattr(answers, question)(*args, **kwargs)
