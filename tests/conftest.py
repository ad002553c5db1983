"""Fixtures shared by the test suite: real services on loopback, throwaway stores."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from playwright.sync_api import expect

if TYPE_CHECKING:
    from pipelines.live import LiveFrames

# Machines here are shared and noisy: a per-example deadline would make property tests flaky.
settings.register_profile("agentdash", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("agentdash")
# Browser assertions wait for what a page should show.  Playwright's default of 5 s is short
# for a page built while the machine is busy; waiting longer slows only a failing test.
# (Budgets that are the point of a test, such as refresh periods, are passed explicitly.)
expect.set_options(timeout=30_000)
# A run started in a shell's background (``bash .ci/run &``) inherits SIGINT ignored, and so
# would every process the tests start: the Ctrl-C that tests send would do nothing.  A
# handler of our own is reset to the default in each child (an ignored signal is not).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition, timeout: float = 20.0, interval: float = 0.05, message: str = "") -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message or condition}")


@contextmanager
def stored_frames(
    folder: Path, agents: list[dict[str, Any]], messages: list[dict[str, Any]]
) -> Iterator[LiveFrames]:
    """Live frames over an embedded store in ``folder`` holding ``agents`` and ``messages``,
    with a memory cache; the store is closed after the block."""
    from pipelines.cache import MemoryFrameCache
    from pipelines.live import LiveFrames
    from pipelines.sources.local import LocalSource

    store = LocalSource(folder / "store.db")
    store.upsert("agents", agents)
    store.upsert("messages", messages)
    try:
        yield LiveFrames(store, MemoryFrameCache())
    finally:
        store.close()


@contextmanager
def repeating(action: Callable[[], T], interval: float = 0.2) -> Iterator[list[T]]:
    """``action()`` every ``interval`` seconds on a thread while the block runs: its results
    (what a user would have seen meanwhile, in a test).  An exception ``action`` raised
    ends the repeats and is raised after the block."""
    values: list[T] = []
    failed: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval) and not failed:
            try:
                values.append(action())
            except Exception as exc:
                failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield values
    finally:
        stop.set()
        thread.join()
    if failed:
        raise failed[0]


class RedisServer:
    """A private ``redis-server`` on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make system-deps`")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, message="redis-server to answer PING")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    if redis_server.process is None:  # a test stopped it to simulate an outage
        redis_server.start()
    redis_server.flush()
    yield redis_server.url


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No AGENTDASH_* setting from outside the test; set what the test needs on the result."""
    for name in list(os.environ):
        if name.startswith("AGENTDASH_"):
            monkeypatch.delenv(name)
    return monkeypatch
