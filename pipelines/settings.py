"""Settings from ``AGENTDASH_*`` environment variables and an optional TOML file.

Precedence: environment variable > TOML file (``AGENTDASH_CONFIG``) > default.
The TOML file may hold the same keys in lower case without the prefix
(``source = "cosmos"``, ``cache_ttl_seconds = 600``) and the per-container
field mapping::

    [fields.messages]
    timestamp = "createdAt"
    conversation_id = "threadId"

and, for the shape of the messages and their cost::

    [containers.messages]   # pipelines.shapes: preset, layout, messages_path,
    preset = "langchain"    # default_agent, where_type
    [prices]                # USD per million tokens, over the shipped price table
    "acme-large" = {input = 1.0, output = 2.0, cached_input = 0.25}
    [model_aliases]         # deployment name -> model
    "prod-gpt4o" = "gpt-4o-2024-08-06"
    [dimensions]            # more filters and breakdowns: column = source field
    tenant = "tenantId"

and, for sign-in with Entra ID, the groups whose members are a team::

    [teams]
    "6f2c...-group-object-id" = "alpha"

and alert rules, their notifiers and scheduled reports (:mod:`pipelines.alerts`,
:mod:`pipelines.schedules`), here or in a file named by ``AGENTDASH_ALERTS``::

    [[alerts]]
    name = "support p95 high"
    metric = "latency_p95"
    over = "15m"
    every = "5m"
    condition = "> 4000"
    [notifiers.ops-webhook]
    kind = "webhook"
    url = "https://..."
    [[schedules]]
    cron = "0 7 * * MON"
    report = {window = "7d", out = "reports/agents-%Y-%m-%d.html"}

Every key is checked: one that means nothing is refused, naming the closest that does.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.alerts.rules import NotifierConfig, Rule
    from pipelines.schedules import Schedule

PREFIX = "AGENTDASH_"
SOURCES = ("local", "cosmos")
AUTH_MODES = ("none", "basic", "oauth", "jwt")
LOG_FORMATS = ("text", "json")


def _default_local_path() -> Path:
    """``$XDG_DATA_HOME/agentdash/agentdash.db``, by default under ``~/.local/share``.

    One store per user wherever a command runs, not one per working folder.
    """
    data_home = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data_home):  # the XDG spec has relative values ignored
        data_home = str(Path.home() / ".local" / "share")
    return Path(data_home) / "agentdash" / "agentdash.db"


@dataclass(frozen=True)
class Settings:
    """Everything agentdash needs to know about the outside world: the source and cache of
    the pipelines, and the sign-in, edge and logs of the server."""

    source: str = "local"
    local_path: Path = field(default_factory=_default_local_path)
    redis_url: str | None = None
    cache_ttl_seconds: int = 3600
    refresh_seconds: float = 5.0
    cosmos_endpoint: str | None = None
    cosmos_key: str | None = field(default=None, repr=False)
    cosmos_database: str | None = None
    cosmos_agents_container: str = "agents"
    cosmos_messages_container: str = "messages"
    cosmos_page_size: int = 1000
    fields: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    containers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    model_aliases: Mapping[str, str] = field(default_factory=dict)
    dimensions: Mapping[str, str] = field(default_factory=dict)

    auth: str = "none"
    users_file: Path | None = None
    cookie_secret: str | None = field(default=None, repr=False)
    oauth_key: str | None = None
    oauth_secret: str | None = field(default=None, repr=False)
    oauth_extra_params: Mapping[str, str] = field(default_factory=dict)
    oauth_authority: str = "https://login.microsoftonline.com/{tenant}/v2.0"
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: Path | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    teams: Mapping[str, str] = field(default_factory=dict)
    rate_limit: str = "120/minute"
    allowed_origins: tuple[str, ...] = ()
    log_format: str = "text"
    #: Windows at least this long are answered from hourly rollups (see pipelines.rollups).
    rollup_from: timedelta = timedelta(days=7)
    #: Bytes of live frames one process holds at most (least recently read dropped first).
    memory_budget: int = 1_000_000_000

    alerts: tuple[Rule, ...] = ()
    notifiers: Mapping[str, NotifierConfig] = field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()

    @property
    def messages_container(self) -> str:
        """The name of the messages' container: in Cosmos DB, or ``messages``."""
        return self.cosmos_messages_container if self.source == "cosmos" else "messages"


