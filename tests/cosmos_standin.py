"""A test stand-in for the Azure Cosmos DB gateway.

The official Cosmos DB emulator cannot run on these machines, so tests run the real
``azure-cosmos`` SDK over real HTTP against this small server instead. It speaks only the
subset of the gateway (REST) protocol that the SDK needs for what this project does:

- the database account, database and container read and create, and one partition-key
  range (with the incremental-feed / 304 handshake the SDK uses to read ranges);
- document upsert, create and point read;
- queries in a small SQL subset: ``SELECT *`` | ``SELECT VALUE COUNT(1)`` |
  ``SELECT c.a, c.b.c, c["x"] AS y`` | ``SELECT VALUE [c.a, IS_DEFINED(c.b) ? c.b : null]``
  (array elements are operands or ``condition ? element : element``); ``FROM <alias>``;
  ``WHERE`` with ``= != <> < <= > >=`` and ``IN (...)`` between property paths,
  ``@parameters`` and literals, ``AND``, ``OR``, ``NOT``, parentheses and
  ``IS_DEFINED(path)``, ``IS_STRING(path)``, ``IS_NUMBER(path)``; one ``ORDER BY <path>
  [ASC|DESC]``. Comparisons follow Cosmos:
  values of different types are neither equal nor ordered, and an undefined result never
  selects a row; an array built by the query leaves undefined values out, as Cosmos does;
- the change feed of a whole container, latest version only, from the beginning, from now,
  from a point in time or from a continuation;
- master-key (HMAC-SHA256) authentication.

Anything else is answered 400. There are no deletes over HTTP, no stored procedures, no
TTL, no indexing policies, no throughput and one partition only.

For tests it adds fault injection (429, 503, other refusals, slow answers, dropped
connections), stopping and restarting on the same port, request accounting, and a direct API
to load data without HTTP::

    with CosmosStandin() as server:
        server.create_container("db", "messages", pk_path="/agent")
        server.upsert("db", "messages", docs)
        client = CosmosClient(server.url, server.key)
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import itertools
import json
import operator
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parsedate_to_datetime
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

EMULATOR_KEY: Final = (
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
)

Document = dict[str, Any]
Getter = Callable[[Mapping[str, Any]], Any]
Predicate = Callable[[Document], bool | None]
# Builds a row from a document: an object of columns, or an array of values.
Projector = Callable[[Document], Any]
RequestKind = Literal[
    "account",
    "database",
    "container",
    "pkranges",
    "query",
    "changefeed",
    "write",
    "read",
    "unsupported",
]

_DEFAULT_PAGE_SIZE: Final = 100
# Cosmos answers max-item-count -1 with as many items as fit in 4 MB; a fixed count is
# close enough for tests and keeps pages cheap to build.
_DYNAMIC_PAGE_SIZE: Final = 1000
_KEPT_CURSORS: Final = 256
_READ_CHARGE: Final = 1.0
_WRITE_CHARGE: Final = 6.0


# --- Fault injection ---------------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    """Answer 429 Too Many Requests, asking the client to wait ``retry_after_ms``."""

    retry_after_ms: int = 10


@dataclass(frozen=True)
class Unavailable:
    """Answer 503 Service Unavailable."""


@dataclass(frozen=True)
class Slow:
    """Wait ``seconds`` before answering normally."""

    seconds: float


@dataclass(frozen=True)
class Hold:
    """Wait until ``gate`` is set (by the test), then answer normally."""

    gate: threading.Event


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


@dataclass(frozen=True)
class Refuse:
    """Answer with an error, as a gateway that does not support the request does."""

    status: int = 400
    message: str = "The request is not supported."


Fault = Throttle | Unavailable | Slow | Hold | Drop | Refuse


@dataclass
class _FaultRule:
    fault: Fault
    remaining: int
    method: str | None
    path_contains: str | None
    kind: RequestKind | Literal["any"]

    def matches(self, request: _Request) -> bool:
        return (
            (self.method is None or self.method.upper() == request.method)
            and (self.path_contains is None or self.path_contains in request.path)
            and self.kind in ("any", request.kind)
        )


@dataclass(frozen=True)
class Counters:
    """What the stand-in has served since it was created or its counters were reset.

    ``requests`` counts every request that arrived, faulted or not, by its
    :data:`RequestKind`.
    """

    requests: Mapping[str, int]
    documents_returned: int
    bytes_sent: int
    throttled: int
    unavailable: int
    dropped: int


# --- The SQL subset ----------------------------------------------------------------------


class QueryError(ValueError):
    """The query is outside the SQL subset the stand-in understands."""


# A missing property. It is not null, equals nothing, and makes comparisons undefined.
_UNDEFINED: Final = object()

_KIND_OF: Final[dict[type, str]] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
    list: "array",
    dict: "object",
}
# The type checks of the subset: each is true or false, never undefined.
_TYPE_CHECKS: Final[dict[str, Callable[[Any], bool]]] = {
    "IS_DEFINED": lambda value: value is not _UNDEFINED,
    "IS_STRING": lambda value: _KIND_OF.get(type(value)) == "string",
    "IS_NUMBER": lambda value: _KIND_OF.get(type(value)) == "number",
}
_SORT_RANK: Final = {"null": 1, "boolean": 2, "number": 3, "string": 4, "array": 5, "object": 6}
_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TOKEN: Final = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<param>@\w+)
      | (?P<name>[A-Za-z_]\w*)
      | (?P<symbol><=|>=|!=|<>|[=<>*.,()\[\]?:])
    )""",
    re.VERBOSE,
)
_ESCAPE: Final = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
_ESCAPED: Final = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def _unescape(match: re.Match[str]) -> str:
    escaped = match.group(1)
    if len(escaped) == 5:
        return chr(int(escaped[1:], 16))
    return _ESCAPED.get(escaped, escaped)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    value: Any
    at: int


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    end = len(text.rstrip())
    position = 0
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise QueryError(f"unexpected text at position {position}: {text[position:][:20]!r}")
        kind, raw = match.lastgroup, match.group(match.lastgroup)
        value: Any = raw
        if kind == "number":
            value = float(raw) if any(c in raw for c in ".eE") else int(raw)
        elif kind == "string":
            value = _ESCAPE.sub(_unescape, raw[1:-1])
        tokens.append(_Token(kind, raw, value, match.start(kind)))
        position = match.end()
    tokens.append(_Token("end", "", None, end))
    return tokens


