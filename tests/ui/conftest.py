"""A served dashboard and a real Chromium that may only talk to localhost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jwt
import pytest

from app.report.chromium import FLAGS
from tests.conftest import free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
# The report renderer's flags; Playwright adds its own headless switch.
CHROMIUM_ARGS = [flag for flag in FLAGS if flag != "--headless"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make system-deps`")
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def get_json(url: str) -> tuple[int, Any]:
    """Status and JSON body of ``GET url``, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def new_message(**fields: Any) -> dict[str, Any]:
    """A message document written just now, in the demo's source field names."""
    return {
        "id": f"m-test-{uuid.uuid4().hex[:12]}",
        "conversationId": f"c-test-{uuid.uuid4().hex[:12]}",
        "agentId": "a-test",
        "role": "agent",
        "timestamp": datetime.now(UTC).isoformat(),
        "latencyMs": 1000.0,
        "tokensIn": 10,
        "tokensOut": 20,
        "status": "ok",
        "userId": "u-test",
        "content": "a message written by a test",
        **fields,
    }


@dataclass
class ServedApp:
    """An ``agentdash serve`` process on a private store and port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store(self) -> Path:
        return self.workdir / "agentdash.db"

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=300,
        )

    def start(self, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), *extra],
            env=self.env,
            stdout=open(self.workdir / "serve.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: (
                self.process is not None and (self.process.poll() is not None or _answers(self.url))
            ),
            timeout=120,
            message=f"the dashboard to answer at {self.url}",
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"agentdash serve exited: {self.log()}")

    def get_json(self, path: str) -> tuple[int, Any]:
        """Status and JSON body of ``GET path``, error statuses included."""
        return get_json(self.url + path)

    def log(self) -> str:
        return (self.workdir / "serve.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


UNLIMITED = {"AGENTDASH_RATE_LIMIT": "100000/minute"}
"""Tests poll and open pages far faster than people: only a test of the limits sets them."""


def make_served_app(workdir: Path, messages: int = 5000, days: float = 35, **env: str) -> ServedApp:
    """A served app on a fresh demo store; ``env`` adds settings (e.g. AGENTDASH_REDIS_URL)."""
    app = ServedApp(workdir)
    # Only what the caller gives: not a Redis or config file of the developer's shell.
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("AGENTDASH_REDIS_URL", "AGENTDASH_CONFIG")
    }
    app.env = {
        **inherited,
        "AGENTDASH_SOURCE": "local",
        "AGENTDASH_LOCAL_PATH": str(app.store),
        "AGENTDASH_REFRESH_SECONDS": "1",
        **UNLIMITED,
        **env,
    }
    app.command("demo", "--agents", "8", "--messages", str(messages), "--days", str(days))
    return app


@contextmanager
def serving(
    workdir: Path, messages: int = 5000, days: float = 35, **env: str
) -> Iterator[ServedApp]:
    """A served app on a fresh demo store (see :func:`make_served_app`) for the block."""
    app = make_served_app(workdir, messages, days, **env)
    app.start()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="session")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """One dashboard for the UI tests, on a small demo store refreshed every second."""
    app = make_served_app(tmp_path_factory.mktemp("served"))
    app.start()
    yield app
    app.stop()


@dataclass
class PageGuard:
    """What a page did that a user on an air-gapped network would notice."""

    external_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture
def guarded_page(page: Any) -> Iterator[tuple[Any, PageGuard]]:
    """A page whose requests beyond localhost are blocked and recorded, with console errors.

    The test fails at teardown if the page asked for anything outside localhost
    or logged an error to the console.
    """
    guard = PageGuard()

    def route(route: Any) -> None:
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            guard.external_requests.append(route.request.url)
            route.abort()

    page.context.route("**/*", route)
    page.on("console", lambda msg: msg.type == "error" and guard.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: guard.console_errors.append(str(exc)))
    yield page, guard
    assert guard.external_requests == [], "the page asked for non-local resources"
    assert guard.console_errors == [], "the page logged console errors"


SECRET = "a-cookie-secret-of-the-tests-0123456789"
"""AGENTDASH_COOKIE_SECRET of served apps with sign-in on."""
JWT_KEY = "the-signing-key-of-the-tests-0123456789"
AUDIENCE, ISSUER = "agentdash-tests", "https://issuer.test/"


def jwt_token(key: str = JWT_KEY, **claims: Any) -> str:
    """A token for the apps of :func:`make_signed_in_app` (a viewer of no team, unless
    ``claims`` say otherwise; a claim given as None is left out)."""
    values = {
        "sub": "ada",
        "roles": ["viewer"],
        "teams": [],
        "aud": AUDIENCE,
        "iss": ISSUER,
        # Hours: tokens are made when tests are collected, long before some run.
        "exp": time.time() + 6 * 3600,
        **claims,
    }
    return jwt.encode({k: v for k, v in values.items() if v is not None}, key, algorithm="HS256")


def make_signed_in_app(
    workdir: Path, auth: str, messages: int, days: float, **env: str
) -> ServedApp:
    """:func:`make_served_app` with ``AGENTDASH_AUTH=auth``: ``basic`` with an empty users
    file in ``workdir``, ``jwt`` taking :func:`jwt_token`'s tokens."""
    settings = {"AGENTDASH_AUTH": auth, "AGENTDASH_COOKIE_SECRET": SECRET}
    if auth == "basic":
        settings["AGENTDASH_USERS_FILE"] = str(workdir / "users.toml")
    if auth == "jwt":
        settings |= {
            "AGENTDASH_JWT_SECRET": JWT_KEY,
            "AGENTDASH_JWT_AUDIENCE": AUDIENCE,
            "AGENTDASH_JWT_ISSUER": ISSUER,
        }
    return make_served_app(workdir, messages, days, **settings, **env)


def add_user(app: ServedApp, name: str, role: str, password: str, teams: str = "") -> None:
    """``agentdash users add`` into the app's users file, the password on standard input."""
    command = ["users", "add", name, "--role", role, "--teams", teams, "--password-stdin"]
    subprocess.run(
        [sys.executable, "-m", "app.cli", *command],
        env=app.env,
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
