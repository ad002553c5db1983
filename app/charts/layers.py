"""Chart data as layers, and the smallest update that brings a drawn source to new layers.

A *layer* is the data of one glyph: a label and named columns, as a Bokeh
``ColumnDataSource`` holds them, rows keyed by the first column.  New data make
new layers; :func:`sync_source` streams the new rows into the drawn source and
patches the changed ones, a few hundred bytes on the websocket, instead of
drawing the chart again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource

Columns = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Layer:
    """The data of one glyph: its label and its source columns, rows keyed by the first column."""

    label: str
    columns: Columns

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(dict(self.columns))


def wall_time(index: pd.Index | pd.Series) -> np.ndarray:
    """Timestamps as naive wall times (aware ones in their own zone), as Bokeh shows them.

    The metrics' time series are indexed in the zone asked for already.
    """
    values = pd.DatetimeIndex(index)
    if values.tz is not None:
        values = values.tz_localize(None)
    return values.as_unit("ns").to_numpy()


def _comparable(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "mM":
        return array.astype("datetime64[ns]").view("int64")
    return array


def _changed(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Positions where ``new`` differs from ``old``; NaN equals NaN."""
    a, b = _comparable(old), _comparable(new)
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        a, b = a.astype("float64"), b.astype("float64")
        return np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
    return np.flatnonzero(a != b)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _own(columns: Columns) -> dict[str, Any]:
    return {name: np.array(values) for name, values in columns.items()}


def sync_source(source: ColumnDataSource, columns: Columns) -> bool:
    """Bring ``source`` to ``columns`` with the smallest update Bokeh can send.

    Rows are matched on the first column, whose values are unique: the new rows
    must be the old ones, less some at the start (rolled over), plus some at
    the end (streamed); other cells that changed are patched.  Returns False,
    having changed nothing, when the new rows do not continue the old ones.
    """
    if set(source.data) != set(columns):
        return False
    key = next(iter(columns))
    old_keys, new_keys = _comparable(source.data[key]), _comparable(columns[key])
    if not len(old_keys) or not len(new_keys):
        return False
    first = np.flatnonzero(old_keys == new_keys[0])
    start = int(first[0]) if len(first) else len(old_keys)
    kept = len(old_keys) - start
    if kept == 0 or kept > len(new_keys) or (old_keys[start:] != new_keys[:kept]).any():
        return False
    patches: dict[str, list[tuple[int, Any]]] = {}
    for name, values in columns.items():
        old = np.asarray(source.data[name])[start:]
        changed = _changed(old, np.asarray(values)[:kept])
        if len(changed):
            patches[name] = [(start + int(i), _python(values[i])) for i in changed]
    if patches:
        source.patch(patches)
    if kept < len(new_keys) or start:
        added: dict[str, Any] = {
            name: np.asarray(values)[kept:] for name, values in columns.items()
        }
        source.stream(added, rollover=len(new_keys))
    return True


def wide_columns(layers: Sequence[Layer], shared: Sequence[str]) -> dict[str, np.ndarray]:
    """The columns of ``layers`` side by side, for one source to hold them all.

    The ``shared`` columns (those of the first layer: the layers' rows are the
    same) appear once; every other column once per layer, named by
    :func:`layer_column`.  The first column comes first, keying the rows.
    """
    columns: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers):
        for name, values in layer.columns.items():
            if name not in shared:
                columns[layer_column(name, i)] = values
            elif i == 0:
                columns[name] = values
    return columns


def layer_column(name: str, index: int) -> str:
    """The name of layer ``index``'s column ``name`` in :func:`wide_columns`."""
    return f"{name}_{index}"