def _compare(op: Callable[[Any, Any], bool], left: Any, right: Any) -> bool | None:
    kind = _KIND_OF.get(type(left))
    if kind is None or kind != _KIND_OF.get(type(right)):
        return None
    if kind == "null":
        return op(0, 0)  # null = null and null <= null hold; Python cannot order None
    if kind in ("array", "object") and op not in (operator.eq, operator.ne):
        return None
    return op(left, right)


def _sort_key(value: Any) -> tuple[int, Any]:
    kind = _KIND_OF.get(type(value))
    if kind is None:
        return (0, 0)
    return (_SORT_RANK[kind], value if kind in ("boolean", "number", "string") else 0)


def _getter(segments: tuple[str | int, ...]) -> Getter:
    if len(segments) == 1 and isinstance(segments[0], str):
        # Most paths are one property deep; this is the loop every scanned row goes through.
        key = segments[0]
        return lambda doc: doc.get(key, _UNDEFINED)

    def get(doc: Mapping[str, Any]) -> Any:
        value: Any = doc
        for segment in segments:
            if isinstance(value, dict) and isinstance(segment, str):
                value = value.get(segment, _UNDEFINED)
            elif isinstance(value, list) and isinstance(segment, int) and 0 <= segment < len(value):
                value = value[segment]
            else:
                return _UNDEFINED
        return value

    return get


def _constant(value: Any) -> Getter:
    return lambda _doc: value


def _all(predicates: list[Predicate]) -> Predicate:
    def evaluate(doc: Document) -> bool | None:
        result: bool | None = True
        for predicate in predicates:
            outcome = predicate(doc)
            if outcome is False:
                return False
            if outcome is None:
                result = None
        return result

    return evaluate


def _any(predicates: list[Predicate]) -> Predicate:
    def evaluate(doc: Document) -> bool | None:
        result: bool | None = False
        for predicate in predicates:
            outcome = predicate(doc)
            if outcome is True:
                return True
            if outcome is None:
                result = None
        return result

    return evaluate


def _negate(predicate: Predicate) -> Predicate:
    def evaluate(doc: Document) -> bool | None:
        outcome = predicate(doc)
        return None if outcome is None else not outcome

    return evaluate


def _projector(columns: list[tuple[str, Getter]]) -> Projector:
    def project(doc: Document) -> Document:
        row = {}
        for name, get in columns:
            value = get(doc)
            if value is not _UNDEFINED:
                row[name] = value
        return row

    return project


def _array(elements: list[Getter]) -> Projector:
    # Cosmos leaves undefined values out: the values after one move up a position.
    return lambda doc: [value for get in elements if (value := get(doc)) is not _UNDEFINED]


def _choice(condition: Predicate, first: Getter, second: Getter) -> Getter:
    # As the offline query engine of Microsoft's .NET SDK: anything but true picks ``second``.
    return lambda doc: first(doc) if condition(doc) is True else second(doc)


@dataclass(frozen=True)
class _Path:
    root: str
    segments: tuple[str | int, ...]
    at: int


@dataclass
class _Cursor:
    """Rows still to page through; ``predicate`` is None once rows are already filtered."""

    rows: list[Document]
    predicate: Predicate | None
    project: Projector | None

    def page(self, start: int, size: int) -> tuple[list[Any], int | None]:
        """Up to ``size`` rows from index ``start``, and the index of the next row if any.

        Looking one row ahead spares the client a last, empty page; continuing from an
        index, not a generator, makes a retried request get the same page again.
        """
        rows, keep, project = self.rows, self.predicate, self.project
        page: list[Any] = []
        for index in range(start, len(rows)):
            doc = rows[index]
            if keep is None or keep(doc) is True:
                if len(page) == size:
                    return page, index
                page.append(doc if project is None else project(doc))
        return page, None


