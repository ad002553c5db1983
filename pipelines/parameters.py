"""Parameter types of the user's question: checked like form fields, written in links.

The pipelines declare their question with these (see :mod:`pipelines.pipeline`),
and everything that asks it follows from that one declaration:

- a value that cannot be used is refused with a sentence naming what can
  (:class:`~pipelines.errors.QueryError`);
- ``serialize``/``deserialize`` give its form in a link or an API query: lists as
  ``a,b``, times as ISO 8601;
- ``schema()`` is param's JSON schema of it (type, enum, ``doc=`` text), which the
  REST API documents and enforces;
- ``link`` is its name in the page's URL and ``query`` its name in API queries
  (None: not a parameter of the API, such as the display time zone).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

import param

from pipelines.errors import QueryError
from pipelines.windows import as_utc, check_tz

LINK: Final = "="
"""``query=LINK`` (the default): the API query names the parameter as links do."""


def _choices(objects: list[Any]) -> str:
    return ", ".join(map(str, objects))


class _Asked:
    """What every question parameter adds to its param type: its names outside Python."""

    # Each concrete type declares the slots ``link`` and ``query``: two bases with slots of
    # their own cannot be mixed.
    __slots__ = ()
    _base = "String"  # the param type whose JSON schema this one shares

    def schema(self, safe: bool = False, subset: Any = None, mode: str = "json") -> dict[str, Any]:
        # param looks a schema up by class name; ours are their base types under other names.
        serializer = self._serializers[mode]  # type: ignore[attr-defined]
        return dict(serializer.param_schema(self._base, self, safe=safe, subset=subset))


class Choice(_Asked, param.Selector):
    """One of ``objects``; anything else is refused with a sentence naming them."""

    _base = "Selector"
    __slots__ = ["link", "query"]
    _slot_defaults = {**param.Selector._slot_defaults, "link": None, "query": None}

    def __init__(
        self,
        default: Any = None,
        *,
        link: str | None = None,
        query: str | None = LINK,
        **params: Any,
    ) -> None:
        super().__init__(default=default, **params)
        self.link, self.query = link, link if query == LINK else query

    def _validate_value(self, value: Any, allow_None: bool | None = None) -> None:
        allowed = self.allow_None if allow_None is None else allow_None
        if not (value is None and allowed) and value not in self.objects:
            raise QueryError(f"{self.name} {value!r} is not one of {_choices(self.objects)}")


class _CommaSeparated:
    """Lists travel in links as ``a,b`` rather than JSON."""

    @classmethod
    def serialize(cls, value: list[str] | None) -> str | None:
        return None if value is None else ",".join(value)

    @classmethod
    def deserialize(cls, value: str | list[str]) -> list[str]:
        if isinstance(value, list):
            return value
        return [item for item in value.split(",") if item]


class Names(_Asked, _CommaSeparated, param.List):
    """A list of free-form names (agent ids, ...); empty means all."""

    _base = "List"
    __slots__ = ["link", "query"]
    _slot_defaults = {**param.List._slot_defaults, "link": None, "query": None}

    def __init__(
        self,
        default: list[str] | None = None,
        *,
        link: str | None = None,
        query: str | None = LINK,
        **params: Any,
    ) -> None:
        super().__init__(default=[] if default is None else default, item_type=str, **params)
        self.link, self.query = link, link if query == LINK else query


class Choices(_Asked, _CommaSeparated, param.ListSelector):
    """Some of ``objects``; any other item is refused with a sentence naming them."""

    _base = "ListSelector"
    __slots__ = ["link", "query"]
    _slot_defaults = {**param.ListSelector._slot_defaults, "link": None, "query": None}

    def __init__(
        self,
        default: list[str] | None = None,
        *,
        link: str | None = None,
        query: str | None = LINK,
        **params: Any,
    ) -> None:
        super().__init__(default=[] if default is None else default, **params)
        self.link, self.query = link, link if query == LINK else query

    def _validate_value(self, value: Any, allow_None: bool | None = None) -> None:
        self._validate_type(value)
        for item in value or ():
            if item not in self.objects:
                raise QueryError(f"{self.name} {item!r} is not one of {_choices(self.objects)}")


class Instant(_Asked, param.Date):
    """A date or time, UTC when naive; ISO 8601 in links."""

    _base = "Date"
    __slots__ = ["link", "query"]
    _slot_defaults = {**param.Date._slot_defaults, "link": None, "query": None}

    def __init__(
        self,
        default: Any = None,
        *,
        link: str | None = None,
        query: str | None = LINK,
        **params: Any,
    ) -> None:
        super().__init__(default=default, **params)
        self.link, self.query = link, link if query == LINK else query

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


class Text(_Asked, param.String):
    """Free text (an id search); links carry it as it is."""

    __slots__ = ["link", "query"]
    _slot_defaults = {**param.String._slot_defaults, "link": None, "query": None}

    def __init__(
        self,
        default: str = "",
        *,
        link: str | None = None,
        query: str | None = LINK,
        **params: Any,
    ) -> None:
        super().__init__(default=default, **params)
        self.link, self.query = link, link if query == LINK else query


class TimeZone(Text):
    """An IANA time zone name, refused when unknown."""

    def _validate_value(self, val: Any, allow_None: bool) -> None:
        super()._validate_value(val, allow_None)
        if val is not None:
            check_tz(val)


Asked = Choice | Choices | Names | Instant | Text
"""A parameter of the question (``TimeZone`` is a ``Text``)."""
