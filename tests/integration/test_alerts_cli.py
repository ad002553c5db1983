"""``agentdash alerts``: the backtest's JSON, ``run --once`` from cron, silences, notifiers.

A real embedded store with planted incidents, real webhooks on loopback (http.server
threads), a real SMTP server (aiosmtpd) and, for processes racing, a real Redis.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from pipelines.sources.local import LocalSource
from tests.alerting import AGENTS, Planted, Receiver, planted, receiving, reply
from tests.conftest import free_port, wait_until

FIVE = timedelta(minutes=5)


def rules_toml(*tables: str, notifiers: dict[str, str] | None = None) -> str:
    text = "\n".join(tables)
    for name, url in (notifiers or {}).items():
        text += f'\n[notifiers.{name}]\nkind = "webhook"\nurl = "{url}"\nretries = 3\n'
    return text


ERRORS = """
[[alerts]]
name = "errors"
metric = "error_rate"
over = "5m"
every = "5m"
condition = "> 0.5"
group_by = "agent"
"""
SLOW = """
[[alerts]]
name = "slow"
metric = "latency_p95"
over = "5m"
every = "5m"
condition = "> 4000"
agents = ["billing-*"]
"""


@pytest.fixture
def history(tmp_path: Path) -> Planted:
    incidents = planted()
    store = LocalSource(tmp_path / "store.db")
    store.upsert("agents", AGENTS)
    store.upsert("messages", incidents.messages)
    store.close()
    return incidents


@pytest.fixture
def env(clean_env: pytest.MonkeyPatch, tmp_path: Path, history: Planted) -> pytest.MonkeyPatch:
    clean_env.setenv("AGENTDASH_SOURCE", "local")
    clean_env.setenv("AGENTDASH_LOCAL_PATH", str(tmp_path / "store.db"))
    return clean_env


def configure(env: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    config = tmp_path / "agentdash.toml"
    config.write_text(text)
    env.setenv("AGENTDASH_CONFIG", str(config))


def test_the_backtest_prints_the_planted_incidents_as_json(
    env: pytest.MonkeyPatch, tmp_path: Path, history: Planted, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(env, tmp_path, rules_toml(ERRORS, SLOW))
    assert main(["alerts", "backtest", "--window", "12h", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    by_group = {(entry["name"], entry["group"]): entry for entry in printed["rules"]}
    assert set(by_group) == {
        ("errors", "a-sup1"),
        ("errors", "a-sup2"),
        ("errors", "a-bill"),
        ("slow", None),
    }
    assert by_group[("errors", "a-sup1")] == {
        "name": "errors",
        "group": "a-sup1",
        "firings": [
            {
                "start": (history.error_start + FIVE).isoformat(),
                "end": (history.error_end + FIVE).isoformat(),
                "peak": 1.0,
            }
        ],
        "notifications": 2,
    }
    assert by_group[("errors", "a-sup2")]["firings"] == []
    assert by_group[("errors", "a-sup2")]["notifications"] == 0
    assert by_group[("slow", None)]["firings"] == [
        {
            "start": (history.slow_start + FIVE).isoformat(),
            "end": (history.slow_end + FIVE).isoformat(),
            "peak": 6000.0,
        }
    ]
    assert datetime.fromisoformat(by_group[("slow", None)]["firings"][0]["start"]).utcoffset() == (
        timedelta(0)
    )


def test_the_backtest_table_says_how_often_each_rule_fired(
    env: pytest.MonkeyPatch, tmp_path: Path, history: Planted, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(env, tmp_path, rules_toml(ERRORS, SLOW))
    assert main(["alerts", "backtest", "--window", "12h", "--rule", "slow"]) == 0
    out = capsys.readouterr().out
    assert "slow: latency_p95 > 4000 over 5m every 5m, for 0: 1 firings, 2 notifications" in out
    assert f"{history.slow_start + FIVE:%Y-%m-%d %H:%M:%S} to " in out
    assert "errors" not in out


@pytest.mark.parametrize(
    ("table", "says"),
    [
        (ERRORS.replace("error_rate", "errors_per_hour"), "'errors' metric 'errors_per_hour'"),
        (ERRORS.replace('group_by = "agent"', 'notify = ["pager"]'), "'errors' notify: 'pager'"),
        (ERRORS.replace('over = "5m"', 'over = "1m"'), "'errors': its window over = '1m'"),
    ],
)
def test_a_rule_that_cannot_work_stops_the_command_with_exit_2(
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    table: str,
    says: str,
) -> None:
    configure(env, tmp_path, table)
    # (serve on an address it would refuse anyway: a regression cannot leave it serving)
    serve = ["serve", "--address", "0.0.0.0"]
    for command in (["alerts", "run", "--once"], ["alerts", "backtest"], serve):
        assert main(command) == 2
        assert says in capsys.readouterr().err


def test_an_unknown_rule_to_backtest_is_refused(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(env, tmp_path, rules_toml(ERRORS))
    assert main(["alerts", "backtest", "--rule", "nope"]) == 2
    assert "--rule 'nope' is not a rule; the rules: errors" in capsys.readouterr().err


# -- run --once ----------------------------------------------------------------------------

NOW_ERRORS = """
[[alerts]]
name = "failing now"
metric = "error_rate"
over = "15m"
every = "5m"
condition = "> 0.5"
group_by = "agent"
notify = {notify}
"""


def failing(tmp_path: Path, status: str = "error") -> None:
    """Every reply of ``support-2`` these 20 minutes has ``status`` (ok: the incident is over),
    once a minute at half past the minute as in the planted history (whose replies of the
    same times are replaced)."""
    now = datetime.now(UTC)
    minute = now.replace(second=30, microsecond=0)
    if minute > now:
        minute -= timedelta(minutes=1)
    store = LocalSource(tmp_path / "store.db")
    store.upsert(
        "messages", [reply("a-sup2", minute - timedelta(minutes=m), status) for m in range(20)]
    )
    store.close()


def run_once(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["alerts", "run", "--once"]) == 0
    return capsys.readouterr().out


def test_two_runs_from_cron_notify_once_per_incident_and_once_when_it_ends(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiving() as hook:
        configure(
            env,
            tmp_path,
            rules_toml(NOW_ERRORS.format(notify='["hook"]'), notifiers={"hook": hook.url}),
        )
        assert "firing" not in run_once(capsys)  # the planted history is over
        failing(tmp_path)
        out = run_once(capsys)
        assert "firing: failing now [a-sup2]" in out
        assert f"alert state: {tmp_path / 'store-alerts.db'}" in out
        run_once(capsys)
        assert hook.states() == [("failing now", "a-sup2", "firing")]
        failing(tmp_path, "ok")
        assert "firing" not in run_once(capsys)
        run_once(capsys)
        assert hook.states() == [
            ("failing now", "a-sup2", "firing"),
            ("failing now", "a-sup2", "resolved"),
        ]


def test_a_notifier_that_fails_is_retried_and_the_others_still_get_theirs(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiving(500) as broken, receiving() as hook:
        configure(
            env,
            tmp_path,
            rules_toml(
                NOW_ERRORS.format(notify='["broken", "hook"]'),
                notifiers={"broken": broken.url, "hook": hook.url},
            ),
        )
        failing(tmp_path)
        out = run_once(capsys)
        assert broken.attempts == 3  # retries = 3 attempts in all
        assert hook.states() == [("failing now", "a-sup2", "firing")]
        assert "notifications: 1 sent, 1 failed" in out


def test_a_silenced_rule_keeps_its_state_and_sends_nothing(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiving() as hook:
        configure(
            env,
            tmp_path,
            rules_toml(NOW_ERRORS.format(notify='["hook"]'), notifiers={"hook": hook.url}),
        )
        assert main(["alerts", "silence", "failing now", "--for", "2h"]) == 0
        assert "silenced 'failing now' until" in capsys.readouterr().out
        failing(tmp_path)
        assert "firing: failing now [a-sup2]" in run_once(capsys)
        assert hook.bodies == []
        assert main(["alerts", "silence", "nope", "--for", "2h"]) == 2


def test_the_email_notifier_sends_through_smtp(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    port = free_port()
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        configure(
            env,
            tmp_path,
            NOW_ERRORS.format(notify='["mail"]')
            + f'\n[notifiers.mail]\nkind = "email"\nhost = "127.0.0.1"\nport = {port}\n'
            'sender = "agentdash@example.org"\nto = ["ops@example.org"]\n',
        )
        failing(tmp_path)
        run_once(capsys)
    finally:
        smtp.stop()
    (envelope,) = received
    assert envelope.rcpt_tos == ["ops@example.org"]
    mail = message_from_bytes(envelope.content)
    assert mail["Subject"].startswith("FIRING: failing now [a-sup2]: error_rate = 1")


@pytest.fixture
def racing(tmp_path: Path, history: Planted) -> Iterator[tuple[Receiver, dict[str, str]]]:
    with receiving() as hook:
        config = tmp_path / "agentdash.toml"
        config.write_text(
            rules_toml(NOW_ERRORS.format(notify='["hook"]'), notifiers={"hook": hook.url})
        )
        env = {
            "PATH": "/usr/bin:/bin",
            "AGENTDASH_SOURCE": "local",
            "AGENTDASH_LOCAL_PATH": str(tmp_path / "store.db"),
            "AGENTDASH_CONFIG": str(config),
        }
        yield hook, env


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_runs_racing_each_other_notify_once(
    racing: tuple[Receiver, dict[str, str]], tmp_path: Path, backend: str, request: Any
) -> None:
    hook, env = racing
    if backend == "redis":
        env = {**env, "AGENTDASH_REDIS_URL": request.getfixturevalue("redis_url")}
    failing(tmp_path)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "alerts", "run", "--once"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    wait_until(lambda: len(hook.bodies) >= 1, message="the firing notification")
    assert hook.states() == [("failing now", "a-sup2", "firing")]


def test_a_webhook_gets_the_headers_configured(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiving() as hook:
        configure(
            env,
            tmp_path,
            NOW_ERRORS.format(notify='["hook"]')
            + f'\n[notifiers.hook]\nkind = "webhook"\nurl = "{hook.url}"\n'
            'headers = {Authorization = "Bearer s3cret"}\n',
        )
        failing(tmp_path)
        run_once(capsys)
    assert [h["Authorization"] for h in hook.headers] == ["Bearer s3cret"]


def test_without_rules_there_is_nothing_to_evaluate(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "run", "--once"]) == 0
    assert "no alert rule is configured" in capsys.readouterr().out
    assert main(["alerts", "backtest", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"rules": []}
    assert main(["alerts", "silence", "any", "--for", "1h"]) == 2
    assert "no alert rule is configured" in capsys.readouterr().err
