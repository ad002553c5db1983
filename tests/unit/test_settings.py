"""Settings from the environment and the TOML file, and the messages that refuse bad ones."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.errors import ConfigError
from pipelines.settings import Settings, load_settings


def config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "agentdash.toml"
    path.write_text(text)
    return {"AGENTDASH_CONFIG": str(path)}


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings({})
    assert settings == Settings()
    assert settings.source == "local"
    assert settings.local_path == tmp_path / ".local" / "share" / "agentdash" / "agentdash.db"
    assert settings.redis_url is None
    assert settings.cache_ttl_seconds == 3600
    assert settings.refresh_seconds == 5.0
    assert settings.fields == {}


def test_the_process_environment_is_read_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTDASH_CACHE_TTL_SECONDS", "42")
    assert load_settings().cache_ttl_seconds == 42


def test_environment_variables(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "AGENTDASH_SOURCE": "LOCAL",
            "AGENTDASH_LOCAL_PATH": str(tmp_path / "store.db"),
            "AGENTDASH_REDIS_URL": "redis://cache:6379/2",
            "AGENTDASH_CACHE_TTL_SECONDS": "600",
            "AGENTDASH_REFRESH_SECONDS": "0.5",
            "UNRELATED": "ignored",
        }
    )
    assert settings.source == "local"
    assert settings.local_path == tmp_path / "store.db"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.cache_ttl_seconds == 600
    assert settings.refresh_seconds == 0.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1GB", 10**9), ("512MiB", 512 * 2**20), ("1.5 gb", 1_500_000_000), ("2000000", 2_000_000)],
)
def test_memory_budgets_in_the_units_people_write(raw: str, expected: int) -> None:
    assert load_settings({"AGENTDASH_MEMORY_BUDGET": raw}).memory_budget == expected


def test_rollups_serve_windows_from_seven_days_unless_told(tmp_path: Path) -> None:
    assert load_settings({}).rollup_from == timedelta(days=7)
    assert load_settings(config(tmp_path, 'rollup_from = "36h"\n')).rollup_from == timedelta(
        hours=36
    )


@pytest.mark.parametrize("url", ["redis://h:1/0", "rediss://user:pw@h:6380", "unix:///run/r.sock"])
def test_redis_url_schemes(url: str) -> None:
    assert load_settings({"AGENTDASH_REDIS_URL": url}).redis_url == url


def test_empty_environment_variables_count_as_unset(tmp_path: Path) -> None:
    env = config(tmp_path, "cache_ttl_seconds = 60\n")
    env |= {"AGENTDASH_CACHE_TTL_SECONDS": "", "AGENTDASH_REDIS_URL": "", "AGENTDASH_SOURCE": ""}
    settings = load_settings(env)
    assert (settings.cache_ttl_seconds, settings.redis_url, settings.source) == (60, None, "local")


def test_toml_file(tmp_path: Path) -> None:
    env = config(
        tmp_path,
        """
        source = "local"
        local_path = "/srv/agentdash/store.db"
        redis_url = "redis://127.0.0.1:6379/1"
        cache_ttl_seconds = 900
        refresh_seconds = 2

        [fields.messages]
        timestamp = "createdAt"
        conversation_id = "threadId"
        latency_ms = "meta.latency"

        [fields.agents]
        last_seen = "heartbeat"
        """,
    )
    settings = load_settings(env)
    assert settings.local_path == Path("/srv/agentdash/store.db")
    assert settings.redis_url == "redis://127.0.0.1:6379/1"
    assert settings.cache_ttl_seconds == 900
    assert settings.refresh_seconds == 2.0
    assert settings.fields == {
        "messages": {
            "timestamp": "createdAt",
            "conversation_id": "threadId",
            "latency_ms": "meta.latency",
        },
        "agents": {"last_seen": "heartbeat"},
    }


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    env = config(tmp_path, 'cache_ttl_seconds = 900\nrefresh_seconds = 2\nlocal_path = "a.db"\n')
    env |= {"AGENTDASH_CACHE_TTL_SECONDS": "30", "AGENTDASH_LOCAL_PATH": "b.db"}
    settings = load_settings(env)
    assert settings.cache_ttl_seconds == 30  # environment
    assert settings.local_path == Path.cwd() / "b.db"  # environment
    assert settings.refresh_seconds == 2.0  # file


def test_cosmos_settings(tmp_path: Path) -> None:
    env = config(tmp_path, 'cosmos_database = "agents-db"\ncosmos_page_size = 250\n')
    env |= {
        "AGENTDASH_SOURCE": "cosmos",
        "AGENTDASH_COSMOS_ENDPOINT": "https://acct.documents.azure.com:443/",
        "AGENTDASH_COSMOS_KEY": "c2VjcmV0",
    }
    settings = load_settings(env)
    assert settings.cosmos_page_size == 250
    assert settings.cosmos_key == "c2VjcmV0"
    assert "c2VjcmV0" not in repr(settings)


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AGENTDASH_SOURCE": "postgres"}, "AGENTDASH_SOURCE"),
        ({"AGENTDASH_REDIS_URL": "localhost:6379"}, "AGENTDASH_REDIS_URL"),
        ({"AGENTDASH_REDIS_URL": "http://cache:6379"}, "AGENTDASH_REDIS_URL"),
        ({"AGENTDASH_CACHE_TTL_SECONDS": "ten"}, "AGENTDASH_CACHE_TTL_SECONDS"),
        ({"AGENTDASH_CACHE_TTL_SECONDS": "0"}, "AGENTDASH_CACHE_TTL_SECONDS"),
        ({"AGENTDASH_CACHE_TTL_SECONDS": "-5"}, "AGENTDASH_CACHE_TTL_SECONDS"),
        ({"AGENTDASH_CACHE_TTL_SECONDS": "1.5"}, "AGENTDASH_CACHE_TTL_SECONDS"),
        ({"AGENTDASH_REFRESH_SECONDS": "soon"}, "AGENTDASH_REFRESH_SECONDS"),
        ({"AGENTDASH_REFRESH_SECONDS": "0"}, "AGENTDASH_REFRESH_SECONDS"),
        ({"AGENTDASH_REFRESH_SECONDS": "-1"}, "AGENTDASH_REFRESH_SECONDS"),
        ({"AGENTDASH_REFRESH_SECONDS": "nan"}, "AGENTDASH_REFRESH_SECONDS"),
        ({"AGENTDASH_REFRESH_SECONDS": "inf"}, "AGENTDASH_REFRESH_SECONDS"),
        ({"AGENTDASH_COSMOS_PAGE_SIZE": "many"}, "AGENTDASH_COSMOS_PAGE_SIZE"),
        ({"AGENTDASH_SOURCE": "cosmos"}, "AGENTDASH_COSMOS_ENDPOINT"),
        (
            {"AGENTDASH_SOURCE": "cosmos", "AGENTDASH_COSMOS_ENDPOINT": "https://a.example/"},
            "AGENTDASH_COSMOS_DATABASE",
        ),
        (
            {
                "AGENTDASH_SOURCE": "cosmos",
                "AGENTDASH_COSMOS_ENDPOINT": "acct.documents.azure.com",
                "AGENTDASH_COSMOS_DATABASE": "db",
            },
            "AGENTDASH_COSMOS_ENDPOINT",
        ),
        ({"AGENTDASH_CONFIG": "/nonexistent/agentdash.toml"}, "AGENTDASH_CONFIG"),
        ({"AGENTDASH_ROLLUP_FROM": "a week"}, "AGENTDASH_ROLLUP_FROM"),
        ({"AGENTDASH_ROLLUP_FROM": "-7d"}, "AGENTDASH_ROLLUP_FROM"),
        ({"AGENTDASH_MEMORY_BUDGET": "plenty"}, "AGENTDASH_MEMORY_BUDGET"),
        ({"AGENTDASH_MEMORY_BUDGET": "0GB"}, "AGENTDASH_MEMORY_BUDGET"),
    ],
)
def test_wrong_environment_values_are_refused_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert str(info.value).startswith(variable) or variable in str(info.value)


@pytest.mark.parametrize(
    ("text", "variable"),
    [
        ('source = "mysql"', "AGENTDASH_SOURCE"),
        ('redis_url = "127.0.0.1:6379"', "AGENTDASH_REDIS_URL"),
        ("redis_url = 6379", "AGENTDASH_REDIS_URL"),
        ('cache_ttl_seconds = "an hour"', "AGENTDASH_CACHE_TTL_SECONDS"),
        ("cache_ttl_seconds = 0", "AGENTDASH_CACHE_TTL_SECONDS"),
        ("cache_ttl_seconds = 1.5", "AGENTDASH_CACHE_TTL_SECONDS"),
        ("cache_ttl_seconds = true", "AGENTDASH_CACHE_TTL_SECONDS"),
        ("refresh_seconds = -2.5", "AGENTDASH_REFRESH_SECONDS"),
        ("refresh_seconds = nan", "AGENTDASH_REFRESH_SECONDS"),
        ("refresh_seconds = inf", "AGENTDASH_REFRESH_SECONDS"),
        ("refresh_seconds = [1]", "AGENTDASH_REFRESH_SECONDS"),
        ("source = ", "AGENTDASH_CONFIG"),  # not TOML
        ("refresh_second = 1", "AGENTDASH_CONFIG"),  # a typo
        ("[cosmos]\nendpoint = 'https://a.example'", "AGENTDASH_CONFIG"),
        ('fields = "timestamp"', "AGENTDASH_CONFIG"),
        ('[fields.tools]\nid = "toolId"', "AGENTDASH_CONFIG"),
        ('[fields]\nmessages = "createdAt"', "AGENTDASH_CONFIG"),
        ('[fields.messages]\ncreated = "createdAt"', "AGENTDASH_CONFIG"),
        ('[fields.messages]\ntimestamp = ""', "AGENTDASH_CONFIG"),
        ("[fields.messages]\ntimestamp = 5", "AGENTDASH_CONFIG"),
        ("rollup_from = 7", "AGENTDASH_ROLLUP_FROM"),
        ("memory_budget = true", "AGENTDASH_MEMORY_BUDGET"),
    ],
)
def test_wrong_file_values_are_refused_naming_the_setting(
    tmp_path: Path, text: str, variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(config(tmp_path, text + "\n"))


def test_refusals_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not one of local, cosmos"):
        load_settings({"AGENTDASH_SOURCE": "postgres"})
    with pytest.raises(ConfigError, match="must start with redis://, rediss:// or unix://"):
        load_settings({"AGENTDASH_REDIS_URL": "localhost"})
    with pytest.raises(ConfigError, match="must be greater than 0"):
        load_settings({"AGENTDASH_CACHE_TTL_SECONDS": "0"})
    with pytest.raises(ConfigError, match="give a positive number"):
        load_settings({"AGENTDASH_REFRESH_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="no such file"):
        load_settings({"AGENTDASH_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="'refresh_second' is not a setting; did you mean"):
        load_settings(config(tmp_path, "refresh_second = 1\n"))
    with pytest.raises(ConfigError, match=r"'created' is not a column; use one of \['id', "):
        load_settings(config(tmp_path, '[fields.messages]\ncreated = "createdAt"\n'))


def test_the_default_store_is_in_the_users_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert load_settings({}).local_path == tmp_path / "data" / "agentdash" / "agentdash.db"
    # The XDG spec has a relative value ignored: it would name a folder per working folder.
    monkeypatch.setenv("XDG_DATA_HOME", "data")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings({}).local_path == tmp_path / ".local/share/agentdash/agentdash.db"


@pytest.mark.parametrize("variable", ["environment", "file"])
def test_a_relative_store_path_is_resolved_once_against_the_working_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    monkeypatch.chdir(tmp_path / "first")
    if variable == "environment":
        env = {"AGENTDASH_LOCAL_PATH": "stores/../store.db"}
    else:
        env = config(tmp_path, 'local_path = "store.db"\n')

    settings = load_settings(env)
    monkeypatch.chdir(tmp_path / "second")

    assert settings.local_path == tmp_path / "first" / "store.db"
    assert load_settings(env).local_path == tmp_path / "second" / "store.db"


def test_a_store_path_may_start_at_the_home_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {"AGENTDASH_LOCAL_PATH": "~/stores/agentdash.db"}
    assert load_settings(env).local_path == tmp_path / "stores" / "agentdash.db"
