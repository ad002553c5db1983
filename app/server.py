"""Panel's server in the process of ``agentdash serve``.

The process a user or a supervisor starts is the server: SIGTERM or SIGINT to
its PID stops it and frees the port, ``--num-procs`` workers included.

It is also where the server's edge is set up (``panel serve`` by hand has none
of it): sign-in for pages and websockets (:mod:`app.auth.provider`, with
Bokeh sessions signed so that a page's identity cannot be forged), the host
check and rate limits (:class:`app.edge.Gate`), security headers, one log line
per request, metrics shared by the ``--num-procs`` workers and Sentry.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from panel.command.serve import Serve
from tornado.process import task_id

from app import websocket
from app.auth import access
from app.auth.access import SESSION_COOKIES, SESSION_DAYS, derive
from pipelines.errors import ConfigError

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
log = logging.getLogger("agentdash")


def check_port(address: str, port: int) -> None:
    """Refuse an address and port that cannot be listened on, before anything claims them."""
    try:
        # Every address the name gives, as the server binds them, and with SO_REUSEADDR as it
        # sets it: a port left in TIME_WAIT counts as free, one another process listens on not.
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(
            address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(sockaddr)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {address} is in use by another process: "
                "stop it or give another --port"
            ) from None
        raise ConfigError(
            f"cannot listen on {address}:{port} ({exc.strerror or exc}): check --address and --port"
        ) from None


class _Serve(Serve):
    """``panel serve`` with the server's edge, saying where it serves once it listens."""

    def customize_applications(self, args: Any, applications: dict[str, Any]) -> Any:
        from app.auth.provider import SessionIdentity

        applications = super().customize_applications(args, applications)
        for application in set(applications.values()):
            application.add(SessionIdentity(access()))
        return applications

    def customize_kwargs(self, args: Any, server_kwargs: dict[str, Any]) -> dict[str, Any]:
        from app.auth.provider import Provider
        from app.edge import SecurityHeaders
        from app.monitoring import logs

        kwargs = dict(super().customize_kwargs(args, server_kwargs))
        sign_in = access()
        logs.use_format(sign_in.settings.log_format)
        kwargs["log_function"] = logs.log_request
        kwargs["transforms"] = [SecurityHeaders]
        # Credentials stay out of the session token Bokeh writes into each page: the
        # session reads its identity from the token's signed payload instead.
        kwargs["exclude_cookies"] = list(SESSION_COOKIES)
        kwargs["exclude_headers"] = ["Authorization", "Cookie"]
        if sign_in.on:
            _configure_panel(sign_in)
            kwargs["auth_provider"] = Provider(sign_in)
            kwargs["cookie_secret"] = sign_in.cookie_secret
            kwargs["sign_sessions"] = True
            kwargs["secret_key"] = derive(sign_in.cookie_secret, "bokeh sessions").hex().encode()
        return kwargs

    def customize_server(self, server: Any) -> Any:
        # Called once the sockets are bound, and in each worker with --num-procs.
        from tornado.ioloop import PeriodicCallback
        from tornado.routing import Rule

        from app.edge import Gate, Refusal
        from app.monitoring import metrics, sentry
        from app.rate_limits import RateLimits

        sign_in = access()
        settings = sign_in.settings
        # Bokeh keeps its Tornado application to itself: the gate must come before its routes.
        tornado_app = server._tornado
        gate = Gate(
            sorted(tornado_app.websocket_origins),
            sign_in,
            RateLimits(settings.rate_limit, settings.redis_url),
            tornado_app.app_paths,
        )
        tornado_app.default_router.rules.insert(0, Rule(gate, Refusal))
        PeriodicCallback(metrics.sync_all, settings.refresh_seconds * 1000).start()
        if settings.alerts or settings.schedules:
            # Rules are evaluated, and reports written, whether or not anyone has a page open.
            from app.live import ensure_refresher
            from pipelines.live import LiveFrames

            metrics.watch(LiveFrames.default())
            ensure_refresher(LiveFrames.default())
        sentry.init()
        if task_id() in (None, 0):
            if sign_in.on:
                log.info("sign-in: %s", sign_in.mode)
            else:
                log.warning(
                    "sign-in is off (AGENTDASH_AUTH=none): everyone who can reach "
                    "http://%s:%s/ can read everything",
                    server.address or "0.0.0.0",
                    server.port,
                )
            print(f"agentdash: serving http://{server.address}:{server.port}/", flush=True)
        return super().customize_server(server)


def _configure_panel(sign_in: Any) -> None:
    """What Panel's login handlers read from its config: the secret, and OAuth's client."""
    import panel as pn
    from cryptography.fernet import Fernet
    from panel.io.state import state

    settings = sign_in.settings
    values: dict[str, Any] = {"cookie_secret": sign_in.cookie_secret}
    if sign_in.mode == "oauth":
        values |= {
            "oauth_key": settings.oauth_key,
            "oauth_secret": settings.oauth_secret,
            "oauth_extra_params": dict(settings.oauth_extra_params),
            "oauth_expiry": SESSION_DAYS,
            # Panel's token cookies, encrypted with the key the identity reads them by.
            "oauth_encryption_key": sign_in.oauth.fernet_key,
        }
        state.encryption = Fernet(sign_in.oauth.fernet_key)
    for name, value in values.items():
        setattr(pn.config, name, value)  # properties of Panel's config, settable at run time


class PanelServe:
    """``panel serve ARGUMENTS``, to run in this process; wrong options exit 2 at once."""

    def __init__(self, arguments: Sequence[str]) -> None:
        parser = argparse.ArgumentParser(
            prog="panel serve",
            usage="agentdash serve [...] -- PANEL_SERVE_ARGS (panel serve --help)",
        )
        self._command = _Serve(parser=parser)
        self._options = parser.parse_args(list(arguments))

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; prints ``agentdash: serving URL`` once listening."""
        # Before prometheus_client is imported (with the plugin): its values live in files
        # there, one per process, summed by whichever process answers /metrics.
        metrics_dir, owner = None, os.getpid()
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics_dir = tempfile.mkdtemp(prefix="agentdash-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        try:
            return self._run()
        finally:
            if metrics_dir is not None and os.getpid() == owner:  # not in a worker
                shutil.rmtree(metrics_dir, ignore_errors=True)

    def _run(self) -> int:
        # Until the server installs its own handler, and in a --num-procs parent that only
        # waits for its workers, SIGTERM stops the process as Ctrl-C does.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        if sys.platform == "linux":
            os.register_at_fork(after_in_child=_end_with_parent(os.getpid()))
        websocket.install()
        try:
            self._command.invoke(self._options)
        except KeyboardInterrupt:
            pass
        except Exception as exc:  # what `panel serve` prints as "ERROR: ..." too
            raise ConfigError(f"panel serve: {exc}") from exc
        finally:
            from app.monitoring.metrics import process_gone

            process_gone()
        return 0


def _end_with_parent(parent: int) -> Callable[[], None]:
    """An at-fork hook that has a --num-procs worker stopped when its parent ends."""
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        # The kernel sends SIGTERM to the worker when the parent ends, even by SIGKILL;
        # the worker's server stops on it as it does on a SIGTERM of its own.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent ended before the hook ran
            os._exit(0)

    return hook