def _positive_number(name: str, raw: Any, kind: type[int] | type[float]) -> Any:
    try:
        if isinstance(raw, bool):  # TOML true/false: int(True) would read as 1
            raise TypeError
        value = kind(raw)
        # Not nan or inf, and no float silently cut to an int (TOML 1.5 for an int).
        if not math.isfinite(value) or (isinstance(raw, float) and value != raw):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(
            f"{PREFIX}{name.upper()}={raw!r} is not a {kind.__name__}: give a positive number"
        ) from None
    if value <= 0:
        raise ConfigError(f"{PREFIX}{name.upper()}={raw!r} must be greater than 0")
    return value


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})


def _size(name: str, raw: Any) -> int:
    """Bytes from ``1GB``, ``512MiB`` or a number of bytes."""
    match = _SIZE.fullmatch(str(raw)) if not isinstance(raw, bool) else None
    if match is None or float(match[1]) <= 0:
        raise ConfigError(
            f"{PREFIX}{name.upper()}={raw!r} is not a size: give e.g. 1GB, 512MB or 2GiB"
        )
    return int(float(match[1]) * _UNITS[(match[2] or "").lower()])


def _duration(name: str, raw: Any) -> timedelta:
    """A duration such as ``7d``, ``36h`` or ``90m`` (pandas' notation)."""
    import pandas as pd

    try:
        # "7d": days in pandas' notation (which spells them "D").
        value = pd.Timedelta(re.sub(r"(\d)\s*d\b", r"\1D", str(raw))).to_pytimedelta()
    except ValueError:
        value = None
    if value is None or value <= timedelta(0) or isinstance(raw, bool | int | float):
        raise ConfigError(
            f"{PREFIX}{name.upper()}={raw!r} is not a duration: give e.g. 7d, 36h or 90m"
        )
    return value


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{PREFIX}CONFIG={path!r}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{PREFIX}CONFIG={path!r} is not valid TOML: {exc}") from None


def _check_fields(raw: Any) -> dict[str, dict[str, str]]:
    # Imported here: schema imports settings' neighbours, not the reverse.
    from pipelines.schema import CANONICAL_FIELDS

    if not isinstance(raw, dict):
        raise ConfigError(f"{PREFIX}CONFIG: [fields] must be a table of containers")
    checked: dict[str, dict[str, str]] = {}
    for container, mapping in raw.items():
        if container not in CANONICAL_FIELDS:
            raise ConfigError(
                f"{PREFIX}CONFIG: [fields.{container}] is not a container; "
                f"use one of {sorted(CANONICAL_FIELDS)}"
            )
        if not isinstance(mapping, dict):
            raise ConfigError(f"{PREFIX}CONFIG: [fields.{container}] must be a table")
        for column, source_field in mapping.items():
            if column not in CANONICAL_FIELDS[container]:
                raise ConfigError(
                    f"{PREFIX}CONFIG: [fields.{container}] {column!r} is not a column; "
                    f"use one of {list(CANONICAL_FIELDS[container])}"
                )
            if not isinstance(source_field, str) or not source_field:
                raise ConfigError(
                    f"{PREFIX}CONFIG: [fields.{container}] {column} must be a field name"
                )
        checked[container] = dict(mapping)
    return checked


def _check_teams(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in raw.items()
    ):
        raise ConfigError(
            f'{PREFIX}CONFIG: [teams] must map group ids to team names: "id" = "team"'
        )
    return dict(raw)


