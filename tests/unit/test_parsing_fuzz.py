"""Any text in a link or an API query is taken or refused with a sentence, never an exception.

Property tests over the two ways in: the page's URL (each question parameter's
``deserialize``, and the sidebar's refusal path ``apply_each``) and the REST API's
query (``read_arguments``, ``messages_pipeline``, the cursor).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api import answers
from app.api.parameters import (
    FILTERS,
    PAGE,
    QUARANTINE,
    ApiError,
    messages_pipeline,
    read_arguments,
)
from app.views.filters import apply_each, url_names
from pipelines.cache import MemoryFrameCache
from pipelines.errors import QueryError
from pipelines.live import LiveFrames
from pipelines.pipeline import MessagesPipeline
from pipelines.schema import empty_frame
from pipelines.sources.local import LocalSource

# Texts that have broken parsers before, beside whatever hypothesis makes up.
TRICKY = [
    "",
    ",",
    ",,a,,",
    "custom",
    "24h",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01",
    "2026-02-30T00:00:00Z",
    "2026-01-01T00:00:00+25:00",
    "1e400",
    "-1",
    "x\ud800",
    "<img src=x onerror=alert(1)>",
    "null",
    "[" * 5000,
    "Europe/Nowhere",
    "../../etc/passwd",
]
TEXTS = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=40),
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
)
NAMES = url_names(MessagesPipeline)
API_PARAMETERS = (*FILTERS, *PAGE)


@pytest.fixture(scope="module", autouse=True)
def frames(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFrames]:
    """An empty store: a custom window completed from the one shown reads its time here."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    frames = LiveFrames(LocalSource(folder / "store.db"), MemoryFrameCache())
    yield frames


@given(name=st.sampled_from(sorted(NAMES)), text=TEXTS)
@settings(max_examples=300)
def test_a_question_parameter_deserializes_or_refuses_with_a_query_error(
    name: str, text: str
) -> None:
    declared = MessagesPipeline.param[name]
    try:
        value = declared.deserialize(text)
    except (QueryError, ValueError):
        return
    if value is not None and isinstance(value, datetime):
        assert value.tzinfo is not None and value.utcoffset() == UTC.utcoffset(None)
    elif isinstance(value, list):
        assert all(isinstance(item, str) and item for item in value)


@given(values=st.dictionaries(st.sampled_from(sorted(NAMES)), TEXTS, max_size=4))
@settings(max_examples=200)
def test_any_link_is_applied_or_refused_never_raised(
    frames: LiveFrames, values: dict[str, str]
) -> None:
    pipeline = MessagesPipeline(frames=frames)
    refused = apply_each(pipeline, values, NAMES)
    assert len(refused) <= len(values)
    assert all(sentence.startswith("Ignored ") for sentence in refused)
    if len(values) == 1 and refused:  # alone, a refused value leaves the parameter as it was
        (name,) = values
        assert getattr(pipeline, name) == MessagesPipeline.param[name].default
    # Whatever was taken is a question the pipeline can answer, or refuses with a sentence.
    with contextlib.suppress(QueryError):
        pipeline.window_spec  # noqa: B018


ARGUMENT_NAMES = st.one_of(st.sampled_from([p.name for p in API_PARAMETERS]), st.text(max_size=8))
RAW_VALUES = st.one_of(TEXTS.map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary())


@given(
    arguments=st.dictionaries(
        ARGUMENT_NAMES, st.lists(RAW_VALUES, min_size=1, max_size=3), max_size=5
    )
)
@settings(max_examples=300)
def test_any_api_query_is_answered_or_refused_with_400_or_422(
    arguments: dict[str, list[bytes]],
) -> None:
    try:
        values = read_arguments(API_PARAMETERS, arguments)
        page = {name: values.pop(name) for name in ("limit", "cursor") if name in values}
        pipeline = messages_pipeline(values)
        pipeline.window_spec  # noqa: B018
        answers.page(empty_frame("messages"), page.get("limit", 100), page.get("cursor"))
    except ApiError as exc:
        assert exc.status in (400, 422) and exc.detail
    except QueryError as exc:  # answered 422 by the handler
        assert str(exc)


@given(
    arguments=st.dictionaries(
        st.sampled_from(["limit", "raw"]), st.lists(RAW_VALUES, min_size=1, max_size=2)
    )
)
def test_any_quarantine_query_is_read_or_refused_with_400(
    arguments: dict[str, list[bytes]],
) -> None:
    try:
        values = read_arguments(QUARANTINE, arguments)
    except ApiError as exc:
        assert exc.status == 400
        return
    assert 1 <= values.get("limit", 100) <= 1000 and values.get("raw", 0) in (0, 1)
