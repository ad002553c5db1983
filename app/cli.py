"""The ``agentdash`` command."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import AgentdashError
from pipelines.settings import Settings, load_settings

if TYPE_CHECKING:
    from pipelines.sources.local import LocalSource

APP = Path(__file__).with_name("main.py")
log = logging.getLogger("agentdash")


def _local_store(settings: Settings) -> LocalSource:
    from pipelines.sources.local import LocalSource

    if settings.source != "local":
        raise AgentdashError(
            "this command writes the embedded store: unset AGENTDASH_SOURCE or set it to 'local'"
        )
    return LocalSource(settings.local_path)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if settings.source == "local":
        from pipelines.demo import seed

        store = _local_store(settings)
        if store.is_empty("messages"):
            print(
                f"The local store {settings.local_path} is empty: adding demo data ...", flush=True
            )
            seed(store)
    command = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        str(APP),
        "--port",
        str(args.port),
        "--address",
        args.address,
        "--index",
        APP.stem,
        "--allow-websocket-origin",
        f"{args.address}:{args.port}",
        "--allow-websocket-origin",
        f"localhost:{args.port}",
    ]
    for origin in args.allow_websocket_origin or []:
        command += ["--allow-websocket-origin", origin]
    if args.num_procs != 1:
        command += ["--num-procs", str(args.num_procs)]
    if args.dev:
        command.append("--dev")
    if args.show:
        command.append("--show")
    print(f"agentdash: serving http://{args.address}:{args.port}/", flush=True)
    return subprocess.call(command)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import demo

    store = _local_store(settings)
    agents, messages = demo.generate(args.agents, args.messages, args.days, seed=args.seed)
    store.upsert("agents", agents)
    store.upsert("messages", messages)
    print(f"wrote {len(agents)} agents and {len(messages)} messages to {settings.local_path}")
    if not args.live:
        return 0
    print(f"appending {args.rate} messages a second; Ctrl-C to stop", flush=True)
    try:
        while True:
            started = time.monotonic()
            store.upsert("messages", demo.live_messages(agents, args.rate))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.importer import import_file

    store = _local_store(settings)
    written, skipped = import_file(store, Path(args.file), args.container)
    print(f"imported {written} {args.container} documents into {settings.local_path}")
    if skipped:
        print(f"skipped {skipped} entries without an 'id'", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentdash",
        description="Dashboard, notebooks and reports for AI agents and their messages.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the live dashboard (panel serve)")
    serve.add_argument("--port", type=int, default=5006)
    serve.add_argument("--address", default="127.0.0.1")
    serve.add_argument("--dev", action="store_true", help="reload on code changes")
    serve.add_argument("--show", action="store_true", help="open a browser")
    serve.add_argument("--num-procs", type=int, default=1, help="server processes")
    serve.add_argument(
        "--allow-websocket-origin", action="append", help="extra host:port allowed to connect"
    )
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="write demo data into the embedded store")
    demo.add_argument("--agents", type=int, default=12)
    demo.add_argument("--messages", type=int, default=50_000)
    demo.add_argument("--days", type=float, default=30.0)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--live", action="store_true", help="keep appending messages")
    demo.add_argument("--rate", type=int, default=5, help="messages a second with --live")
    demo.set_defaults(func=cmd_demo)

    imp = sub.add_parser("import", help="load a JSON or JSON-lines export into the embedded store")
    imp.add_argument("file")
    imp.add_argument("--container", choices=["messages", "agents"], required=True)
    imp.set_defaults(func=cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(os.environ)
        return int(args.func(args, settings))
    except AgentdashError as exc:
        print(f"agentdash: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
