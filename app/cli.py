"""The ``agentdash`` command."""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import AgentdashError
from pipelines.settings import Settings, load_settings

if TYPE_CHECKING:
    from pipelines.alerts import Alerting, Rule
    from pipelines.importer import Entry
    from pipelines.quarantine import Quarantine
    from pipelines.shapes import Shape
    from pipelines.sources.cosmos import CosmosSource
    from pipelines.sources.local import LocalSource

APP = Path(__file__).with_name("main.py")
log = logging.getLogger("agentdash")


def _local_store(settings: Settings) -> LocalSource:
    from pipelines.sources.local import LocalSource

    if settings.source != "local":
        raise AgentdashError(
            "this command writes the embedded store: unset AGENTDASH_SOURCE or set it to 'local'"
        )
    return LocalSource.from_settings(settings)


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from app import server
    from app.auth import access

    access()  # a sign-in that cannot work is refused before anything starts
    if settings.auth == "none" and args.address not in _LOOPBACK and not args.allow_anonymous:
        raise AgentdashError(
            f"--address {args.address} with sign-in off (AGENTDASH_AUTH=none) lets everyone "
            "who reaches it read everything: set AGENTDASH_AUTH (basic, oauth or jwt), "
            "or give --allow-anonymous"
        )
    arguments = [
        str(APP),
        "--port",
        str(args.port),
        "--address",
        args.address,
        # The dashboard answers at / (and /main), not an index of apps.
        "--index",
        APP.stem,
        # The REST API and /health are tornado routes of the same server.
        "--plugins",
        "app.api",
        "--allow-websocket-origin",
        f"{args.address}:{args.port}",
        "--allow-websocket-origin",
        f"localhost:{args.port}",
    ]
    for origin in [*settings.allowed_origins, *(args.allow_websocket_origin or [])]:
        arguments += ["--allow-websocket-origin", origin]
    if args.num_procs != 1:
        arguments += ["--num-procs", str(args.num_procs)]
    if args.dev:
        arguments.append("--dev")
    if args.show:
        arguments.append("--show")
    panel = server.PanelServe(arguments + args.panel_args)
    # Before the store is touched, so that a taken port is one line and nothing claims to serve.
    server.check_port(args.address, args.port)
    if settings.source == "local":
        from pipelines.demo import seed_if_new

        store = _local_store(settings)
        if store.is_new():
            print(f"The local store {settings.local_path} is new: adding demo data ...", flush=True)
            seed_if_new(store)
        # SQLite connections must not cross the fork of --num-procs.
        store.close()
    else:
        from pipelines.sources.cosmos import CosmosSource

        CosmosSource.from_settings(settings)  # settings that cannot work stop here (exit 2)
    return panel.run()


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines import demo

    store = _local_store(settings)
    now = datetime.now(UTC)
    try:
        if args.live and not store.is_empty("messages"):
            # Live mode goes on from what the store holds rather than writing a history on top.
            agents, count, start, end = _stored_history(store)
            print(
                f"the store holds {count} messages from {start:%Y-%m-%d %H:%M} "
                f"to {end:%Y-%m-%d %H:%M} UTC: going on from there"
            )
        else:
            agents, messages = demo.generate(
                args.agents, args.messages, args.days, seed=args.seed, now=now
            )
            store.upsert("agents", agents)
            store.upsert("messages", messages)
            print(f"wrote {len(agents)} agents and {len(messages)} messages")
            count, start, end = len(messages), now - timedelta(days=args.days), now
        if not args.live:
            return 0
        rate = demo.Rate(args.rate) if args.rate else demo.Rate.of_history(count, start, end)
        feed = demo.live(agents, rate, _every_second())
    except ValueError as exc:
        raise AgentdashError(
            f"demo: {exc}; --live goes on from a store of demo data at its own rate, "
            "or at --rate messages a second"
        ) from None
    print(f"appending {_rate_text(rate.at(now))}, Ctrl-C to stop", flush=True)
    try:
        for tick, messages in enumerate(feed, start=1):
            store.upsert("messages", messages)
            if tick % 10 == 0:  # agents report in now and then: their lastSeen moves on
                store.upsert("agents", demo.touch_agents(agents, datetime.now(UTC)))
    except KeyboardInterrupt:
        pass
    return 0