@dataclass(frozen=True)
class _Query:
    where: Predicate | None
    select: Projector | None
    count_only: bool
    order_by: Getter | None
    descending: bool

    def count(self, docs: list[Document]) -> int:
        where = self.where
        return sum(1 for doc in docs if where is None or where(doc) is True)

    def cursor(self, docs: list[Document]) -> _Cursor:
        if self.order_by is None:
            return _Cursor(docs, self.where, self.select)
        where, order_by = self.where, self.order_by
        # Sorting needs every match anyway, so filter once here rather than on each page.
        matches = [doc for doc in docs if where is None or where(doc) is True]
        matches.sort(key=lambda doc: _sort_key(order_by(doc)), reverse=self.descending)
        return _Cursor(matches, None, self.select)


class _Parser:
    """Recursive descent over the SQL subset, building closures instead of a syntax tree."""

    def __init__(self, text: str, parameters: Mapping[str, Any]) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.parameters = parameters
        # Paths are read before FROM names the alias: their roots are checked at the end.
        self.paths: list[_Path] = []

    def parse(self) -> _Query:
        self.expect_keyword("SELECT")
        count_only = False
        select: Projector | None = None
        if self.keyword("VALUE"):
            if self.symbol("["):
                select = _array(self.elements())
            else:
                self.expect_keyword("COUNT")
                self.expect_symbol("(")
                one = self.advance()
                if one.kind != "number" or one.value != 1:
                    raise self.error("COUNT(1) or an array [...]", one)
                self.expect_symbol(")")
                count_only = True
        elif not self.symbol("*"):
            columns = [self.column()]
            while self.symbol(","):
                columns.append(self.column())
            select = _projector(columns)
        self.expect_keyword("FROM")
        alias = self.advance()
        if alias.kind != "name":
            raise self.error("a collection alias", alias)
        where = self.disjunction() if self.keyword("WHERE") else None
        order_by, descending = None, False
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            order_by = self.getter(self.path())
            descending = self.keyword("DESC")
            if not descending:
                self.keyword("ASC")
        if self.peek().kind != "end":
            raise self.error("the end of the query", self.peek())
        for path in self.paths:
            if path.root != alias.text:
                raise QueryError(
                    f"unknown identifier {path.root!r} at position {path.at}: "
                    f"the FROM alias is {alias.text!r}"
                )
        return _Query(where, select, count_only, order_by, descending)

    def column(self) -> tuple[str, Getter]:
        path = self.path()
        if self.keyword("AS"):
            name = self.advance()
            if name.kind != "name":
                raise self.error("a column name", name)
            return name.text, self.getter(path)
        last = path.segments[-1]
        return (last if isinstance(last, str) else "$1"), self.getter(path)

    def elements(self) -> list[Getter]:
        """The elements of an array after its ``[``, and the closing ``]``."""
        if self.symbol("]"):
            return []
        elements = [self.element()]
        while self.symbol(","):
            elements.append(self.element())
        self.expect_symbol("]")
        return elements

    def element(self) -> Getter:
        """An operand, or ``condition ? element : element``.

        The condition must start as no operand does (a type check, NOT or a parenthesis),
        which tells the two forms apart without looking further ahead.
        """
        token = self.peek()
        if not (
            (token.kind == "name" and token.text.upper() in (*_TYPE_CHECKS, "NOT"))
            or (token.kind == "symbol" and token.text == "(")
        ):
            return self.operand()
        condition = self.disjunction()
        self.expect_symbol("?")
        first = self.element()
        self.expect_symbol(":")
        return _choice(condition, first, self.element())

    def disjunction(self) -> Predicate:
        terms = [self.conjunction()]
        while self.keyword("OR"):
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else _any(terms)

    def conjunction(self) -> Predicate:
        factors = [self.negation()]
        while self.keyword("AND"):
            factors.append(self.negation())
        return factors[0] if len(factors) == 1 else _all(factors)

    def negation(self) -> Predicate:
        if self.keyword("NOT"):
            return _negate(self.negation())
        return self.condition()

    def condition(self) -> Predicate:
        if self.symbol("("):
            inner = self.disjunction()
            self.expect_symbol(")")
            return inner
        for name, check in _TYPE_CHECKS.items():
            if self.keyword(name):
                self.expect_symbol("(")
                get = self.getter(self.path())
                self.expect_symbol(")")
                # Never undefined: an undefined value is of no type, so the check is false.
                return lambda doc, check=check: check(get(doc))
        left = self.operand()
        if self.keyword("IN"):
            self.expect_symbol("(")
            choices = [self.operand()]
            while self.symbol(","):
                choices.append(self.operand())
            self.expect_symbol(")")
            return lambda doc: self.member(left(doc), [choice(doc) for choice in choices])
        comparison = self.advance()
        if comparison.kind != "symbol" or comparison.text not in _COMPARISONS:
            raise self.error("a comparison operator or IN", comparison)
        op, right = _COMPARISONS[comparison.text], self.operand()
        return lambda doc: _compare(op, left(doc), right(doc))

    @staticmethod
    def member(value: Any, choices: list[Any]) -> bool | None:
        if value is _UNDEFINED:
            return None
        return any(_compare(operator.eq, value, choice) is True for choice in choices)

    def operand(self) -> Getter:
        token = self.peek()
        if token.kind in ("number", "string"):
            self.advance()
            return _constant(token.value)
        if token.kind == "param":
            self.advance()
            if token.text not in self.parameters:
                raise QueryError(f"parameter {token.text} has no value")
            return _constant(self.parameters[token.text])
        literals = {"TRUE": True, "FALSE": False, "NULL": None}
        if token.kind == "name" and token.text.upper() in literals:
            self.advance()
            return _constant(literals[token.text.upper()])
        return self.getter(self.path())

    def path(self) -> _Path:
        root = self.advance()
        if root.kind != "name":
            raise self.error("a property path", root)
        segments: list[str | int] = []
        while True:
            if self.symbol("."):
                name = self.advance()
                if name.kind != "name":
                    raise self.error("a property name", name)
                segments.append(name.text)
            elif self.symbol("["):
                key = self.advance()
                if key.kind == "string" or (key.kind == "number" and isinstance(key.value, int)):
                    segments.append(key.value)
                else:
                    raise self.error("a quoted property name or an index", key)
                self.expect_symbol("]")
            else:
                break
        if not segments:
            raise self.error(f"a property path like {root.text}.name", root)
        return _Path(root.text, tuple(segments), root.at)

    def getter(self, path: _Path) -> Getter:
        self.paths.append(path)
        return _getter(path.segments)

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "name" and token.text.upper() == word:
            self.index += 1
            return True
        return False

    def symbol(self, text: str) -> bool:
        token = self.peek()
        if token.kind == "symbol" and token.text == text:
            self.index += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise self.error(word, self.peek())

    def expect_symbol(self, text: str) -> None:
        if not self.symbol(text):
            raise self.error(repr(text), self.peek())

    @staticmethod
    def error(expected: str, found: _Token) -> QueryError:
        what = repr(found.text) if found.kind != "end" else "the end of the query"
        return QueryError(f"expected {expected} at position {found.at}, found {what}")


