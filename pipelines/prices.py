"""What messages cost: model prices from a shipped table, the file's overrides, and aliases.

Prices come from ``genai-prices`` (Pydantic's maintained table of LLM prices, shipped
inside the package and read offline: nothing is fetched at run time), over which
``[prices]`` of the TOML file overrides or adds models, in USD per million tokens, and
``[model_aliases]`` names the model behind a deployment name.  Prices are today's, for
every message of a window.

The cost of a message is::

    (tokens_in - tokens_cached_in) * input + tokens_cached_in * cached_input
        + tokens_out * output          (prices per token; missing counts are 0)

A message whose model has no price has no cost (NaN, never 0); one without a model has
none either, and is not counted as unpriced.  Costs are computed per distinct model,
then for all messages at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version

import numpy as np
import pandas as pd

from pipelines.settings import Settings

PER = 1_000_000
"""Prices are given per this many tokens."""
_PROBE = 1000  # tokens priced to read a unit price: well below any tier of a long prompt


@dataclass(frozen=True)
class Price:
    """USD per million tokens: input, output, and cached input."""

    input: float
    output: float
    cached_input: float


def _listed(model: str) -> Price | None:
    """The shipped table's price of ``model``, or None when it lists none."""
    from genai_prices import Usage, calc_price

    try:
        plain = calc_price(Usage(input_tokens=_PROBE, output_tokens=_PROBE), model)
        cached = calc_price(Usage(input_tokens=_PROBE, cache_read_tokens=_PROBE), model)
    except (LookupError, ValueError):
        return None
    scale = PER / _PROBE
    return Price(
        float(plain.input_price) * scale,
        float(plain.output_price) * scale,
        float(cached.input_price) * scale,
    )


class PriceTable:
    """Prices by model name: ``[prices]`` first, then the shipped table; aliases resolved."""

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, float]] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.overrides = {
            model: Price(p["input"], p["output"], p.get("cached_input", p["input"]))
            for model, p in (overrides or {}).items()
        }
        self.aliases = dict(aliases or {})
        self._known: dict[str, Price | None] = {}
        self._lock = threading.Lock()
        #: What the costs depend on, for cache keys: the table's version and the file's.
        self.identity = json.dumps(
            {
                "table": version("genai-prices"),
                "prices": {m: vars(p) for m, p in sorted(self.overrides.items())},
                "aliases": dict(sorted(self.aliases.items())),
            },
            sort_keys=True,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> PriceTable:
        return cls(settings.prices, settings.model_aliases)

    def price(self, model: str) -> Price | None:
        """The price of ``model`` (a deployment name is its alias's model), or None."""
        with self._lock:
            if model not in self._known:
                name = self.aliases.get(model, model)
                self._known[model] = self.overrides.get(name) or _listed(name)
            return self._known[model]

    def costs(self, messages: pd.DataFrame) -> pd.Series:
        """The cost in USD of each message (NaN without a model or a price)."""
        codes, models = pd.factorize(messages["model"])
        prices = [self.price(str(model)) for model in models]
        # One row per distinct model, and a last one (NaN) for messages without a model.
        unit = (
            np.array(
                [[p.input, p.cached_input, p.output] if p else [np.nan] * 3 for p in prices]
                + [[np.nan] * 3],
                dtype="float64",
            )[codes]
            / PER
        )
        tokens_in, cached, tokens_out = (
            messages[c].to_numpy(dtype="float64", na_value=0.0)
            for c in ("tokens_in", "tokens_cached_in", "tokens_out")
        )
        cost = (tokens_in - cached) * unit[:, 0] + cached * unit[:, 1] + tokens_out * unit[:, 2]
        return pd.Series(cost, index=messages.index, name="cost_usd")

    def priced(self, messages: pd.DataFrame) -> pd.DataFrame:
        """``messages`` with their ``cost_usd``."""
        return messages.assign(cost_usd=self.costs(messages))