def _stored_history(store: LocalSource) -> tuple[list[dict[str, Any]], int, datetime, datetime]:
    """The agents of a store, and how many messages it holds from when to when."""
    from pipelines.query import Query
    from pipelines.windows import as_utc

    agents = [doc for batch in store.fetch(Query.build("agents")) for doc in batch]
    query = Query.build("messages", projection=["timestamp"])
    stamps = [doc["timestamp"] for batch in store.fetch(query) for doc in batch]
    # Demo timestamps share one ISO format: the least and greatest strings are the bounds.
    timed = [stamp for stamp in stamps if isinstance(stamp, str)]
    if not timed:
        raise ValueError("the store's messages have no ISO 8601 'timestamp'")
    return agents, len(stamps), as_utc(min(timed)), as_utc(max(timed))


def _every_second() -> Iterator[datetime]:
    """The time now, and again each second after."""
    while True:
        yield datetime.now(UTC)
        time.sleep(1.0)


def _rate_text(per_second: float) -> str:
    """A rate in the unit that reads best: 5.0 a second, 1.2 a minute, 3.0 an hour."""
    for unit, seconds in (("a second", 1), ("a minute", 60), ("an hour", 3600)):
        if per_second * seconds >= 1:
            return f"about {per_second * seconds:.1f} messages {unit}"
    return f"about {per_second * 86400:.1f} messages a day"


# An import lists this many skipped entries, then how many more there were.
_SKIPPED_SHOWN = 10


