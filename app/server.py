"""Panel's server in the process of ``agentdash serve``.

The process a user or a supervisor starts is the server: SIGTERM or SIGINT to
its PID stops it and frees the port, ``--num-procs`` workers included.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from panel.command.serve import Serve
from tornado.process import task_id

from pipelines.errors import ConfigError

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


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
    """``panel serve``, saying where it serves once it listens."""

    def customize_server(self, server: Any) -> Any:
        # Called once the sockets are bound, and in each worker with --num-procs.
        if task_id() in (None, 0):
            print(f"agentdash: serving http://{server.address}:{server.port}/", flush=True)
        return super().customize_server(server)


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
        # Until the server installs its own handler, and in a --num-procs parent that only
        # waits for its workers, SIGTERM stops the process as Ctrl-C does.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        if sys.platform == "linux":
            os.register_at_fork(after_in_child=_end_with_parent(os.getpid()))
        try:
            self._command.invoke(self._options)
        except KeyboardInterrupt:
            pass
        except Exception as exc:  # what `panel serve` prints as "ERROR: ..." too
            raise ConfigError(f"panel serve: {exc}") from exc
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
