"""Canonical frames and the normalisation of raw documents into them.

Users' containers name things differently; a :class:`FieldMapping` says which
source field feeds each canonical column.  Normalisation is vectorised (it runs
over millions of documents) and never raises on bad data: a document that cannot
be read is quarantined with its reason.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sources.base import ColumnBatch

SCHEMA_VERSION = 1

ROLES = ("user", "agent", "system", "tool")
STATUSES = ("ok", "error", "timeout", "other")

# Canonical column -> default source field name, per container (a public contract).
CANONICAL_FIELDS: dict[str, dict[str, str]] = {
    "messages": {
        "id": "id",
        "conversation_id": "conversationId",
        "agent_id": "agentId",
        "role": "role",
        "timestamp": "timestamp",
        "latency_ms": "latencyMs",
        "tokens_in": "tokensIn",
        "tokens_out": "tokensOut",
        "status": "status",
        "user_id": "userId",
        "content": "content",
    },
    "agents": {
        "id": "id",
        "name": "name",
        "kind": "kind",
        "status": "status",
        "team": "team",
        "created_at": "createdAt",
        "last_seen": "lastSeen",
    },
}

MESSAGE_DTYPES: dict[str, Any] = {
    "id": "str",
    "conversation_id": "str",
    "agent_id": "str",
    "role": "str",
    "timestamp": "datetime64[ns, UTC]",
    "latency_ms": "float64",
    "tokens_in": "Int64",
    "tokens_out": "Int64",
    "status": "str",
    "user_id": "str",
}
AGENT_DTYPES: dict[str, Any] = {
    "id": "str",
    "name": "str",
    "kind": "str",
    "status": "str",
    "team": "str",
    "created_at": "datetime64[ns, UTC]",
    "last_seen": "datetime64[ns, UTC]",
}
DTYPES: dict[str, dict[str, Any]] = {"messages": MESSAGE_DTYPES, "agents": AGENT_DTYPES}
OPTIONAL_DTYPES: dict[str, Any] = {"content": "str"}
MESSAGE_COLUMNS = tuple(MESSAGE_DTYPES)
AGENT_COLUMNS = tuple(AGENT_DTYPES)

# Columns without which a row means nothing; the rest may be absent (null).
REQUIRED = {
    "messages": ("id", "conversation_id", "role", "timestamp"),
    "agents": ("id",),
}
TIME_FIELD = {"messages": "timestamp", "agents": "last_seen"}

_ROLE_SYNONYMS = {"assistant": "agent", "bot": "agent", "human": "user", "function": "tool"}
_STATUS_SYNONYMS = {
    "success": "ok",
    "succeeded": "ok",
    "completed": "ok",
    "fail": "error",
    "failed": "error",
    "failure": "error",
    "exception": "error",
    "timed_out": "timeout",
    "timedout": "timeout",
    "time_out": "timeout",
}
# Epoch numbers below this are seconds, above it milliseconds: 1e11 s is the
# year 5138, 1e11 ms is March 1973, so no real timestamp is ambiguous.
EPOCH_MS_THRESHOLD = 1e11
_MIN_TIME = pd.Timestamp.min.tz_localize("UTC")
_MAX_TIME = pd.Timestamp.max.tz_localize("UTC")


@dataclass(frozen=True)
class FieldMapping:
    """Which source field feeds each canonical column of one container."""

    container: str
    fields: tuple[tuple[str, str], ...]

    @classmethod
    def for_container(
        cls, container: str, overrides: Mapping[str, Mapping[str, str]] | None = None
    ) -> FieldMapping:
        if container not in CANONICAL_FIELDS:
            raise ValueError(f"unknown container {container!r}")
        fields = dict(CANONICAL_FIELDS[container])
        fields.update((overrides or {}).get(container, {}))
        return cls(container, tuple(fields.items()))

    def source_field(self, column: str) -> str:
        return dict(self.fields)[column]

    def projection(self, columns: Iterable[str]) -> tuple[str, ...]:
        mapping = dict(self.fields)
        return tuple(dict.fromkeys(mapping[c] for c in columns))


@dataclass(frozen=True)
class QuarantinedDocument:
    container: str
    id: str | None
    reason: str
    document: Any


class Quarantine:
    """Documents that could not be normalised: all counted, the latest kept."""

    def __init__(self, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._records: deque[QuarantinedDocument] = deque(maxlen=keep)
        self._by_reason: Counter[str] = Counter()
        self._seen: set[tuple[str, str | None, str]] = set()

    def add(self, records: Iterable[QuarantinedDocument]) -> None:
        with self._lock:
            for record in records:
                # A refresh can read the same bad document again: count it once.
                key = (record.container, record.id, record.reason)
                if record.id is not None and key in self._seen:
                    continue
                self._seen.add(key)
                self._records.append(record)
                self._by_reason[_reason_kind(record.reason)] += 1

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self._by_reason.values())

    def reasons(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_reason)

    def records(self) -> list[QuarantinedDocument]:
        with self._lock:
            return list(self._records)

    def frame(self) -> pd.DataFrame:
        rows = [
            {"container": r.container, "id": r.id, "reason": r.reason, "document": repr(r.document)}
            for r in self.records()
        ]
        return pd.DataFrame(rows, columns=["container", "id", "reason", "document"])


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


@dataclass
class Normalised:
    frame: pd.DataFrame
    quarantined: list[QuarantinedDocument] = field(default_factory=list)


def empty_frame(container: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    dtypes = {**DTYPES[container], **{c: OPTIONAL_DTYPES[c] for c in extra}}
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})


def coerce(frame: pd.DataFrame, container: str) -> pd.DataFrame:
    """Give a frame read back from a cache exactly the canonical dtypes."""
    dtypes = {**DTYPES[container], **OPTIONAL_DTYPES}
    wrong = {c: t for c, t in dtypes.items() if c in frame and str(frame[c].dtype) != str(t)}
    return frame.astype(wrong) if wrong else frame


def lookup(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a whole document, or None."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _lookup(path: str) -> Any:
    def get(doc: dict[str, Any]) -> Any:
        if path in doc:  # a source that projected the path already
            return doc[path]
        return lookup(doc, path)

    return get


def _uniform(values: Sequence[Any], kind: str) -> pa.Array | None:
    """``values`` as one Arrow array when all are of one ``kind`` (or None), else None.

    The common case (clean data) then runs at C speed; mixed or wrong-typed
    values take the slower per-value path that can say what is wrong.
    """
    try:
        if kind == "text":
            return pa.array(values, type=pa.string())
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        return array
    return None if len(array) != array.null_count else array.cast(pa.float64())


_NAT = np.iinfo(np.int64).min
# Text that pandas' to_numeric reads as a number: such timestamps are epoch values.
_NUMERIC_TEXT = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def _epoch_ns(numbers: np.ndarray) -> np.ndarray:
    """Epoch seconds or milliseconds to int64 nanoseconds (``_NAT`` when out of range)."""
    ms = np.where(np.abs(numbers) < EPOCH_MS_THRESHOLD, numbers * 1000.0, numbers)
    # Round to microseconds in float64 (exact below 2**53), then scale in integers:
    # ms * 1e6 in floats would move an epoch-ms value by up to 128 ns.
    micros = np.round(ms * 1000.0)
    good = np.abs(micros) < 9.2e15  # inside datetime64[ns] (1678-2261); False for NaN
    out = np.full(len(numbers), _NAT, dtype=np.int64)
    out[good] = micros[good].astype(np.int64) * 1000
    return out


def _iso_ns(strings: pd.Series) -> np.ndarray:
    parsed = pd.to_datetime(strings, utc=True, errors="coerce", format="ISO8601")
    # Parsed at a coarser unit, a date outside the nanosecond range would wrap around.
    parsed = parsed.where((parsed >= _MIN_TIME) & (parsed <= _MAX_TIME))
    return np.asarray(parsed.to_numpy(dtype="datetime64[ns]").view(np.int64))


def parse_timestamps(values: Sequence[Any]) -> tuple[pd.Series, np.ndarray]:
    """Parse ISO 8601 strings, epoch seconds and epoch milliseconds to UTC.

    Numbers, and text that reads as a number, are epoch values.  Returns the
    parsed series (NaT where absent or unreadable) and a mask of values that
    were present but could not be read.
    """
    out = np.full(len(values), _NAT, dtype=np.int64)
    text_array = _uniform(values, "text")
    number_array = None if text_array is not None else _uniform(values, "number")
    if text_array is not None:  # all text: the usual case, at C speed
        with contextlib.suppress(pa.ArrowInvalid):
            # ISO 8601 with a zone (Z or an offset) throughout, the commonest form: Arrow
            # reads it directly.  It refuses anything else (numbers, dates without a zone,
            # dates out of range), which then takes the general path below.
            parsed = pc.cast(text_array, pa.timestamp("ns", "UTC"))
            return parsed.to_pandas(), np.zeros(len(values), dtype=bool)
        present = text_array.is_valid().to_numpy(zero_copy_only=False)
        numeric = pc.fill_null(pc.match_substring_regex(text_array, _NUMERIC_TEXT), False)
        numeric_mask = numeric.to_numpy(zero_copy_only=False)
        text = present & ~numeric_mask
        strings = pd.Series(text_array.to_pandas(), dtype=object)
        if text.any():
            out[text] = _iso_ns(strings[text])
        if numeric_mask.any():
            out[numeric_mask] = _epoch_ns(pd.to_numeric(strings[numeric_mask]).to_numpy(float))
    elif number_array is not None:  # all numbers
        numbers = number_array.cast(pa.float64()).to_numpy(zero_copy_only=False)
        present = ~np.isnan(numbers)
        out[present] = _epoch_ns(numbers[present])
    else:  # mixed forms, or values of the wrong type: one by one
        raw = pd.Series(values, dtype=object)
        present = raw.notna().to_numpy()
        is_bool = raw.map(lambda v: isinstance(v, bool)).to_numpy(dtype=bool)
        numbers = pd.to_numeric(raw.where(~is_bool), errors="coerce").to_numpy(dtype="float64")
        numeric_mask = ~np.isnan(numbers)
        if numeric_mask.any():
            out[numeric_mask] = _epoch_ns(numbers[numeric_mask])
        text = present & ~numeric_mask & ~is_bool
        if text.any():
            out[text] = _iso_ns(raw[text].map(lambda v: v if isinstance(v, str) else None))
    result = pd.Series(out.view("datetime64[ns]")).dt.tz_localize("UTC")
    bad = present & (out == _NAT)
    return result, bad


def _numbers(values: Sequence[Any], integer: bool) -> tuple[np.ndarray, np.ndarray]:
    array = _uniform(values, "number")
    if array is not None:
        nums = array.cast(pa.float64()).to_numpy(zero_copy_only=False).copy()
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(nums) & ((nums < 0) | np.isinf(nums))
            if integer:
                bad |= ~np.isnan(nums) & (nums != np.floor(nums))
        nums[bad] = np.nan
        return nums, bad
    raw = pd.Series(values, dtype=object)
    present = raw.notna().to_numpy()
    is_bool = raw.map(lambda v: isinstance(v, bool)).to_numpy(dtype=bool)
    nums = pd.to_numeric(raw.where(~is_bool), errors="coerce").to_numpy(dtype="float64", copy=True)
    bad = present & (np.isnan(nums) | is_bool | (nums < 0) | np.isinf(nums))
    if integer:
        with np.errstate(invalid="ignore"):
            bad |= present & ~np.isnan(nums) & (nums != np.floor(nums))
    nums[bad] = np.nan
    return nums, bad


_STR = pd.StringDtype(na_value=np.nan)  # the "str" dtype, Arrow-backed


def _str_series(array: pa.Array) -> pd.Series:
    """An Arrow string array as a "str" series, without a round trip through objects."""
    return pd.Series(array.to_pandas(types_mapper={pa.string(): _STR}.get))


def _strings(values: Sequence[Any]) -> tuple[pd.Series, np.ndarray]:
    array = _uniform(values, "text")
    if array is not None:
        given = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
        return _str_series(given), np.zeros(len(array), dtype=bool)
    raw = pd.Series(values, dtype=object)
    is_str = raw.map(lambda v: type(v) is str).to_numpy(dtype=bool)
    is_int = raw.map(lambda v: type(v) is int).to_numpy(dtype=bool)
    bad = raw.notna().to_numpy() & ~is_str & ~is_int
    out = raw.where(is_str | is_int)
    if is_int.any():
        out[is_int] = out[is_int].map(str)
    text = out.astype("str")
    return text.where(text != ""), bad


def _categories(
    values: Sequence[Any], allowed: Sequence[str], synonyms: Mapping[str, str], default: str | None
) -> tuple[pd.Series, np.ndarray]:
    array = _uniform(values, "text")
    if array is not None:  # all text: map each distinct word once
        encoded = pc.dictionary_encode(array)
        words = encoded.dictionary.to_pylist()
        canonical = [synonyms.get(w, w) for w in (w.strip().lower() for w in words)]
        kept = [w if w in allowed else None for w in canonical]
        # The last slot stands for an absent value.
        slots = pc.fill_null(encoded.indices, len(words))
        if default is None:
            mapped = pc.take(pa.array([*kept, None], type=pa.string()), slots)
            given = np.array([w != "" for w in words] + [False])
            bad = (given & np.array([w is None for w in [*kept, None]]))[slots.to_numpy()]
            return _str_series(mapped), bad
        filled = [default if w is None else w for w in kept]
        mapped = pc.take(pa.array([*filled, default], type=pa.string()), slots)
        return _str_series(mapped), np.zeros(len(array), dtype=bool)
    strings, bad = _strings(values)
    lowered = strings.str.strip().str.lower()
    mapped = lowered.replace(synonyms)
    known = mapped.isin(allowed).to_numpy()
    if default is None:
        bad = bad | (~known & strings.notna().to_numpy())
        return mapped.where(known), bad
    return mapped.where(known, default), bad


def normalise(
    docs: Sequence[Any],
    mapping: FieldMapping,
    extra: Sequence[str] = (),
    *,
    deduplicate: bool = True,
) -> Normalised:
    """Map raw documents to the canonical frame of ``mapping.container``.

    ``docs`` is a list of documents, or a :class:`ColumnBatch` keyed by field path.

    ``extra`` names optional columns to keep as well (``content``).  With
    ``deduplicate`` an id read twice keeps its last version; a caller that joins
    several batches and de-duplicates the whole turns it off.
    """
    container = mapping.container
    if not docs:
        return Normalised(empty_frame(container, extra))
    fields = dict(mapping.fields)
    quarantined: list[QuarantinedDocument] = []
    objs: Sequence[Any]
    if isinstance(docs, ColumnBatch):  # values already by field: nothing to take apart
        objs = docs
    else:
        is_dict = np.fromiter((isinstance(d, dict) for d in docs), dtype=bool, count=len(docs))
        quarantined = [
            QuarantinedDocument(
                container, None, "not an object: a document must be a JSON object", d
            )
            for d, ok in zip(docs, is_dict, strict=True)
            if not ok
        ]
        objs = [d for d, ok in zip(docs, is_dict, strict=True) if ok]
    columns: dict[str, Any] = {}
    reasons: list[tuple[np.ndarray, str]] = []
    for column, dtype in {**DTYPES[container], **{c: "str" for c in extra}}.items():
        source = fields[column]
        values: Sequence[Any]
        if isinstance(objs, ColumnBatch):
            values = objs.column(source)
        elif "." in source:
            getter = _lookup(source)
            values = [getter(d) for d in objs]
        else:  # the common case, at C speed
            values = list(map(dict.get, objs, repeat(source)))
        if column == "role":
            series, bad = _categories(values, ROLES, _ROLE_SYNONYMS, None)
            reasons.append((bad, f"bad role: {source!r} must be one of {', '.join(ROLES)}"))
        elif container == "messages" and column == "status":
            series, bad = _categories(values, STATUSES, _STATUS_SYNONYMS, "other")
            reasons.append((bad, f"bad status: {source!r} must be a string"))
        elif dtype == "str":
            series, bad = _strings(values)
            reasons.append((bad, f"wrong type: {source!r} must be a string"))
        elif dtype.startswith("datetime64"):
            series, bad = parse_timestamps(values)
            reasons.append(
                (bad, f"bad timestamp: {source!r} is not ISO 8601 or epoch seconds/milliseconds")
            )
        else:
            integer = dtype == "Int64"
            nums, bad = _numbers(values, integer)
            series = pd.Series(nums)
            if integer:
                series = series.astype("Int64")
            kind = "a non-negative integer" if integer else "a non-negative number"
            reasons.append((bad, f"wrong type: {source!r} must be {kind}"))
        columns[column] = series
        if column in REQUIRED[container]:
            reasons.append((series.isna().to_numpy() & ~bad, f"missing field: {source!r}"))
    frame = pd.DataFrame(columns)
    rejected = np.zeros(len(objs), dtype=bool)
    why: list[str | None] = [None] * len(objs)
    for mask, reason in reasons:
        for i in np.flatnonzero(mask & ~rejected):
            why[i] = reason
        rejected |= mask
    if rejected.any():
        ids = frame["id"].tolist()
        quarantined.extend(
            QuarantinedDocument(
                container, ids[i] if isinstance(ids[i], str) else None, str(why[i]), objs[i]
            )
            for i in np.flatnonzero(rejected).tolist()
        )
        frame = frame.loc[~rejected]
    if deduplicate:  # the same id twice in one read: the later version wins, as in an upsert
        frame = frame.drop_duplicates("id", keep="last")
    frame = frame.reset_index(drop=True)
    return Normalised(coerce(frame, container), quarantined)