# --- Storage -----------------------------------------------------------------------------


class _Error(Exception):
    """An error answer in the gateway's shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def reply(self, headers: dict[str, str] | None = None) -> _Reply:
        body = json.dumps({"code": self.code, "message": self.message}).encode()
        return _Reply(self.status, body, headers or {})


def _rid(raw: bytes) -> str:
    # Cosmos resource ids are base64 with "-" for "/", so they can sit in a URL path.
    return base64.b64encode(raw).decode().replace("/", "-")


def _partition(value: Any) -> tuple[str, Any]:
    kind = _KIND_OF.get(type(value))
    if kind in ("array", "object"):
        raise _Error(400, "BadRequest", "a partition key value is a string, number, bool or null")
    # The kind keeps True, 1 and "1" apart, as Cosmos does.
    return (kind or "undefined", None if kind is None else value)


@dataclass
class _Container:
    id: str
    rid_bytes: bytes
    database_rid: str
    pk_path: str
    ts: int
    docs: dict[tuple[str, Any, str], Document] = field(default_factory=dict)
    # The change feed: the key written at each LSN (LSNs start at 1, so the key of LSN n
    # is at n - 1), and the LSN of each key's latest write.
    written: list[tuple[str, Any, str]] = field(default_factory=list)
    latest: dict[tuple[str, Any, str], int] = field(default_factory=dict)
    created_docs: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.rid = _rid(self.rid_bytes)
        self.self_link = f"dbs/{self.database_rid}/colls/{self.rid}/"
        self.partition_key = _getter(tuple(self.pk_path.strip("/").split("/")))

    @property
    def lsn(self) -> int:
        return len(self.written)

    def properties(self) -> Document:
        return {
            "id": self.id,
            "indexingPolicy": {
                "indexingMode": "consistent",
                "automatic": True,
                "includedPaths": [{"path": "/*"}],
                "excludedPaths": [{"path": '/"_etag"/?'}],
            },
            "partitionKey": {"paths": [self.pk_path], "kind": "Hash", "version": 2},
            "conflictResolutionPolicy": {
                "mode": "LastWriterWins",
                "conflictResolutionPath": "/_ts",
                "conflictResolutionProcedure": "",
            },
            "geospatialConfig": {"type": "Geography"},
            "_rid": self.rid,
            "_ts": self.ts,
            "_self": self.self_link,
            "_etag": f'"{self.rid}"',
            "_docs": "docs/",
            "_sprocs": "sprocs/",
            "_triggers": "triggers/",
            "_udfs": "udfs/",
            "_conflicts": "conflicts/",
        }

    def key(self, partition: Any, doc_id: str) -> tuple[str, Any, str]:
        kind, value = _partition(partition)
        return (kind, value, doc_id)

    def write(self, doc: Mapping[str, Any], ts: int, *, replace: bool) -> tuple[Document, bool]:
        """Store ``doc`` with its system properties; also returns whether it is new."""
        doc_id = doc.get("id")
        if not isinstance(doc_id, str) or not doc_id:
            raise _Error(400, "BadRequest", "a document needs a non-empty string 'id'")
        key = self.key(self.partition_key(doc), doc_id)
        previous = self.docs.get(key)
        if previous is not None and not replace:
            raise _Error(409, "Conflict", f"a document with id {doc_id!r} already exists")
        self.written.append(key)
        lsn = len(self.written)
        if previous is None:
            rid = _rid(self.rid_bytes + next(self.created_docs).to_bytes(8, "big"))
        else:
            rid = previous["_rid"]
        stored = {
            **doc,
            "_rid": rid,
            "_self": f"{self.self_link}docs/{rid}/",
            "_etag": f'"{lsn:08x}-0000-0000-0000-{ts:012x}"',
            "_attachments": "attachments/",
            "_ts": ts,
        }
        self.docs[key] = stored
        self.latest[key] = lsn
        return stored, previous is None

    def changes(self, after: int, since: float | None, limit: int) -> tuple[list[Document], int]:
        """Documents last written after LSN ``after``, oldest first, and the LSN reached."""
        found: list[Document] = []
        reached = after
        for reached in range(after + 1, self.lsn + 1):
            key = self.written[reached - 1]
            if self.latest[key] != reached:
                continue  # written again later: the feed shows it at its latest LSN only
            doc = self.docs[key]
            if since is not None and doc["_ts"] < since:
                continue
            found.append(doc)
            if len(found) == limit:
                break
        return found, reached


@dataclass
class _Database:
    id: str
    rid_bytes: bytes
    ts: int
    containers: dict[str, _Container] = field(default_factory=dict)

    @property
    def rid(self) -> str:
        return _rid(self.rid_bytes)

    def properties(self) -> Document:
        return {
            "id": self.id,
            "_rid": self.rid,
            "_self": f"dbs/{self.rid}/",
            "_etag": f'"{self.rid}"',
            "_colls": "colls/",
            "_users": "users/",
            "_ts": self.ts,
        }


# --- HTTP ----------------------------------------------------------------------------------


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    documents: int = 0


def _request_kind(method: str, resource_type: str, depth: int, headers: Message) -> RequestKind:
    match (method, resource_type, depth):
        case ("GET", "", 0):
            return "account"
        case ("GET", "dbs", 2) | ("POST", "dbs", 1):
            return "database"
        case ("GET", "colls", 4) | ("POST", "colls", 3):
            return "container"
        case ("GET", "pkranges", 5):
            return "pkranges"
        case ("POST", "docs", 5):
            is_query = headers.get("x-ms-documentdb-isquery", "").lower() == "true"
            return "query" if is_query else "write"
        case ("GET", "docs", 5) if headers.get("A-IM", "").lower() == "incremental feed":
            return "changefeed"
        case ("GET", "docs", 6):
            return "read"
    return "unsupported"


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    parts: tuple[str, ...]
    resource_type: str
    link: str
    headers: Message
    body: bytes
    kind: RequestKind

    @classmethod
    def parse(cls, method: str, target: str, headers: Message, body: bytes) -> _Request:
        path = urlsplit(target).path
        parts = tuple(unquote(part) for part in path.split("/") if part)
        # /dbs/a/colls/b names resource b of type colls; /dbs/a/colls is the feed of colls
        # under dbs/a. The signature covers the type and the named resource.
        if len(parts) % 2:
            resource_type, link = parts[-1], "/".join(parts[:-1])
        else:
            resource_type, link = (parts[-2] if parts else ""), "/".join(parts)
        kind = _request_kind(method, resource_type, len(parts), headers)
        return cls(method, path, parts, resource_type, link, headers, body, kind)

    def json_object(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except ValueError as error:
            raise _Error(400, "BadRequest", f"the request body is not JSON: {error}") from error
        if not isinstance(value, dict):
            raise _Error(400, "BadRequest", "the request body must be a JSON object")
        return value

    def page_size(self) -> int:
        size = int(self.headers.get("x-ms-max-item-count") or _DEFAULT_PAGE_SIZE)
        return _DYNAMIC_PAGE_SIZE if size <= 0 else size


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # stop() must not wait for clients that keep idle connections open.
    block_on_close = False

    def __init__(self, port: int, standin: CosmosStandin) -> None:
        self.standin = standin
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut open keep-alive connections, as a server that goes down does."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client closed it first
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients vanish mid-answer when a test drops connections or stops the server.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = self.server.standin._handle(self.command, self.path, self.headers, body)
        if reply is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown pytest's output


# --- The stand-in ---------------------------------------------------------------------------


class CosmosStandin:
    """A Cosmos DB gateway on 127.0.0.1 for the real SDK, with fault injection for tests.

    ``start()`` listens on ``port`` (0: a free port chosen by the OS); ``stop()`` takes the
    server down, cutting open connections; ``start()`` again brings it back on the same port
    with the same data. Use it as a context manager to start and stop it.
    """

    def __init__(self, key: str = EMULATOR_KEY, *, port: int = 0) -> None:
        self.key = key
        self._key = base64.b64decode(key)
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._databases: dict[str, _Database] = {}
        self._rids = itertools.count(1)
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._cursor_ids = itertools.count()
        self._faults: list[_FaultRule] = []
        self._requests: Counter[str] = Counter()
        self._documents_returned = 0
        self._bytes_sent = 0
        self._statuses: Counter[int] = Counter()
        self._dropped = 0

    # Lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/"

    def start(self) -> CosmosStandin:
        if self._server is not None:
            raise RuntimeError(f"the Cosmos stand-in already runs at {self.url}")
        server = _Server(self._port, self)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"cosmos-standin-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        server.close_connections()
        thread.join()

    def __enter__(self) -> CosmosStandin:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Loading data without HTTP

    def create_container(self, db: str, coll: str, pk_path: str = "/id") -> None:
        """Create the container, and its database if need be; an existing one is kept."""
        with self._lock:
            database = self._databases.get(db) or self._add_database(db)
            existing = database.containers.get(coll)
            if existing is None:
                self._add_container(database, coll, pk_path)
            elif existing.pk_path != pk_path:
                raise ValueError(f"{db}/{coll} exists with partition key {existing.pk_path}")

    def upsert(self, db: str, coll: str, docs: Iterable[Mapping[str, Any]]) -> int:
        """Insert or replace documents as the gateway would; returns how many were written.

        Raises ValueError for a missing container or a document without a string ``id``.
        """
        ts = int(time.time())
        written = 0
        with self._lock:
            try:
                container = self._find_container(db, coll)
                for doc in docs:
                    container.write(doc, ts, replace=True)
                    written += 1
            except _Error as error:
                raise ValueError(f"{error.message} (after {written} documents)") from None
        return written

    def delete_container(self, db: str, coll: str) -> None:
        """Delete the container and its documents; a missing one is ignored."""
        with self._lock:
            database = self._databases.get(db)
            if database is not None:
                database.containers.pop(coll, None)

    # Faults

    def inject(
        self,
        fault: Fault,
        times: int = 1,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        kind: RequestKind | Literal["any"] = "any",
    ) -> None:
        """Answer the next ``times`` requests that match all filters with ``fault``.

        ``path_contains`` is matched against the URL path as sent (percent-encoded). Rules
        apply in the order they were injected, one rule per request.
        """
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        with self._lock:
            self._faults.append(_FaultRule(fault, times, method, path_contains, kind))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # Accounting

    def counters(self) -> Counters:
        with self._lock:
            return Counters(
                requests=dict(self._requests),
                documents_returned=self._documents_returned,
                bytes_sent=self._bytes_sent,
                throttled=self._statuses[429],
                unavailable=self._statuses[503],
                dropped=self._dropped,
            )

    def reset_counters(self) -> None:
        with self._lock:
            self._requests.clear()
            self._statuses.clear()
            self._documents_returned = self._bytes_sent = self._dropped = 0

    # Serving

    def _handle(self, method: str, target: str, headers: Message, body: bytes) -> _Reply | None:
        """The answer to one request, or None to drop the connection."""
        request = _Request.parse(method, target, headers, body)
        with self._lock:
            self._requests[request.kind] += 1
            fault = self._take_fault(request)
        match fault:
            case Drop():
                with self._lock:
                    self._dropped += 1
                return None
            case Throttle(retry_after_ms=wait):
                reply = _Error(429, "TooManyRequests", "Request rate is large.").reply(
                    {"x-ms-retry-after-ms": str(wait), "x-ms-substatus": "3200"}
                )
            case Unavailable():
                reply = _Error(503, "ServiceUnavailable", "Service is unavailable.").reply()
            case Refuse(status=status, message=message):
                reply = _Error(status, "BadRequest" if status == 400 else "Error", message).reply()
            case Slow(seconds=seconds):
                time.sleep(seconds)
                reply = self._answer(request)
            case Hold(gate=gate):
                gate.wait()
                reply = self._answer(request)
            case None:
                reply = self._answer(request)
        reply.headers.setdefault("Content-Type", "application/json")
        reply.headers.setdefault("x-ms-request-charge", f"{_READ_CHARGE:.2f}")
        reply.headers["x-ms-activity-id"] = headers.get("x-ms-activity-id") or str(uuid.uuid4())
        with self._lock:
            self._statuses[reply.status] += 1
            self._documents_returned += reply.documents
            self._bytes_sent += len(reply.body)
        return reply

    def _take_fault(self, request: _Request) -> Fault | None:
        for rule in self._faults:
            if rule.matches(request):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._faults.remove(rule)
                return rule.fault
        return None

    def _answer(self, request: _Request) -> _Reply:
        routes: dict[str, Callable[[_Request], _Reply]] = {
            "account": self._account,
            "database": self._database,
            "container": self._container,
            "pkranges": self._pkranges,
            "query": self._query,
            "changefeed": self._change_feed,
            "write": self._write,
            "read": self._read,
        }
        try:
            self._authorize(request)
            route = routes.get(request.kind)
            if route is None:
                raise _Error(
                    400,
                    "BadRequest",
                    f"{request.method} {request.path} is not supported by the Cosmos DB stand-in",
                )
            return route(request)
        except _Error as error:
            return error.reply()
        except Exception as error:
            # A bug here must reach the test as an answer, not as a dropped connection.
            return _Error(500, "InternalServerError", repr(error)).reply()

    def _authorize(self, request: _Request) -> None:
        token = unquote(request.headers.get("authorization", ""))
        fields = dict(part.partition("=")[::2] for part in token.split("&"))
        signed = "\n".join(
            (
                request.method.lower(),
                request.resource_type.lower(),
                request.link,
                request.headers.get("x-ms-date", "").lower(),
                request.headers.get("date", "").lower(),
                "",
            )
        )
        expected = base64.b64encode(hmac.new(self._key, signed.encode(), sha256).digest())
        if fields.get("type") == "master" and hmac.compare_digest(
            expected.decode(), fields.get("sig", "")
        ):
            return
        raise _Error(
            401,
            "Unauthorized",
            "The input authorization token can't serve the request. The wrong key is being "
            "used or the expected payload is not built as per the protocol.",
        )

    def _account(self, request: _Request) -> _Reply:
        location = [{"name": "Local", "databaseAccountEndpoint": self.url}]
        return self._json(
            200,
            {
                "id": "cosmos-standin",
                "_rid": f"127.0.0.1:{self._port}",
                "_self": "",
                "media": "//media/",
                "addresses": "//addresses/",
                "_dbs": "//dbs/",
                "writableLocations": location,
                "readableLocations": location,
                "enableMultipleWriteLocations": False,
                "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
            },
        )

    def _database(self, request: _Request) -> _Reply:
        with self._lock:
            if request.method == "GET":
                return self._json(200, self._find_database(request.parts[1]).properties())
            name = request.json_object().get("id")
            if not isinstance(name, str) or not name:
                raise _Error(400, "BadRequest", "a database needs a non-empty string 'id'")
            if name in self._databases:
                raise _Error(409, "Conflict", f"database {name!r} already exists")
            return self._json(201, self._add_database(name).properties(), _WRITE_CHARGE)

    def _container(self, request: _Request) -> _Reply:
        with self._lock:
            database = self._find_database(request.parts[1])
            if request.method == "GET":
                return self._json(
                    200, self._find_container(database.id, request.parts[3]).properties()
                )
            definition = request.json_object()
            name = definition.get("id")
            if not isinstance(name, str) or not name:
                raise _Error(400, "BadRequest", "a container needs a non-empty string 'id'")
            partition_key = definition.get("partitionKey") or {}
            paths = partition_key.get("paths") or []
            if len(paths) != 1 or partition_key.get("kind", "Hash") != "Hash":
                raise _Error(400, "BadRequest", "the stand-in supports one Hash partition key path")
            if name in database.containers:
                raise _Error(409, "Conflict", f"container {name!r} already exists")
            container = self._add_container(database, name, paths[0])
            return self._json(201, container.properties(), _WRITE_CHARGE)

    def _pkranges(self, request: _Request) -> _Reply:
        with self._lock:
            container = self._find_container(request.parts[1], request.parts[3])
        etag = f'"{container.rid}-ranges"'
        # The SDK reads ranges as a feed and stops only at a 304 for the etag it holds.
        if request.headers.get("If-None-Match") == etag:
            return _Reply(304, headers={"etag": etag})
        full_range = {
            "id": "0",
            "_rid": _rid(container.rid_bytes + bytes(8)),
            "_self": f"{container.self_link}pkranges/0/",
            "_etag": etag,
            "_ts": container.ts,
            "minInclusive": "",
            "maxExclusive": "FF",
            "ridPrefix": 0,
            "throughputFraction": 1.0,
            "status": "online",
            "parents": [],
        }
        body = {"_rid": container.rid, "PartitionKeyRanges": [full_range], "_count": 1}
        reply = self._json(200, body)
        reply.headers |= {"etag": etag, "x-ms-item-count": "1"}
        return reply

    def _query(self, request: _Request) -> _Reply:
        body = request.json_object()
        if not isinstance(body.get("query"), str):
            raise _Error(400, "BadRequest", 'a query body is {"query": ..., "parameters": [...]}')
        parameters = {p["name"]: p["value"] for p in body.get("parameters") or []}
        with self._lock:
            container = self._find_container(request.parts[1], request.parts[3])
        continuation = request.headers.get("x-ms-continuation")
        if continuation:
            cursor_id, _, start = continuation.rpartition(":")
            with self._lock:
                cursor = self._cursors.get(cursor_id)
            if cursor is None or not start.isdigit():
                raise _Error(400, "BadRequest", f"unknown or expired continuation {continuation!r}")
            return self._page(container, cursor_id, cursor, int(start), request.page_size())
        try:
            query = _Parser(body["query"], parameters).parse()
        except QueryError as error:
            raise _Error(400, "BadRequest", f"{error} in query {body['query']!r}") from error
        with self._lock:
            docs = list(container.docs.values())
        partition = request.headers.get("x-ms-documentdb-partitionkey")
        if partition is not None:
            wanted = _partition(json.loads(partition)[0])
            docs = [doc for doc in docs if _partition(container.partition_key(doc)) == wanted]
        if query.count_only:
            return self._documents(container, [query.count(docs)])
        cursor = query.cursor(docs)
        with self._lock:
            cursor_id = str(next(self._cursor_ids))
            self._cursors[cursor_id] = cursor
            if len(self._cursors) > _KEPT_CURSORS:
                self._cursors.popitem(last=False)
        return self._page(container, cursor_id, cursor, 0, request.page_size())

    def _page(
        self, container: _Container, cursor_id: str, cursor: _Cursor, start: int, size: int
    ) -> _Reply:
        rows, following = cursor.page(start, size)
        reply = self._documents(container, rows)
        if following is None:
            # The last page: free the snapshot.  Faults strike before a query is answered,
            # so no retry asks for this page again.
            with self._lock:
                self._cursors.pop(cursor_id, None)
        else:
            reply.headers["x-ms-continuation"] = f"{cursor_id}:{following}"
        return reply

    def _change_feed(self, request: _Request) -> _Reply:
        if request.headers.get("x-ms-read-key-type"):
            raise _Error(400, "BadRequest", "only whole containers have a change feed here")
        modified_since = request.headers.get("If-Modified-Since")
        since = parsedate_to_datetime(modified_since).timestamp() if modified_since else None
        marker = (request.headers.get("If-None-Match") or "").strip('"')
        with self._lock:
            container = self._find_container(request.parts[1], request.parts[3])
            if not marker:
                after = 0
            elif marker == "*":
                after = container.lsn
            elif marker.isdigit():
                after = int(marker)
            else:
                raise _Error(400, "BadRequest", f"If-None-Match {marker!r} is no change feed etag")
            docs, reached = container.changes(after, since, request.page_size())
            session = self._session_token(container)
        etag = f'"{reached}"'
        if not docs:
            return _Reply(304, headers={"etag": etag, "x-ms-session-token": session})
        reply = self._documents(container, docs)
        reply.headers["etag"] = etag
        return reply

    def _write(self, request: _Request) -> _Reply:
        doc = request.json_object()
        upsert = request.headers.get("x-ms-documentdb-is-upsert", "").lower() == "true"
        with self._lock:
            container = self._find_container(request.parts[1], request.parts[3])
            stored, created = container.write(doc, int(time.time()), replace=upsert)
            session = self._session_token(container)
        minimal = "return=minimal" in request.headers.get("Prefer", "")
        return _Reply(
            201 if created else 200,
            b"" if minimal else json.dumps(stored).encode(),
            {
                "etag": stored["_etag"],
                "x-ms-session-token": session,
                "x-ms-request-charge": f"{_WRITE_CHARGE:.2f}",
            },
        )

    def _read(self, request: _Request) -> _Reply:
        partition = request.headers.get("x-ms-documentdb-partitionkey")
        if partition is None:
            raise _Error(400, "BadRequest", "a point read needs the partition key header")
        value = json.loads(partition)
        # The SDK sends [{}] for a document without a partition key value.
        partition_value = _UNDEFINED if value == [{}] else value[0]
        with self._lock:
            container = self._find_container(request.parts[1], request.parts[3])
            doc = container.docs.get(container.key(partition_value, request.parts[5]))
            session = self._session_token(container)
        if doc is None:
            raise _Error(404, "NotFound", f"document {request.parts[5]!r} does not exist")
        reply = self._json(200, doc)
        reply.headers |= {"etag": doc["_etag"], "x-ms-session-token": session}
        reply.documents = 1
        return reply

    def _documents(self, container: _Container, docs: list[Any]) -> _Reply:
        body = json.dumps({"_rid": container.rid, "Documents": docs, "_count": len(docs)}).encode()
        return _Reply(
            200,
            body,
            {
                "x-ms-item-count": str(len(docs)),
                "x-ms-request-charge": f"{1 + 0.05 * len(body) / 1024:.2f}",
                "x-ms-session-token": self._session_token(container),
            },
            documents=len(docs),
        )

    @staticmethod
    def _json(status: int, body: Any, charge: float = _READ_CHARGE) -> _Reply:
        return _Reply(status, json.dumps(body).encode(), {"x-ms-request-charge": f"{charge:.2f}"})

    @staticmethod
    def _session_token(container: _Container) -> str:
        return f"0:-1#{container.lsn}"

    # Callers hold self._lock.

    def _add_database(self, name: str) -> _Database:
        database = _Database(name, next(self._rids).to_bytes(4, "big"), int(time.time()))
        self._databases[name] = database
        return database

    def _add_container(self, database: _Database, name: str, pk_path: str) -> _Container:
        rid_bytes = database.rid_bytes + next(self._rids).to_bytes(4, "big")
        container = _Container(name, rid_bytes, database.rid, pk_path, int(time.time()))
        database.containers[name] = container
        return container

    def _find_database(self, db: str) -> _Database:
        database = self._databases.get(db)
        if database is None:
            raise _Error(404, "NotFound", f"database {db!r} does not exist")
        return database

    def _find_container(self, db: str, coll: str) -> _Container:
        container = self._find_database(db).containers.get(coll)
        if container is None:
            raise _Error(404, "NotFound", f"container {db}/{coll} does not exist")
        return container