def _skipped(entries: Sequence[Entry]) -> Iterator[str]:
    """The lines listing the entries an import skipped, and why."""
    for entry in entries[:_SKIPPED_SHOWN]:
        yield f"  {entry.where}: {entry.problem}"
    if len(entries) > _SKIPPED_SHOWN:
        yield f"  and {len(entries) - _SKIPPED_SHOWN} more"


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import a file; entries that cannot be read are skipped and listed.

    Exits 0 when documents were imported (or the file holds none), 2 when not one
    of its entries could be.
    """
    from pipelines.importer import import_file

    store = _local_store(settings)
    result = import_file(store, Path(args.file), args.container)
    summary = f"imported {result.written} {args.container} documents into {settings.local_path}"
    if result.skipped:
        summary += f", skipped {len(result.skipped)}:"
    print(summary)
    for line in _skipped(result.skipped):
        print(line)
    if result.skipped and not result.written:
        print(f"agentdash: error: no entry of {args.file} could be imported", file=sys.stderr)
        return 2
    return 0


def cmd_import_any(args: argparse.Namespace, settings: Settings) -> int:
    """``import FILE --container C``, or ``import --from-cosmos``."""
    if args.from_cosmos:
        if args.file or args.container:
            raise AgentdashError("import --from-cosmos copies both containers: give no FILE")
        return cmd_import_cosmos(args, settings)
    if args.window or args.start or args.end:
        raise AgentdashError("--window, --start and --end go with --from-cosmos")
    if not args.file or not args.container:
        raise AgentdashError("import needs FILE and --container messages|agents, or --from-cosmos")
    return cmd_import(args, settings)


def cmd_import_cosmos(args: argparse.Namespace, settings: Settings) -> int:
    """Copy the agents and a window of messages from Cosmos DB into the embedded store."""
    from pipelines.importer import import_entries
    from pipelines.query import Query
    from pipelines.schema import TIME_FIELD, FieldMapping
    from pipelines.sources.cosmos import CosmosSource
    from pipelines.sources.local import LocalSource

    start, end = _import_window(args)
    source = CosmosSource.from_settings(settings)
    store = LocalSource.from_settings(settings)
    mapping = FieldMapping.for_container("messages", settings.fields)
    queries = {
        "agents": Query.build("agents"),
        "messages": Query.build(
            "messages",
            time_field=mapping.source_field(TIME_FIELD["messages"]),
            start=start,
            end=end,
        ),
    }
    results = {
        container: import_entries(store, container, _user_fields(source.fetch(query)))
        for container, query in queries.items()
    }
    source.close()
    print(
        f"imported {results['agents'].written} agents and {results['messages'].written} messages "
        f"({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC) from {source.identity} "
        f"into {settings.local_path}"
    )
    for container, result in results.items():
        if result.skipped:
            print(f"skipped {len(result.skipped)} {container} the store cannot hold:")
        for line in _skipped(result.skipped):
            print(line)
    print(_cost(source.stats.snapshot()))
    if settings.source != "local":
        print("read them with AGENTDASH_SOURCE=local")
    return 0


def _import_window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    from pipelines.windows import as_utc

    now = datetime.now(UTC)
    if args.start or args.end:
        if args.window:
            raise AgentdashError("give --window or --start/--end, not both")
        if not args.start:
            raise AgentdashError("--end needs --start")
        start = as_utc(args.start, "--start")
        end = as_utc(args.end, "--end") if args.end else now
        if start >= end:
            raise AgentdashError(f"--start {args.start} is not before the end of the window")
        return start, end
    text = args.window or "7d"
    match = re.fullmatch(r"(\d+)([mhdw])", text)
    if match is None or int(match[1]) == 0:
        raise AgentdashError(f"--window {text!r}: give a length such as 90m, 24h, 7d or 4w")
    unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match[2]]
    return now - timedelta(**{unit: int(match[1])}), now


def _user_fields(batches: Iterable[Sequence[dict[str, Any]]]) -> Iterator[Entry]:
    """The documents without the properties Cosmos DB adds (the store adds its own)."""
    from pipelines.importer import Entry
    from pipelines.sources.cosmos import SYSTEM_PROPERTIES

    for batch in batches:
        for doc in batch:
            yield Entry(
                f"id {doc.get('id')!r}",
                {k: v for k, v in doc.items() if k not in SYSTEM_PROPERTIES},
            )


def _cost(stats: Mapping[str, float]) -> str:
    return (
        f"cost: {stats['requests']:.0f} requests, {stats['request_charge']:.2f} RU, "
        f"{stats['throttled']:.0f} throttled"
    )


def _rollup_costs(settings: Settings, sampled: Mapping[str, float]) -> str:
    """What a cold start and a refresh read, with the rollups as they are stored."""
    from pipelines.live import LiveFrames

    per_thousand = (
        1000 * sampled["request_charge"] / sampled["documents"] if sampled["documents"] else 0.0
    )
    unit = (
        f"about {per_thousand:.1f} RU per 1,000 documents read (as sampled)"
        if settings.source == "cosmos"
        else "no request units (an embedded store)"
    )
    try:
        stored = LiveFrames.from_settings(settings).stored_rollups()
    except Exception as exc:  # the costs are a hint; the check's verdict is above
        return f"rollups: could not look for them ({exc})"
    if stored is None:
        cold = (
            "none stored yet: the first window of AGENTDASH_ROLLUP_FROM or longer reads the "
            "messages' history once to build them"
        )
    else:
        cold = (
            f"stored, current to {stored.as_of:%Y-%m-%d %H:%M} UTC: a cold start reads only "
            "the change feed since then, never the history"
        )
    return (
        f"rollups: {cold}; each refresh reads the changed documents once per live window and "
        f"for the rollups, {unit}"
    )


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Sample both containers and show how their documents map to the canonical columns.

    With ``--suggest``, also propose a shape and mapping for the messages container (a
    preset it looks like, else fields by name and value) as a TOML block.  Exits 1 when
    the sampled documents of a container cannot be read at all; a source that cannot be
    reached, or rejects the credentials, exits 2.
    """
    from pipelines.shapes import Shape
    from pipelines.sources.cosmos import CosmosSource
    from pipelines.sources.local import LocalSource

    source: CosmosSource | LocalSource
    if settings.source == "cosmos":
        source = CosmosSource.from_settings(settings, page_size=args.sample, batch_size=args.sample)
    else:
        source = LocalSource.from_settings(settings)
    print(f"source: {source.identity}")
    shape = Shape.from_section(settings.containers.get("messages"), settings.messages_container)
    try:
        readable = [
            _check_container(source, container, settings, shape, args)
            for container in ("agents", "messages")
        ]
        if args.suggest:
            _suggest(source, settings, args)
    finally:
        source.close()
    stats = source.stats.snapshot()
    print(_cost(stats))
    print(_rollup_costs(settings, stats))
    if all(readable):
        print("ok: the dashboard can read this source")
        return 0
    print("not ok: map the fields in the AGENTDASH_CONFIG file, see the hints above")
    return 1