def _check_extra_params(raw: Any) -> dict[str, str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(
            f"{PREFIX}OAUTH_EXTRA_PARAMS must be a JSON object of texts, "
            """e.g. '{"tenant": "<directory (tenant) id>"}'"""
        )
    return dict(raw)


def _check_origins(raw: Any) -> tuple[str, ...]:
    origins = tuple(o.strip().lower() for o in str(raw).split(",") if o.strip())
    for origin in origins:
        host, _, port = origin.rpartition(":")
        if "*" in origin or "/" in origin or not host or not port.isdigit():
            raise ConfigError(
                f"{PREFIX}ALLOWED_ORIGINS: {origin!r} is not host:port (such as "
                "dash.example.com:443); wildcards are refused"
            )
    return origins


_RATE = re.compile(r"\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*", re.IGNORECASE)


def _check_rate_limit(raw: Any) -> str:
    # The grammar of the `limits` library, which the server hands it to.
    if not all(_RATE.fullmatch(part) for part in re.split("[,;]", str(raw))):
        raise ConfigError(
            f"{PREFIX}RATE_LIMIT={raw!r} is not a rate: give e.g. 120/minute or 10/second"
        )
    return str(raw)


def _refuse_unknown(keys: Any, known: list[str], where: str, kind: str) -> None:
    """Refuse a key that means nothing there, naming the closest that does: a typo would
    otherwise pass unseen."""
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{PREFIX}CONFIG: {where}{key!r} is not {kind}; {hint}use one of {', '.join(known)}"
            )


def _check_keys(file_values: Mapping[str, Any]) -> None:
    """Refuse a key of the file that is no setting."""
    _refuse_unknown(file_values, [f.name for f in fields(Settings)], "", "a setting")


def _table(raw: Any, name: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{PREFIX}CONFIG: [{name}] must be a table")
    return raw


def _text(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"{PREFIX}CONFIG: {where} must be a non-empty string")
    return raw


_SECTION_KEYS = ["preset", "layout", "messages_path", "default_agent", "where_type"]


def _check_containers(raw: Any) -> dict[str, dict[str, str]]:
    """``[containers.messages]``: the shape of the messages (see :mod:`pipelines.shapes`)."""
    from pipelines.presets import PRESETS
    from pipelines.query import check_field
    from pipelines.shapes import LAYOUTS

    checked: dict[str, dict[str, str]] = {}
    for container, section in _table(raw, "containers").items():
        _refuse_unknown([container], ["messages"], "[containers.", "a container with a shape")
        where = f"[containers.{container}]"
        _refuse_unknown(
            _table(section, f"containers.{container}"), _SECTION_KEYS, where + " ", "a key"
        )
        values = {key: _text(value, f"{where} {key}") for key, value in section.items()}
        if "preset" in values:
            _refuse_unknown([values["preset"]], list(PRESETS), where + " preset ", "a preset")
        if "layout" in values:
            _refuse_unknown([values["layout"]], list(LAYOUTS), where + " layout ", "a layout")
        if "messages_path" in values:
            try:
                check_field(values["messages_path"])
            except ValueError as exc:
                raise ConfigError(f"{PREFIX}CONFIG: {where} messages_path: {exc}") from None
        checked[container] = values
    return checked


_PRICE_KEYS = ["input", "output", "cached_input"]


def _check_prices(raw: Any) -> dict[str, dict[str, float]]:
    """``[prices]``: USD per million tokens of models, over the shipped table."""
    checked: dict[str, dict[str, float]] = {}
    for model, price in _table(raw, "prices").items():
        where = f"[prices] {model!r}"
        if not isinstance(price, dict):
            raise ConfigError(
                f"{PREFIX}CONFIG: {where} must be a table such as "
                "{input = 1.0, output = 2.0, cached_input = 0.25} (USD per million tokens)"
            )
        _refuse_unknown(price, _PRICE_KEYS, where + " ", "a price")
        for key in ("input", "output"):
            if key not in price:
                raise ConfigError(f"{PREFIX}CONFIG: {where} needs {key} (USD per million tokens)")
        values: dict[str, float] = {}
        for key, value in price.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{PREFIX}CONFIG: {where} {key} must be a number")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{PREFIX}CONFIG: {where} {key} must be 0 or more")
            values[key] = float(value)
        checked[model] = values
    return checked


