"""Azure Cosmos DB through the official ``azure-cosmos`` SDK, read only.

Queries come from :mod:`pipelines.sources.cosmos_sql` (parameters only, projection
pushed down) and page through continuations.  Projected rows come back as arrays
of values and leave as :class:`ColumnBatch` es keyed by field path, which
normalisation reads column by column.  Incremental reads follow the
change feed; where Cosmos DB refuses the feed, a ``_ts`` watermark query takes
its place.  Change tokens say which: ``cf:<SDK continuation>`` or
``ts:<epoch seconds>``.

Every HTTP response the SDK receives, its own retries included, is metered into
``stats`` (request units, 429s).  On top of the SDK's retries
come a few more with jittered backoff, and errors leave as the project's own,
naming the setting to fix.  Nothing is ever created or written.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.paging import PageIterator
from azure.cosmos import ContainerProxy, CosmosClient
from azure.cosmos.exceptions import CosmosHttpResponseError

from pipelines.errors import (
    ConfigError,
    SourceAuthError,
    SourceError,
    SourceNotFoundError,
    SourceUnavailableError,
)
from pipelines.query import Query
from pipelines.settings import Settings
from pipelines.sources.base import ChangeSet, ColumnBatch, Document, SourceStats
from pipelines.sources.cosmos_sql import NEWEST_TS, CosmosSql, compile_query, compile_since, project

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline import PipelineResponse

log = logging.getLogger(__name__)

T = TypeVar("T")

FEED_TOKEN = "cf:"
WATERMARK_TOKEN = "ts:"
#: Properties Cosmos DB adds to every document.
SYSTEM_PROPERTIES = frozenset({"_rid", "_self", "_etag", "_attachments", "_ts"})
#: Documents per list that ``fetch`` yields: normalising 1k-document pages one by
#: one costs five times what 20k-document lists do.
BATCH_SIZE = 20_000
# Throttled, unavailable, timed out: worth another attempt once the SDK gave up.
_TRANSIENT_STATUS = frozenset({408, 429, 503})


@dataclass(frozen=True)
class Backoff:
    """Attempts on top of the SDK's own retries: bounded, exponential, full jitter."""

    attempts: int = 3
    base_seconds: float = 0.5
    max_seconds: float = 8.0

    def delay(self, failures: int, at_least: float = 0.0) -> float:
        """Seconds to wait after the ``failures``-th failure in a row."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (failures - 1))
        return max(at_least, random.uniform(0.0, ceiling))


class CosmosSource:
    """The agents and messages containers of one Cosmos DB database."""

    def __init__(
        self,
        endpoint: str,
        database: str,
        credential: str | TokenCredential,
        *,
        containers: Mapping[str, str] | None = None,
        page_size: int = 1000,
        batch_size: int = BATCH_SIZE,
        backoff: Backoff | None = None,
    ) -> None:
        """``credential`` is an account key or an Azure AD token credential."""
        if not isinstance(credential, str) and endpoint.startswith("http://"):
            raise ConfigError(
                f"AGENTDASH_COSMOS_ENDPOINT={endpoint!r}: Azure AD sign-in needs an https "
                "endpoint; for an http emulator set AGENTDASH_COSMOS_KEY"
            )
        self.endpoint = endpoint
        self.database = database
        self.containers = {"agents": "agents", "messages": "messages", **(containers or {})}
        self.page_size = page_size
        self.batch_size = batch_size
        self.backoff = backoff or Backoff()
        self.identity = (
            f"cosmos:{endpoint.rstrip('/')}/{database}"
            f"?agents={self.containers['agents']}&messages={self.containers['messages']}"
        )
        self.stats = SourceStats()
        self._credential = credential
        self._client: CosmosClient | None = None
        self._proxies: dict[str, ContainerProxy] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        page_size: int | None = None,
        batch_size: int = BATCH_SIZE,
        backoff: Backoff | None = None,
    ) -> CosmosSource:
        """The source the ``AGENTDASH_COSMOS_*`` settings describe; connects on first use.

        Without ``AGENTDASH_COSMOS_KEY`` it signs in with Azure AD
        (``DefaultAzureCredential``: environment, managed identity, ``az login``...).
        """
        if not settings.cosmos_endpoint or not settings.cosmos_database:
            raise ConfigError(
                "Cosmos DB needs AGENTDASH_COSMOS_ENDPOINT and AGENTDASH_COSMOS_DATABASE: "
                "set them in the environment or in the AGENTDASH_CONFIG file"
            )
        credential: str | TokenCredential
        if settings.cosmos_key:
            credential = _account_key(settings.cosmos_key)
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return cls(
            settings.cosmos_endpoint,
            settings.cosmos_database,
            credential,
            containers={
                "agents": settings.cosmos_agents_container,
                "messages": settings.cosmos_messages_container,
            },
            page_size=page_size or settings.cosmos_page_size,
            batch_size=batch_size,
            backoff=backoff,
        )

    # -- the Source contract ----------------------------------------------------------
    def fetch(self, query: Query) -> Iterator[Sequence[Document]]:
        """Yield the matching documents in batches of at least ``batch_size``, the last shorter.

        A projected query's batches are :class:`ColumnBatch` es keyed by field path.
        """
        self._check(query.container)
        sql = compile_query(query)
        if sql is None:
            return
        batch: list[Any] = []
        for page in self._pages(query.container, sql, rows=True):
            batch += page
            if len(batch) >= self.batch_size:
                yield self._batch(sql, batch)
                batch = []
        if batch:
            yield self._batch(sql, batch)

    @staticmethod
    def _batch(sql: CosmosSql, rows: list[Any]) -> Sequence[Document]:
        if sql.fields is None:
            return rows
        return ColumnBatch.from_rows(sql.fields, rows)

    def changes(self, query: Query, token: str | None) -> ChangeSet:
        """Documents changed since ``token``, by change feed or ``_ts`` watermark."""
        container = query.container
        self._check(container)
        if token is None:
            return ChangeSet([], self._token_now(container))
        if token.startswith(FEED_TOKEN):
            start = token.removeprefix(FEED_TOKEN)
            docs, continuation = self._retrying(
                container, lambda: self._read_feed(container, continuation=start)
            )
            self.stats.add(documents=len(docs))
            if query.projection is not None:
                docs = project(docs, query.projection)
            return ChangeSet(docs, FEED_TOKEN + continuation)
        if token.startswith(WATERMARK_TOKEN) and token.removeprefix(WATERMARK_TOKEN).isdigit():
            since = int(token.removeprefix(WATERMARK_TOKEN))
            sql = compile_since(query, since)
            docs = [doc for page in self._pages(container, sql) for doc in page]
            newest = max((d["_ts"] for d in docs if isinstance(d.get("_ts"), int)), default=since)
            return ChangeSet(docs, f"{WATERMARK_TOKEN}{max(newest, since)}")
        raise SourceError(
            f"change token {token[:40]!r} does not belong to a Cosmos DB source: reload the frame"
        )

    def close(self) -> None:
        """Release the client's connections; the next call connects again."""
        with self._lock:
            client, self._client = self._client, None
            self._proxies.clear()
        if client is not None:
            client.close()

    # -- reading ------------------------------------------------------------------------
    def _pages(
        self,
        container: str,
        sql: CosmosSql,
        page_size: int | None = None,
        *,
        rows: bool = False,
    ) -> Generator[list[Any], None, None]:
        """The query's pages, resuming from the last continuation after a transient error.

        A projected query's rows are arrays of values in the order of ``sql.fields``:
        with ``rows`` they stay so, else they become documents keyed by field path.
        """
        continuation: str | None = None
        pages: PageIterator | None = None
        failures = 0
        while True:
            try:
                if pages is None:
                    pages = cast(
                        PageIterator,
                        self._proxy(container)
                        .query_items(
                            sql.text,
                            parameters=sql.parameter_list(),
                            enable_cross_partition_query=True,
                            max_item_count=page_size or self.page_size,
                        )
                        .by_page(continuation),
                    )
                page = list(next(pages))
            except StopIteration:
                return
            except AzureError as exc:
                failures += 1
                self._pause_or_raise(exc, failures, container)
                if pages is not None:
                    continuation, pages = pages.continuation_token, None
                continue
            failures = 0
            if sql.fields is not None and not rows:
                fields = sql.fields  # a local, read once per row below
                page = [dict(zip(fields, row, strict=True)) for row in page]
            self.stats.add(documents=len(page))
            yield page

    def _read_feed(self, container: str, **start: Any) -> tuple[list[Document], str]:
        """The whole change feed from ``start``, and the continuation after it."""
        last: dict[str, Mapping[str, Any]] = {}

        def keep(headers: Mapping[str, Any], _body: object) -> None:
            last["headers"] = headers

        feed = self._proxy(container).query_items_change_feed(
            max_item_count=self.page_size, response_hook=keep, **start
        )
        docs = list(feed)
        # Once a page is processed the SDK rewrites the etag of *its* headers into its own
        # continuation (base64 JSON around the server's etag), which this call alone holds;
        # client_connection.last_response_headers has it too, but any thread overwrites it.
        return docs, str(last["headers"]["etag"])

    def _token_now(self, container: str) -> str:
        def feed_now() -> str | None:
            try:
                return self._read_feed(container, start_time="Now")[1]
            except CosmosHttpResponseError as exc:
                if exc.status_code != 400:
                    raise
                log.warning(
                    "Cosmos DB refuses the change feed of %s (%s): reading changes by _ts instead",
                    self.containers[container],
                    _first_line(exc),
                )
                return None

        continuation = self._retrying(container, feed_now)
        if continuation is not None:
            return FEED_TOKEN + continuation
        pages = self._pages(container, NEWEST_TS, page_size=1)
        newest = next(pages, [])
        pages.close()
        return f"{WATERMARK_TOKEN}{newest[0]['_ts'] if newest else 0}"

    # -- plumbing -----------------------------------------------------------------------
    def _check(self, container: str) -> None:
        if container not in self.containers:
            raise SourceError(f"container {container!r} is not one of {', '.join(self.containers)}")

    def _proxy(self, container: str) -> ContainerProxy:
        with self._lock:
            if self._client is None:
                self._client = CosmosClient(
                    self.endpoint, self._credential, raw_response_hook=self._on_response
                )
            proxy = self._proxies.get(container)
            if proxy is None:
                database = self._client.get_database_client(self.database)
                proxy = database.get_container_client(self.containers[container])
                self._proxies[container] = proxy
            return proxy

    def _on_response(self, response: PipelineResponse[Any, Any]) -> None:
        """Meter one HTTP response, whichever SDK layer sent or retried the request."""
        http = response.http_response
        charge = float(http.headers.get("x-ms-request-charge") or 0.0)
        throttled = int(http.status_code == 429)
        self.stats.add(requests=1, request_charge=charge, throttled=throttled)

    def _retrying(self, container: str, attempt: Callable[[], T]) -> T:
        failures = 0
        while True:
            try:
                return attempt()
            except AzureError as exc:
                failures += 1
                self._pause_or_raise(exc, failures, container)

    def _pause_or_raise(self, exc: AzureError, failures: int, container: str) -> None:
        """Wait before the next attempt, or raise ``exc`` as the project's error."""
        transient = isinstance(exc, ServiceRequestError | ServiceResponseError) or (
            isinstance(exc, CosmosHttpResponseError) and exc.status_code in _TRANSIENT_STATUS
        )
        if not transient or failures >= self.backoff.attempts:
            raise self._error(exc, container, failures) from exc
        retry_after = 0.0
        if isinstance(exc, CosmosHttpResponseError):
            retry_after = float(exc.headers.get("x-ms-retry-after-ms") or 0.0) / 1000
        delay = self.backoff.delay(failures, retry_after)
        log.warning(
            "reading %s from Cosmos DB failed (%s), attempt %d of %d in %.2f s",
            container,
            _first_line(exc),
            failures + 1,
            self.backoff.attempts,
            delay,
        )
        time.sleep(delay)

    def _error(self, exc: AzureError, container: str, attempts: int) -> SourceError:
        endpoint = f"AGENTDASH_COSMOS_ENDPOINT={self.endpoint!r}"
        if isinstance(exc, CosmosHttpResponseError):
            status = exc.status_code
            if status in (401, 403):
                if isinstance(self._credential, str):
                    return SourceAuthError(
                        f"Cosmos DB rejected the key ({status}): check AGENTDASH_COSMOS_KEY"
                    )
                return SourceAuthError(
                    f"Cosmos DB rejected the Azure AD identity ({status}): give it a Cosmos DB "
                    "data reader role, or set AGENTDASH_COSMOS_KEY"
                )
            if status == 404:
                return self._not_found(container)
            if status == 429:
                return SourceUnavailableError(
                    f"Cosmos DB kept throttling reads of {container} (429) after {attempts} "
                    "attempts: raise the container's throughput (RU/s) or refresh less often "
                    "(AGENTDASH_REFRESH_SECONDS)"
                )
            if status in _TRANSIENT_STATUS:
                return SourceUnavailableError(
                    f"Cosmos DB did not answer ({status}) after {attempts} attempts: "
                    f"check {endpoint} and the account's health"
                )
            return SourceError(
                f"Cosmos DB refused to read {container} ({status}): {_first_line(exc)}"
            )
        if isinstance(exc, ClientAuthenticationError):
            return SourceAuthError(
                f"no Azure AD token for Cosmos DB ({_first_line(exc)}): sign in (az login, "
                "managed identity, AZURE_* variables) or set AGENTDASH_COSMOS_KEY"
            )
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            return SourceUnavailableError(
                f"cannot reach Cosmos DB after {attempts} attempts: check {endpoint} "
                f"and the network ({_first_line(exc)})"
            )
        return SourceError(f"Cosmos DB failed reading {container}: {_first_line(exc)}")

    def _not_found(self, container: str) -> SourceNotFoundError:
        """Say whether the database or the container is missing, and what to set."""
        name = self.containers[container]
        client = self._client
        if client is None:
            return SourceNotFoundError(
                f"no Cosmos DB account answers at {self.endpoint} (404): "
                "check AGENTDASH_COSMOS_ENDPOINT"
            )
        try:
            client.get_database_client(self.database).read()
        except CosmosHttpResponseError as exc:
            if exc.status_code == 404:
                return SourceNotFoundError(
                    f"Cosmos DB at {self.endpoint} has no database {self.database!r} (404): "
                    "set AGENTDASH_COSMOS_DATABASE to an existing database"
                )
        return SourceNotFoundError(
            f"Cosmos DB database {self.database!r} has no container {name!r} (404): set "
            f"AGENTDASH_COSMOS_{container.upper()}_CONTAINER to the container of the {container}"
        )


def _account_key(key: str) -> str:
    """The key, once it is known to be base64 as account keys are (the SDK signs with its
    bytes, and would fail at the first request with a traceback)."""
    try:
        base64.b64decode(key, validate=True)
    except binascii.Error:
        raise ConfigError(
            "AGENTDASH_COSMOS_KEY is not base64: copy the account's primary or secondary "
            "(read-only) key as the portal shows it, or unset it for Azure AD sign-in"
        ) from None
    return key


def _first_line(exc: AzureError) -> str:
    """The service's own message, first line only: Cosmos DB appends activity ids and more."""
    text = str(getattr(exc, "http_error_message", None) or exc.message).strip()
    with contextlib.suppress(ValueError, TypeError, KeyError):
        text = str(json.loads(text)["message"]).strip()
    return text.splitlines()[0] if text else type(exc).__name__