def _sample(source: CosmosSource | LocalSource, query: Any, size: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for batch in source.fetch(query):
        docs += batch[: size - len(docs)]
        if len(docs) >= size:
            break
    return docs


def _check_container(
    source: CosmosSource | LocalSource,
    container: str,
    settings: Settings,
    shape: Shape,
    args: argparse.Namespace,
) -> bool:
    """Print the mapping of one container and how its sample fares; False if nothing reads."""
    from pipelines.query import Query
    from pipelines.reading import normalise_shaped
    from pipelines.schema import REQUIRED, FieldMapping
    from pipelines.shapes import Shape, values

    mapping = FieldMapping.for_container(container, settings.fields, settings.dimensions)
    shape = shape if container == "messages" else Shape()
    columns = [
        c for c in mapping.columns if c in dict(mapping.fields) or c in dict(mapping.dimensions)
    ]
    query = Query.build(
        container, filters=shape.filters(), projection=shape.projection(mapping, columns)
    )
    docs = _sample(source, query, args.sample)
    print(f"\n{container}:")
    if container == "messages" and shape != Shape():
        print(
            f"  layout: {shape.layout}" + (f" ({shape.messages_path!r})" if shape.session else "")
        )
    for note in shape.pushed_down():
        print(f"  not pushed down: {note}")
    if not docs:
        print("  no documents: is this the container you meant?")
        return True
    result = normalise_shaped(docs, mapping, shape)
    messages, _ = shape.messages(docs, mapping)
    share = len(result.frame) / max(len(messages), 1)
    if shape.session:
        print(
            f"  {len(docs)} documents sampled, {len(messages)} messages, "
            f"{len(result.frame)} normalise ({share:.1%} of the messages)"
        )
    else:
        print(f"  {len(docs)} documents sampled, {len(result.frame)} normalise ({share:.1%})")
    fields = {**dict(mapping.fields), **dict(mapping.dimensions)}
    width = max(len("source field"), *(len(fields[column]) for column in columns))
    print(f"  {'column':<16} {'source field':<{width}}  {'present':>7}")
    absent = []
    for column in columns:
        field = fields[column]
        present = sum(v is not None for v in values(messages, field)) / max(len(messages), 1)
        print(f"  {column:<16} {field:<{width}}  {present:7.1%}")
        if present == 0 and column in REQUIRED[container]:
            absent.append((column, field))
    for reason, count in Counter(q.reason for q in result.quarantined).most_common():
        print(f"  quarantined {count}: {reason}")
    for column, field in absent:
        print(
            f"  hint: no document has {field!r}, the source field of {column}: name the right "
            f'one in the AGENTDASH_CONFIG file, e.g. [fields.{container}] {column} = "..." '
            "(or try agentdash check --suggest)"
        )
    return len(result.frame) > 0


def _suggest(
    source: CosmosSource | LocalSource, settings: Settings, args: argparse.Namespace
) -> None:
    """Print a shape and mapping proposed for the messages container, ready to paste."""
    from pipelines.query import Query
    from pipelines.suggest import propose

    docs = _sample(source, Query.build("messages"), args.sample)
    print("\nsuggested for messages:")
    if not docs:
        print("  no documents to learn from")
        return
    proposal = propose(docs, settings.messages_container)
    if proposal.preset is not None:
        print(f"  the documents look like the {proposal.preset!r} preset")
    else:
        print("  no preset matches: fields proposed by their names and values")
    for reason in proposal.why:
        print(f"  note: {reason}")
    block = proposal.toml() or "# the default mapping reads them: nothing to add"
    print("  paste into the AGENTDASH_CONFIG file:\n")
    print("\n".join(f"    {line}" for line in block.splitlines()))
    print(
        f"\n  with it {proposal.readable} of {proposal.sampled} sampled {proposal.unit} "
        f"normalise ({proposal.share:.1%})"
    )


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """Write a self-contained report of a window; exit codes in ``app.report.ExitCode``."""
    from app.report import Report, ReportError
    from pipelines.windows import as_utc

    now = datetime.now(UTC)
    if args.window and args.start:
        raise AgentdashError("give --window or --start (and --end), not both")
    if args.end and not args.start:
        raise AgentdashError("--end needs --start")
    # strftime codes in --out name each scheduled run's file: reports/agents-%Y-%m-%d.html
    out = Path(now.strftime(args.out or f"report.{args.format or 'html'}"))
    try:
        report = Report.from_settings(
            settings,
            teams=[team for value in args.team for team in value.split(",") if team] or None,
            window=args.window or "7d",
            start=as_utc(args.start, "--start") if args.start else None,
            end=as_utc(args.end, "--end") if args.end else now if args.start else None,
            agents=[agent for value in args.agents for agent in value.split(",") if agent],
            tz=args.tz,
            title=args.title,
        )
        report.save(out, args.format, args.chromium, args.paper)
    except ReportError as exc:
        print(f"agentdash: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    start, end = report.messages.bounds
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): "
        f"{report.messages.answers().kpis().messages:,} messages from {start:%Y-%m-%d %H:%M} "
        f"to {end:%Y-%m-%d %H:%M} UTC"
    )
    return 0


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    """``users add|remove|list``: the users file of ``AGENTDASH_AUTH=basic``."""
    import getpass

    from app.auth.users import UsersFile

    if settings.users_file is None:
        raise AgentdashError("set AGENTDASH_USERS_FILE to the users file to manage")
    users = UsersFile(settings.users_file)
    if args.action == "list":
        for user in users.users().values():
            print(f"{user.name}\t{user.role}\t{','.join(user.teams) or '-'}")
        return 0
    if args.action == "remove":
        users.remove(args.name)
        print(f"removed {args.name} from {settings.users_file}")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise AgentdashError("the passwords differ")
    teams = [team for team in (args.teams or "").split(",") if team]
    users.add(args.name, args.role, teams, password)
    print(
        f"{args.name}: {args.role}, teams {', '.join(teams) or '(none)'} in {settings.users_file}"
    )
    return 0