def _check_aliases(raw: Any) -> dict[str, str]:
    """``[model_aliases]``: deployment names to models."""
    return {
        alias: _text(model, f"[model_aliases] {alias!r}")
        for alias, model in _table(raw, "model_aliases").items()
    }


def _check_dimensions(raw: Any) -> dict[str, str]:
    """``[dimensions]``: more columns of the messages, each read from a source field."""
    from pipelines.query import FIELD_PATTERN
    from pipelines.schema import CANONICAL_FIELDS, DTYPES

    taken = {*DTYPES["messages"], *CANONICAL_FIELDS["messages"]}
    checked: dict[str, str] = {}
    for name, source_field in _table(raw, "dimensions").items():
        if not name.isidentifier() or not name.islower() or name in taken:
            raise ConfigError(
                f"{PREFIX}CONFIG: [dimensions] {name!r} must be a new column name in lower "
                f"case (letters, digits, '_'), not one of {', '.join(sorted(taken))}"
            )
        field_name = _text(source_field, f"[dimensions] {name}")
        if not FIELD_PATTERN.fullmatch(field_name):
            raise ConfigError(
                f"{PREFIX}CONFIG: [dimensions] {name} = {field_name!r} is not a field name: "
                "letters, digits and '_', '.' between the parts of a nested field"
            )
        checked[name] = field_name
    return checked


_ALERTS_KEYS = ["alerts", "notifiers", "schedules"]


