"""Query parameters of the REST API, derived from the parameters that declare them.

The filters and the window are the messages pipeline's own parameters (their
API names are their ``query``, their schema param's JSON schema: type, enum,
``doc=``), and paging has a small parameterized class of its own, so a value
is refused by the same check that documents it, and a new filter of the
pipeline is a new API parameter with nothing written here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import param

from pipelines.errors import AgentdashError
from pipelines.pipeline import MessagesPipeline, Pipeline
from pipelines.quarantine import KEEP
from pipelines.windows import check_range

MAX_LIMIT = 1000
YEARS = r"^(19[7-9][0-9]|2[01][0-9][0-9])-"
"""Times start with a year from 1970 to 2199: the bounds of explicit windows
(``pipelines.windows.EARLIEST``, ``LATEST``), as an OpenAPI document can say it."""


class ApiError(Exception):
    """A request the API refuses, with its HTTP status."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def invalid(detail: str) -> ApiError:
    """400: a parameter that breaks what the OpenAPI document says of it."""
    return ApiError(400, "invalid parameter", detail)


def refused(detail: str) -> ApiError:
    """422: parameters each as documented, that together (or in the data's context, as a
    cursor) ask for something that cannot be answered."""
    return ApiError(422, "invalid query", detail)


class Page(param.Parameterized):
    """Which page of a list of messages."""

    limit = param.Integer(default=100, bounds=(1, MAX_LIMIT), doc="Messages per page.")
    cursor = param.String(
        default=None,
        allow_None=True,
        doc="Where the next page starts: the next_cursor of the previous page.",
    )


def _openapi_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """param's JSON schema of a parameter as OpenAPI 3.0 takes it: no null branch (a query
    parameter is absent, not null), one type for an enum."""
    result = {k: v for k, v in schema.items() if k not in ("title", "description", "anyOf")}
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if branches:
        result.update({k: v for b in branches for k, v in b.items()})
    if "items" in result:
        result["items"] = _openapi_schema(result["items"])
        if "enum" in result["items"]:
            result["items"].setdefault("type", "string")
    return result


@dataclass(frozen=True)
class Parameter:
    """One query parameter: the parameter declaring it, read from the class that has it."""

    name: str
    owner: type[param.Parameterized]
    target: str
    """The name of the declaring parameter on ``owner``."""

    @property
    def declared(self) -> Any:  # a param.Parameter: typed Any, as param types its descriptors
        return self.owner.param[self.target]

    @property
    def repeat(self) -> bool:
        return isinstance(self.declared, param.List | param.ListSelector)

    def parse(self, raw: str) -> Any:
        """The value of one occurrence of the parameter, checked as its declaration says."""
        declared = self.declared
        if isinstance(declared, param.Selector | param.ListSelector):
            objects: list[Any] = list(declared.objects or [])
            if raw not in objects:
                choices = ", ".join(map(str, objects))
                raise invalid(f"{self.name}={raw!r} is not one of {choices}")
            return raw
        if isinstance(declared, param.Integer):
            low, high = cast(tuple[int, int], declared.bounds)
            try:
                value = int(raw)
            except ValueError:
                value = low - 1
            if not low <= value <= high:
                raise invalid(f"{self.name}={raw!r}: give an integer {low}..{high}")
            return value
        if isinstance(declared, param.Date):  # a time in the years of YEARS
            try:
                moment = declared.deserialize(raw)
                return moment if moment is None else check_range(moment, self.name)
            except AgentdashError as exc:
                raise invalid(f"{self.name}={raw!r}: {exc}") from None
        return raw

    def openapi(self) -> dict[str, Any]:
        declared = self.declared
        schema = _openapi_schema(declared.schema())
        if isinstance(declared, param.Date):
            schema["pattern"] = YEARS
        default = declared.default
        if default not in (None, "", []):
            schema["default"] = default
        return {
            "name": self.name,
            "in": "query",
            "description": " ".join((declared.doc or "").split()),
            "schema": schema,
            "explode": True,
        }


def asked(pipeline: type[Pipeline]) -> tuple[Parameter, ...]:
    """The API parameters of a pipeline's question: those with a ``query`` name."""
    return tuple(
        Parameter(query, pipeline, name)
        for name in pipeline.asked_names()
        if (query := getattr(pipeline.param[name], "query", None))
    )


class QuarantineListing(param.Parameterized):
    """Which quarantined documents to list."""

    limit = param.Integer(default=100, bounds=(1, KEEP), doc="Documents listed, the latest first.")
    raw = param.Integer(
        default=0, bounds=(0, 1), doc="1: give each document as read, under 'document'."
    )


FILTERS = asked(MessagesPipeline)
PAGE = tuple(Parameter(name, Page, name) for name in ("limit", "cursor"))
QUARANTINE = tuple(Parameter(name, QuarantineListing, name) for name in ("limit", "raw"))


def read_arguments(
    parameters: tuple[Parameter, ...], arguments: Mapping[str, list[bytes]]
) -> dict[str, Any]:
    """Checked values of the query ``arguments`` by declaring parameter; unknown or
    repeated names are refused."""
    known = {p.name: p for p in parameters}
    values: dict[str, Any] = {}
    for name, raws in arguments.items():
        parameter = known.get(name)
        if parameter is None:
            raise ApiError(
                400,
                "unknown parameter",
                f"{name!r} is not a parameter here; use {', '.join(known) or 'none'}",
            )
        if len(raws) > 1 and not parameter.repeat:
            raise invalid(f"give {name} once")
        try:
            parsed = [parameter.parse(raw.decode()) for raw in raws]
        except UnicodeDecodeError:
            raise invalid(f"{name}: not UTF-8 text") from None
        values[parameter.target] = parsed if parameter.repeat else parsed[0]
    return values


def messages_pipeline(values: Mapping[str, Any]) -> MessagesPipeline:
    """The pipeline answering a request's window and filters (values by parameter name)."""
    asked = {name: value for name, value in values.items() if name in MessagesPipeline.param}
    explicit = "start" in asked or "end" in asked
    if explicit and asked.get("window", "custom") != "custom":
        raise refused("give either window or start and end")
    if (explicit or asked.get("window") == "custom") and not ("start" in asked and "end" in asked):
        raise refused("an explicit window needs both start and end")
    return MessagesPipeline(**asked)