def _quarantine(settings: Settings) -> Quarantine:
    from pipelines.quarantine import Quarantine, open_quarantine
    from pipelines.sources import open_source

    if settings.source == "local" and not settings.local_path.exists():
        # Opening the store would make one; no store, nothing read, nothing quarantined.
        print(f"no store at {settings.local_path}: nothing has been read from it")
        return Quarantine()
    source = open_source(settings)  # names the source; nothing is read from it
    print(f"source: {source.identity}")
    quarantine = open_quarantine(settings, source.identity)
    print(f"kept in: {quarantine.store.where}")
    return quarantine


def cmd_quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    """How many documents are quarantined and why, and the latest of them."""
    quarantine = _quarantine(settings)
    summary = quarantine.summary()
    print(f"{summary.count} documents quarantined (each counted once, when first read)")
    for kind, count in sorted(summary.reasons.items(), key=lambda item: -item[1]):
        print(f"  {count:>8}  {kind}")
    entries = quarantine.entries(args.limit)
    if entries:
        print(f"latest {len(entries)}:")
    for entry in entries:
        print(
            f"  {entry.seen_at:%Y-%m-%d %H:%M:%S}  {entry.container}  {entry.id!r}  {entry.reason}"
        )
    return 0


def cmd_quarantine_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write the count, the reasons and the latest documents as read, as the API's
    ``/api/v1/quarantine?raw=1`` gives them, to a JSON file."""
    import json

    listing = _quarantine(settings).listing(args.limit, raw=True)
    out = Path(args.file)
    try:
        out.write_text(json.dumps(listing, indent=1) + "\n")
    except OSError as exc:
        raise AgentdashError(f"cannot write {out}: {exc.strerror}") from None
    print(f"wrote {len(listing['documents'])} of {listing['count']} quarantined documents to {out}")
    return 0


_NO_RULES = (
    "no alert rule is configured: add [[alerts]] tables to the AGENTDASH_CONFIG file "
    "or to a file named by AGENTDASH_ALERTS"
)


def _rules(settings: Settings, names: Sequence[str] = ()) -> list[Rule]:
    """The configured rules, or those named; a name that is no rule's is refused."""
    if names and not settings.alerts:
        raise AgentdashError(_NO_RULES)
    known = {rule.name: rule for rule in settings.alerts}
    for name in names:
        if name not in known:
            raise AgentdashError(f"--rule {name!r} is not a rule; the rules: {', '.join(known)}")
    return [rule for rule in settings.alerts if not names or rule.name in names]