def _alerting(
    file_values: Mapping[str, Any], alerts_path: str | None, dimensions: Mapping[str, str]
) -> dict[str, Any]:
    """``[[alerts]]``, ``[notifiers.NAME]`` and ``[[schedules]]`` of the settings file and of
    the file named by ``AGENTDASH_ALERTS`` (which holds only those), checked."""
    from pipelines.alerts.rules import check_notifiers, check_rules
    from pipelines.schedules import check_schedules

    extra: dict[str, Any] = {}
    if alerts_path:
        try:
            with open(alerts_path, "rb") as fh:
                extra = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{PREFIX}ALERTS={alerts_path!r}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{PREFIX}ALERTS={alerts_path!r} is not valid TOML: {exc}") from None
        _refuse_unknown(extra, _ALERTS_KEYS, f"{PREFIX}ALERTS file: ", "an alerting table")
    raw_notifiers = _table(file_values.get("notifiers", {}), "notifiers")
    for name in _table(extra.get("notifiers", {}), "notifiers"):
        if name in raw_notifiers:
            raise ConfigError(
                f"[notifiers.{name}] is in both {PREFIX}CONFIG and {PREFIX}ALERTS: keep one"
            )
    notifiers = check_notifiers({**raw_notifiers, **extra.get("notifiers", {})})
    entries = [*file_values.get("alerts", []), *extra.get("alerts", [])]
    if not isinstance(file_values.get("alerts", []), list) or not isinstance(
        extra.get("alerts", []), list
    ):
        raise ConfigError(f"{PREFIX}CONFIG: alerts must be an array of tables: [[alerts]]")
    schedules = [*file_values.get("schedules", []), *extra.get("schedules", [])]
    return {
        "alerts": check_rules(entries, notifiers, dimensions),
        "notifiers": notifiers,
        "schedules": check_schedules(schedules, notifiers),
    }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings, refusing a wrong value with a message naming the variable."""
    env = os.environ if env is None else env
    config_path = env.get(f"{PREFIX}CONFIG")
    file_values = _read_toml(config_path) if config_path else {}
    _check_keys(file_values)

    def get(name: str) -> Any:
        value = env.get(f"{PREFIX}{name.upper()}")
        if value is None or value == "":
            return file_values.get(name)
        return value

    source = str(get("source") or "local").lower()
    if source not in SOURCES:
        raise ConfigError(f"{PREFIX}SOURCE={source!r} is not one of {', '.join(SOURCES)}")
    values: dict[str, Any] = {"source": source}
    if local_path := get("local_path"):
        # Resolved once: a command that changes folder later still reads the same store.
        values["local_path"] = Path(os.path.abspath(os.path.expanduser(str(local_path))))
    if redis_url := get("redis_url"):
        if not str(redis_url).startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"{PREFIX}REDIS_URL={redis_url!r} must start with redis://, rediss:// or unix://"
            )
        values["redis_url"] = str(redis_url)
    for name, kind in (
        ("cache_ttl_seconds", int),
        ("refresh_seconds", float),
        ("cosmos_page_size", int),
    ):
        if (raw := get(name)) is not None:
            values[name] = _positive_number(name, raw, kind)
    for name in (
        "cosmos_endpoint",
        "cosmos_key",
        "cosmos_database",
        "cosmos_agents_container",
        "cosmos_messages_container",
        "cookie_secret",
        "oauth_key",
        "oauth_secret",
        "oauth_authority",
        "jwt_secret",
        "jwt_audience",
        "jwt_issuer",
    ):
        if raw := get(name):
            values[name] = str(raw)
    if source == "cosmos":
        for name in ("cosmos_endpoint", "cosmos_database"):
            if not values.get(name):
                raise ConfigError(
                    f"{PREFIX}SOURCE=cosmos needs {PREFIX}{name.upper()}: set it in the "
                    f"environment or in the {PREFIX}CONFIG file"
                )
        endpoint = values["cosmos_endpoint"]
        if not endpoint.startswith(("https://", "http://")):
            raise ConfigError(
                f"{PREFIX}COSMOS_ENDPOINT={endpoint!r} must be a URL such as "
                "https://<account>.documents.azure.com:443/"
            )
    mapped = _check_fields(file_values.get("fields", {}))
    containers = _check_containers(file_values.get("containers", {}))
    if "messages" in containers:
        from pipelines.presets import PRESETS

        # A preset maps its fields; the file's own [fields.messages] still win.
        preset = PRESETS[containers["messages"].get("preset", "agentdash")]
        mapped["messages"] = {**preset.fields, **mapped.get("messages", {})}
    values["fields"] = mapped
    values["containers"] = containers
    values["prices"] = _check_prices(file_values.get("prices", {}))
    values["model_aliases"] = _check_aliases(file_values.get("model_aliases", {}))
    values["dimensions"] = _check_dimensions(file_values.get("dimensions", {}))
    values["teams"] = _check_teams(file_values.get("teams", {}))
    values.update(_alerting(file_values, env.get(f"{PREFIX}ALERTS"), values["dimensions"]))
    for name, choices in (("auth", AUTH_MODES), ("log_format", LOG_FORMATS)):
        if (raw := get(name)) is not None:
            if str(raw).lower() not in choices:
                raise ConfigError(
                    f"{PREFIX}{name.upper()}={raw!r} is not one of {', '.join(choices)}"
                )
            values[name] = str(raw).lower()
    for name in ("users_file", "jwt_public_key"):
        if raw := get(name):
            values[name] = Path(os.path.abspath(os.path.expanduser(str(raw))))
    if (raw := get("oauth_extra_params")) is not None:
        values["oauth_extra_params"] = _check_extra_params(raw)
    if (raw := get("rate_limit")) is not None:
        values["rate_limit"] = _check_rate_limit(raw)
    if (raw := get("allowed_origins")) is not None:
        values["allowed_origins"] = _check_origins(raw)
    if (raw := get("rollup_from")) is not None:
        values["rollup_from"] = _duration("rollup_from", raw)
    if (raw := get("memory_budget")) is not None:
        values["memory_budget"] = _size("memory_budget", raw)
    return Settings(**values)
