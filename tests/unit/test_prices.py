"""Costs from the shipped price table, the file's overrides and aliases, worked out by hand."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pandas as pd
import pytest

from pipelines import metrics
from pipelines.errors import ConfigError
from pipelines.prices import PriceTable
from pipelines.settings import load_settings

# USD per million tokens, as the table lists them: input, cached input, output.
GPT_4O = (2.50, 1.25, 10.00)
GPT_4O_MINI = (0.15, 0.075, 0.60)


def messages(*rows: tuple[str | None, int | None, int | None, int | None]) -> pd.DataFrame:
    """Messages of (model, tokens_in, tokens_cached_in, tokens_out)."""
    frame = pd.DataFrame(rows, columns=["model", "tokens_in", "tokens_cached_in", "tokens_out"])
    return frame.astype(
        {"model": "str", "tokens_in": "Int64", "tokens_cached_in": "Int64", "tokens_out": "Int64"}
    ).assign(cost_usd=math.nan)


def cost(price: tuple[float, float, float], tokens_in: int, cached: int, tokens_out: int) -> float:
    return ((tokens_in - cached) * price[0] + cached * price[1] + tokens_out * price[2]) / 1e6


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection refused: the table must be read from the package."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a price lookup tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_cost_is_tokens_times_the_tables_prices(offline: None) -> None:
    frame = messages(
        ("gpt-4o-2024-08-06", 1000, 200, 500),
        ("gpt-4o-mini-2024-07-18", 10_000, 0, 2_000),
        ("gpt-4o-mini-2024-07-18", None, None, 40),  # counts absent are 0
    )
    costs = PriceTable().costs(frame).tolist()
    assert costs == pytest.approx(
        [cost(GPT_4O, 1000, 200, 500), cost(GPT_4O_MINI, 10_000, 0, 2_000), 40 * 0.60 / 1e6]
    )
    assert costs[0] == pytest.approx((800 * 2.5 + 200 * 1.25 + 500 * 10) / 1e6)


def test_overrides_and_aliases_apply() -> None:
    table = PriceTable(
        overrides={
            "acme-large": {"input": 1.0, "output": 2.0, "cached_input": 0.25},
            "gpt-4o-2024-08-06": {"input": 5.0, "output": 15.0},  # a negotiated price
        },
        aliases={"prod-gpt4o": "gpt-4o-2024-08-06", "prod-mini": "gpt-4o-mini-2024-07-18"},
    )
    frame = messages(
        ("acme-large", 1_000_000, 400_000, 1_000_000),
        ("prod-gpt4o", 1_000_000, 0, 0),
        ("prod-mini", 0, 0, 1_000_000),
    )
    # acme: 0.6M x 1.0 + 0.4M x 0.25 + 1M x 2.0; gpt-4o overridden without a cached price
    # (cached input at the input price); the mini alias reads the table.
    assert table.costs(frame).tolist() == pytest.approx([2.7, 5.0, 0.60])


def test_unpriced_models_are_counted_and_excluded_and_no_model_is_neither() -> None:
    table = PriceTable()
    frame = table.priced(
        messages(
            ("gpt-4o-2024-08-06", 1000, 0, 0),
            ("acme-large", 1000, 0, 1000),
            ("acme-large", 5, 0, 5),
            ("made-up-model-9", 1, 0, 1),
            (None, 1000, 0, 1000),
        )
    )
    assert frame["cost_usd"].isna().tolist() == [False, True, True, True, True]
    assert metrics.unpriced_models(frame).to_dict() == {"acme-large": 2, "made-up-model-9": 1}
    assert int((frame["model"].notna() & frame["cost_usd"].isna()).sum()) == 3
    assert frame["cost_usd"].sum() == pytest.approx(1000 * 2.5 / 1e6)  # never costed as 0


def test_price_settings_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "agentdash.toml"

    def load(text: str) -> object:
        config.write_text(text)
        return load_settings({"AGENTDASH_CONFIG": str(config)})

    settings = load(
        '[prices]\n"acme-large" = {input = 1.0, output = 2, cached_input = 0.25}\n'
        '[model_aliases]\n"prod-gpt4o" = "gpt-4o-2024-08-06"\n'
    )
    assert PriceTable.from_settings(settings).price("acme-large") is not None  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="did you mean 'cached_input'"):
        load('[prices]\n"a" = {input = 1.0, output = 2.0, cached_inptu = 0.1}\n')
    with pytest.raises(ConfigError, match="needs output"):
        load('[prices]\n"a" = {input = 1.0}\n')
    with pytest.raises(ConfigError, match="must be 0 or more"):
        load('[prices]\n"a" = {input = -1.0, output = 1.0}\n')
    with pytest.raises(ConfigError, match=r"\[model_aliases\] 'x' must be a non-empty string"):
        load("[model_aliases]\nx = 3\n")