def cmd_alerts_backtest(args: argparse.Namespace, settings: Settings) -> int:
    """Replay the rules over the stored history and print when each would have fired."""
    import json

    import pandas as pd

    from pipelines.alerts.backtest import backtest
    from pipelines.alerts.engine import AGENTS
    from pipelines.alerts.rules import parse_duration
    from pipelines.live import FrameSpec, LiveFrames
    from pipelines.windows import Window

    rules = _rules(settings, args.rule)
    length = parse_duration(args.window, "--window")
    if not rules:
        print(json.dumps({"rules": []}) if args.format == "json" else _NO_RULES)
        return 0
    frames = LiveFrames.from_settings(settings)
    end = datetime.now(UTC)
    start = end - length
    # One read of the period and of the longest window before its first step: a window
    # read with the period before it (as every window is), the two from `earliest` to `end`.
    earliest = start - max(rule.over for rule in rules)
    half = Window.parse(start=earliest + (end - earliest) / 2, end=end)
    with frames.once():
        messages = frames.get(FrameSpec("messages", half)).frame
        agents = frames.get(AGENTS).frame
    replays = backtest(rules, messages, agents, pd.Timestamp(start), pd.Timestamp(end))
    if args.format == "json":
        print(json.dumps({"rules": [replay.to_json() for replay in replays]}, indent=1))
        return 0
    print(f"{len(messages):,} messages from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    shown = {replay.rule.name for replay in replays}
    for rule in rules:
        if rule.name not in shown:
            print(f"\n{rule.name}: no messages of its scope, no group to replay")
    for replay in replays:
        rule = replay.rule
        where = "" if replay.group is None else f" [{rule.group_by} {replay.group}]"
        print(
            f"\n{rule.name}{where}: {rule.metric} {rule.condition} over {_duration_text(rule.over)}"
            f" every {_duration_text(rule.every)}, for {_duration_text(rule.hold)}: "
            f"{len(replay.firings)} firings, {replay.notifications} notifications, "
            f"firing {replay.firing_share:.1%} of the time"
        )
        for firing in replay.firings:
            ended = "still firing" if firing.end is None else f"{firing.end:%Y-%m-%d %H:%M:%S}"
            print(f"  {firing.start:%Y-%m-%d %H:%M:%S} to {ended}  peak {firing.peak:g}")
    return 0


def _duration_text(length: timedelta) -> str:
    from pipelines.alerts.rules import describe_duration

    return describe_duration(length) if length else "0"


def _alerting(settings: Settings, rules: Sequence[Rule]) -> Alerting:
    from pipelines.alerts import Alerting, open_store
    from pipelines.live import LiveFrames

    store = open_store(settings.redis_url, settings.local_path)
    return Alerting(rules, settings.notifiers, store, LiveFrames.from_settings(settings))


def cmd_alerts_run(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate the rules now (``--once``), or at each of their steps until stopped; exit 0
    whether or not anything fired."""
    if not settings.alerts:
        print(_NO_RULES)
        return 0
    alerting = _alerting(settings, _rules(settings))
    print(f"alert state: {alerting.store.where}")
    if args.once:
        made = alerting.run_once()
        print(f"evaluated {made} of {len(alerting.rules)} rules")
    else:
        print("evaluating the rules at each of their steps, Ctrl-C to stop", flush=True)
        try:
            while True:
                alerting.frames.refresh_all()
                alerting.run_due()
                time.sleep(settings.refresh_seconds)
        except KeyboardInterrupt:
            pass
    stats = alerting.stats
    for rule, group in alerting.firing():
        print(f"firing: {rule}" + ("" if group is None else f" [{group}]"))
    print(f"notifications: {stats.sent} sent, {stats.failed} failed")
    return 0


def cmd_alerts_silence(args: argparse.Namespace, settings: Settings) -> int:
    """Send no notification of a rule for a while (its state is still kept)."""
    from pipelines.alerts import open_store
    from pipelines.alerts.rules import parse_duration

    (rule,) = _rules(settings, [args.name])
    until = datetime.now(UTC) + parse_duration(args.duration, "--for")
    store = open_store(settings.redis_url, settings.local_path)
    store.silence(rule.name, until)
    print(f"silenced {rule.name!r} until {until.isoformat(timespec='seconds')} (in {store.where})")
    return 0


def cmd_schedules_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the scheduled reports that are due and no process ran yet."""
    from app.scheduled import run_due
    from pipelines.alerts import open_store

    if not settings.schedules:
        print("no schedule is configured: add [[schedules]] tables to the AGENTDASH_CONFIG file")
        return 0
    written = run_due(settings, open_store(settings.redis_url, settings.local_path))
    for schedule, path in written:
        print(f"{schedule.name}: wrote {path}")
    if not written:
        print("no schedule is due")
    return 0


def _number(
    kind: type[float], low: float, high: float = math.inf, *, above: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite ``kind`` from ``low`` (or above it) to ``high``."""
    bounds = f"above {low}" if above else f"of at least {low}"
    if high < math.inf:
        bounds = f"from {low} to {high}"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and low <= value <= high) or (above and value == low):
            raise argparse.ArgumentTypeError(f"{text}: give a number {bounds}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentdash",
        description="Dashboard, notebooks and reports for AI agents and their messages.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the live dashboard (panel serve)")
    serve.add_argument("--port", type=_number(int, 1, 65535), default=5006)
    serve.add_argument("--address", default="127.0.0.1")
    serve.add_argument("--dev", action="store_true", help="reload on code changes")
    serve.add_argument("--show", action="store_true", help="open a browser")
    serve.add_argument(
        "--num-procs", type=_number(int, 0), default=1, help="server processes (0: one a core)"
    )
    serve.add_argument(
        "--allow-websocket-origin",
        action="append",
        help="extra host:port pages are served to (as AGENTDASH_ALLOWED_ORIGINS)",
    )
    serve.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="serve another --address than loopback with sign-in off: everyone reads everything",
    )
    serve.add_argument(
        "panel_args",
        nargs="*",
        metavar="-- PANEL_SERVE_ARGS",
        help="more `panel serve` options after --, e.g. -- --unused-session-lifetime 5000",
    )
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="write demo data into the embedded store")
    demo.add_argument("--agents", type=_number(int, 2), default=12, help="2 or more")
    demo.add_argument("--messages", type=_number(int, 0), default=50_000)
    demo.add_argument("--days", type=_number(float, 0, above=True), default=30.0)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--live",
        action="store_true",
        help="then keep appending messages at the rate of the history (an existing store's "
        "history is kept and gets no more)",
    )
    demo.add_argument(
        "--rate",
        type=_number(float, 0, above=True),
        help="with --live: messages a second instead, e.g. 5 or 0.5",
    )
    demo.set_defaults(func=cmd_demo)

    imp = sub.add_parser(
        "import", help="load a JSON or JSON-lines export, or Cosmos DB, into the embedded store"
    )
    imp.add_argument("file", nargs="?", help="a JSON array or JSON-lines file")
    imp.add_argument("--container", choices=["messages", "agents"])
    imp.add_argument(
        "--from-cosmos",
        action="store_true",
        help="copy the agents and the messages of a window from the AGENTDASH_COSMOS_* account",
    )
    imp.add_argument("--window", help="with --from-cosmos: the last 90m, 24h, 7d (default), 4w")
    imp.add_argument("--start", help="with --from-cosmos: ISO 8601 start of the window (UTC)")
    imp.add_argument("--end", help="with --from-cosmos: ISO 8601 end of the window (default now)")
    imp.set_defaults(func=cmd_import_any)

    check = sub.add_parser(
        "check", help="sample the source: field mapping, share of readable documents, cost"
    )
    check.add_argument("--sample", type=int, default=200, help="documents to read per container")
    check.add_argument(
        "--suggest",
        action="store_true",
        help="propose a shape and field mapping for the messages (a TOML block to paste)",
    )
    check.set_defaults(func=cmd_check)

    from pipelines.quarantine import KEEP

    quarantine = sub.add_parser(
        "quarantine", help="documents that could not be read: how many, why, which"
    )
    actions = quarantine.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="counts by reason and the latest documents")
    listing.add_argument(
        "--limit", type=_number(int, 0, KEEP), default=20, help=f"documents listed (0..{KEEP})"
    )
    listing.set_defaults(func=cmd_quarantine_list)
    export = actions.add_parser("export", help="write them, each as read, to a JSON file")
    export.add_argument("file", help="the JSON file to write")
    export.add_argument(
        "--limit", type=_number(int, 0, KEEP), default=KEEP, help=f"documents written (0..{KEEP})"
    )
    export.set_defaults(func=cmd_quarantine_export)

    from pipelines.windows import WINDOWS

    report = sub.add_parser(
        "report",
        help="write a self-contained HTML report (or PDF/PNG) of a window",
        description="Exit codes: 0 written, 2 configuration, argument (an unknown agent...) "
        "or source error, 3 no messages in the window, 4 no Chromium for PDF/PNG, "
        "5 Chromium failed.",
    )
    report.add_argument("--window", choices=list(WINDOWS), help="the last 15m ... 90d (default 7d)")
    report.add_argument("--start", help="ISO 8601 start of a fixed window (UTC if no offset)")
    report.add_argument("--end", help="ISO 8601 end of a fixed window (default now)")
    report.add_argument(
        "--agents", nargs="+", default=[], metavar="AGENT", help="only these agent ids or names"
    )
    report.add_argument(
        "--team",
        action="append",
        default=[],
        metavar="TEAM",
        help="only the agents of this team (repeat, or a,b) and their messages",
    )
    report.add_argument("--title", default="", help="heading (default: names the window)")
    report.add_argument("--tz", default="UTC", help="IANA time zone of times and bins")
    report.add_argument(
        "--out", help="file to write, strftime codes allowed (default report.FORMAT)"
    )
    report.add_argument(
        "--format", choices=["html", "pdf", "png"], help="default: the suffix of --out, else html"
    )
    report.add_argument("--chromium", help="Chromium executable for PDF/PNG (default: on PATH)")
    report.add_argument(
        "--paper", choices=["a4", "letter"], default="a4", help="page size of a PDF (default a4)"
    )
    report.set_defaults(func=cmd_report)

    users = sub.add_parser(
        "users", help="manage the users file of AGENTDASH_AUTH=basic (AGENTDASH_USERS_FILE)"
    )
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user, or change one's role, teams and password")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["viewer", "admin"])
    add.add_argument("--teams", help="comma-separated teams whose data the user reads")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    remove = actions.add_parser("remove", help="remove a user (refused at their next request)")
    remove.add_argument("name")
    actions.add_parser("list", help="names, roles and teams")
    users.set_defaults(func=cmd_users)

    alerts = sub.add_parser(
        "alerts",
        help="alert rules ([[alerts]]): backtest them on the history, evaluate them, silence one",
        description="Exit codes: 0 done (whether or not anything fired), 2 configuration or "
        "source error.",
    )
    actions = alerts.add_subparsers(dest="action", required=True)
    back = actions.add_parser(
        "backtest", help="when each rule would have fired over the stored history"
    )
    back.add_argument("--window", default="30d", help="the history replayed: 24h, 7d, 30d...")
    back.add_argument(
        "--rule", action="append", default=[], metavar="NAME", help="only this rule (repeat)"
    )
    back.add_argument("--format", choices=["table", "json"], default="table")
    back.set_defaults(func=cmd_alerts_backtest)
    run = actions.add_parser("run", help="evaluate the rules and send their notifications")
    run.add_argument(
        "--once", action="store_true", help="evaluate every rule now and exit (for cron)"
    )
    run.set_defaults(func=cmd_alerts_run)
    silence = actions.add_parser("silence", help="send no notification of a rule for a while")
    silence.add_argument("name", help="the rule's name")
    silence.add_argument("--for", dest="duration", required=True, help="how long: 30m, 2h, 1d...")
    silence.set_defaults(func=cmd_alerts_silence)

    schedules = sub.add_parser("schedules", help="scheduled reports ([[schedules]])")
    actions = schedules.add_subparsers(dest="action", required=True)
    due = actions.add_parser("run", help="run the schedules that are due")
    due.add_argument(
        "--due",
        action="store_true",
        required=True,
        help="the schedules whose latest time no process ran yet (from an external scheduler)",
    )
    due.set_defaults(func=cmd_schedules_run)
    return parser


# The commands that read or write the embedded store say which file it is.
_STORE_COMMANDS = ("serve", "demo", "import", "report")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    if args.command == "serve":
        # `panel serve` adds the handler, so that its --log-format and --log-file keep working.
        logging.getLogger().setLevel(level)
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(os.environ)
        from pipelines.pipeline import MessagesPipeline

        # Before the server imports the API, whose parameters are the pipeline's.
        MessagesPipeline.declare_dimensions(settings.dimensions)
        if settings.source == "local" and args.command in _STORE_COMMANDS:
            print(f"store: {settings.local_path}", flush=True)
        return int(args.func(args, settings))
    except AgentdashError as exc:
        print(f"agentdash: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
