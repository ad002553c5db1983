"""A dashboard whose file configures a dimension: the model and the dimension are filters of
the API (and its OpenAPI document) and of the page, its URL included, and the page shows the
cost of the window."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import expect

from pipelines.query import Query
from pipelines.schema import FieldMapping, normalise
from pipelines.sources.local import LocalSource
from tests.ui import conftest as ui
from tests.ui.conftest import ServedApp, make_served_app

browser_type_launch_args = ui.browser_type_launch_args
guarded_page = ui.guarded_page

# Demo messages of the last 12 hours only: the 24h window holds every one of them.
CONFIG = '[dimensions]\ntenant = "userId"\n'


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    workdir = tmp_path_factory.mktemp("dimensions")
    (workdir / "agentdash.toml").write_text(CONFIG)
    served = make_served_app(
        workdir, messages=2000, days=0.5, AGENTDASH_CONFIG=str(workdir / "agentdash.toml")
    )
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def stored(app: ServedApp) -> pd.DataFrame:
    """Every message of the server's store, read here with the same dimension."""
    mapping = FieldMapping.for_container("messages", dimensions={"tenant": "userId"})
    docs = [d for page in LocalSource(app.store).fetch(Query.build("messages")) for d in page]
    return normalise(docs, mapping).frame


def summary(app: ServedApp, **params: Any) -> dict[str, Any]:
    status, body = app.get_json("/api/v1/metrics/summary?" + urllib.parse.urlencode(params))
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def test_the_api_filters_by_model_and_by_the_dimension(
    app: ServedApp, stored: pd.DataFrame
) -> None:
    tenant = stored["tenant"].dropna().iloc[0]
    assert (
        summary(app, window="24h", tenant=tenant)["messages"] == (stored["tenant"] == tenant).sum()
    )
    model = "gpt-4o-mini-2024-07-18"
    assert summary(app, window="24h", model=model)["messages"] == (stored["model"] == model).sum()
    cost = summary(app, window="24h")["cost"]
    assert cost["unpriced_messages"] == 0  # the demo's models are all in the table
    assert cost["usd"] > 0
    status, document = app.get_json("/api/v1/openapi.json")
    names = {p["name"] for p in document["paths"]["/api/v1/metrics/summary"]["get"]["parameters"]}
    assert {"model", "tenant"} <= names
    status, body = app.get_json("/api/v1/metrics/summary?tenants=x")
    assert status == 400 and "tenant" in body["detail"]


@pytest.mark.ui
def test_the_page_filters_by_the_dimension_in_its_link_and_shows_the_cost(
    app: ServedApp, stored: pd.DataFrame, guarded_page: tuple[Any, Any]
) -> None:
    page, _ = guarded_page
    tenant = stored["tenant"].dropna().iloc[0]
    page.goto(f"{app.url}/?window=24h&tenant={tenant}")
    expect(page.get_by_text("Tenant", exact=True)).to_be_visible()
    expect(page.get_by_text("Models", exact=True)).to_be_visible()
    mine = stored[stored["tenant"] == tenant]
    expect(page.get_by_text(f"{len(mine):,}", exact=True).first).to_be_visible()
    expect(page.get_by_text("Cost", exact=True)).to_be_visible()
    cost = summary(app, window="24h", tenant=tenant)["cost"]["usd"]
    expect(page.get_by_text(f"${cost:,.2f}", exact=True)).to_be_visible()
