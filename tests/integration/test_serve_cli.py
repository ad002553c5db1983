"""``agentdash serve`` as a supervisor sees it: one PID to stop, a port it frees or refuses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import wait_until
from tests.ui.conftest import ServedApp, make_served_app


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> ServedApp:
    """A small demo store; each test serves it with a process and a log of its own."""
    return make_served_app(tmp_path_factory.mktemp("serve"), messages=2000, days=8)


@pytest.fixture
def app(seeded: ServedApp, tmp_path: Path) -> Iterator[ServedApp]:
    app = ServedApp(tmp_path, env=seeded.env)
    yield app
    app.stop()  # only if a test left it running


def port_is_free(port: int) -> bool:
    try:
        with socket.create_server(("127.0.0.1", port)):
            return True
    except OSError:
        return False


def remaining(session: int) -> list[psutil.Process]:
    """The live processes of a session; a zombie holds no port and runs nothing."""
    found = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


@pytest.mark.parametrize(
    ("num_procs", "sig"),
    [(1, signal.SIGTERM), (1, signal.SIGINT), (2, signal.SIGTERM), (2, signal.SIGINT)],
    ids=["one-process-SIGTERM", "one-process-SIGINT", "two-workers-SIGTERM", "two-workers-SIGINT"],
)
def test_a_signal_to_the_pid_stops_every_process_and_frees_the_port(
    app: ServedApp, num_procs: int, sig: signal.Signals
) -> None:
    app.start("--num-procs", str(num_procs))
    assert app.process is not None
    pid = app.process.pid
    workers = psutil.Process(pid).children(recursive=True)
    assert len(workers) == (num_procs if num_procs > 1 else 0)

    os.kill(pid, sig)  # the PID alone, as systemd, Docker or a shell's kill do

    assert app.process.wait(timeout=60) == 0
    wait_until(lambda: not remaining(pid), timeout=30, message="every server process to end")
    assert port_is_free(app.port)
    assert f"agentdash: serving http://127.0.0.1:{app.port}/" in app.log()


def test_workers_end_with_their_parent_even_when_it_is_killed(app: ServedApp) -> None:
    app.start("--num-procs", "2")
    assert app.process is not None
    pid = app.process.pid
    assert len(psutil.Process(pid).children()) == 2

    os.kill(pid, signal.SIGKILL)

    app.process.wait(timeout=60)
    wait_until(lambda: not remaining(pid), timeout=30, message="the workers to end")
    wait_until(lambda: port_is_free(app.port), timeout=30, message="the port to be freed")


def test_a_taken_port_is_refused_in_one_line_and_nothing_claims_to_serve(
    app: ServedApp, tmp_path: Path
) -> None:
    # Options after -- go to `panel serve`: here, where it logs.
    panel_log = tmp_path / "panel.log"
    app.start("--", "--log-file", str(panel_log))

    second = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(app.port)],
        env=app.env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert second.returncode == 2
    assert second.stderr.splitlines() == [
        f"agentdash: error: port {app.port} on 127.0.0.1 is in use by another process: "
        "stop it or give another --port"
    ]
    assert "serving" not in second.stdout
    assert app.get_json("/health")[0] == 200  # the first one serves on
    assert f"Bokeh app running at: http://127.0.0.1:{app.port}/" in panel_log.read_text()


def test_the_store_served_is_named_before_serving(app: ServedApp, seeded: ServedApp) -> None:
    app.start()
    log = app.log()
    assert log.index(f"store: {seeded.store}") < log.index("agentdash: serving")
