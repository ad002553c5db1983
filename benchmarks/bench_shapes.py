"""Session documents and costs.

(a) Cold load (``LiveFrames.get``) of 200k demo messages stored as 40k session documents
    (five messages each, ``layout = "session"``) against the same messages stored one per
    document, both through the real SDK and the Cosmos DB stand-in.  Goal: at most 1.3x.
(b) Pricing 1M messages over 20 models (``PriceTable.priced``) against the cold load of the
    same 1M messages from the embedded store, measured in this run.  Goal: at most 10%.

The stand-in runs in this process; its documents are frozen out of the garbage collector's
passes, as in ``bench_cosmos``.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.common import demo_store, median_seconds, report
from pipelines import FrameSpec, LiveFrames, demo
from pipelines.cache import MemoryFrameCache
from pipelines.prices import PriceTable
from pipelines.shapes import Shape
from pipelines.sources.cosmos import CosmosSource
from pipelines.windows import Window
from tests.cosmos_standin import CosmosStandin

MESSAGES = 200_000
PER_SESSION = 5
PRICED = 1_000_000
DATABASE = "agentdash"
SPEC = FrameSpec("messages", Window.parse("24h"))
# 18 models of the shipped table, one of [prices] and one without a price.
MODELS = [
    "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
    "o3-mini", "o1", "gpt-3.5-turbo", "gpt-4-turbo", "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-20241022", "claude-3-opus-20240229", "gemini-1.5-pro", "gemini-1.5-flash",
    "mistral-large-latest", "command-r-plus", "llama-3.1-70b-instruct", "o4-mini",
    "acme-large", "unlisted-model",
]  # fmt: skip


def sessions(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages in session documents of up to five, each of one conversation."""
    by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        by_conversation[message["conversationId"]].append(message)
    docs = []
    for conversation, turns in by_conversation.items():
        for start in range(0, len(turns), PER_SESSION):
            part = turns[start : start + PER_SESSION]
            docs.append(
                {"id": f"{conversation}~{start}", "userId": part[0]["userId"], "messages": part}
            )
    return docs


def cold_loads() -> tuple[int, int, float, float, float]:
    with CosmosStandin() as standin:
        agents, messages = demo.generate(20, MESSAGES, days=1.9, seed=1)
        session_docs = sessions(messages)
        for name, docs, pk in (
            ("messages", messages, "/conversationId"),
            ("sessions", session_docs, "/userId"),
        ):
            standin.create_container(DATABASE, name, pk_path=pk)
            standin.upsert(DATABASE, name, docs)
        standin.create_container(DATABASE, "agents", pk_path="/id")
        standin.upsert(DATABASE, "agents", agents)
        gc.collect()
        gc.freeze()

        def load(container: str, shape: Shape) -> int:
            source = CosmosSource(
                standin.url, DATABASE, standin.key, containers={"messages": container}
            )
            return len(LiveFrames(source, MemoryFrameCache(), shape=shape).get(SPEC).frame)

        session = Shape(layout="session")
        rows = load("messages", Shape())
        session_rows = load("sessions", session)
        rounds = [
            (
                median_seconds(lambda: load("messages", Shape()), 1),
                median_seconds(lambda: load("sessions", session), 1),
            )
            for _ in range(5)
        ]
        gc.unfreeze()
    ratio = statistics.median(s / m for m, s in rounds)
    t_messages = statistics.median(m for m, _ in rounds)
    t_sessions = statistics.median(s for _, s in rounds)
    return rows, session_rows, t_messages, t_sessions, ratio


def pricing() -> tuple[int, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = demo_store(Path(tmp) / "priced.db", PRICED, days=0.9)

        def cold() -> Any:
            return LiveFrames(store, MemoryFrameCache()).get(SPEC).frame

        frame = cold()
        t_cold = median_seconds(cold, 3)
    models = [MODELS[i % len(MODELS)] for i in range(len(frame))]
    frame = frame.assign(model=frame["model"].where(frame["model"].isna(), models))
    prices = {"acme-large": {"input": 1.0, "output": 2.0, "cached_input": 0.25}}

    def priced() -> Any:
        # A table of its own each time: its model lookups are part of the cost.
        return PriceTable(prices).priced(frame)

    t_priced = median_seconds(priced, 5)
    return len(frame), t_cold, t_priced


def main() -> None:
    rows, session_rows, t_messages, t_sessions, ratio = cold_loads()
    report(
        f"(a) cold load of {rows:,} messages, one per document vs five per session document "
        "(medians of 5 interleaved rounds)",
        [
            ("one per document", f"{t_messages:.2f} s"),
            (f"session documents ({session_rows:,} messages)", f"{t_sessions:.2f} s"),
            ("ratio", f"{ratio:.2f}x (goal <= 1.3x)"),
        ],
    )
    priced_rows, t_cold, t_priced = pricing()
    report(
        f"(b) pricing {priced_rows:,} messages over {len(MODELS)} models",
        [
            ("cold load from the embedded store", f"{t_cold:.2f} s"),
            ("PriceTable.priced", f"{t_priced * 1000:.0f} ms"),
            ("share of the cold load", f"{t_priced / t_cold:.1%} (goal <= 10%)"),
        ],
    )


if __name__ == "__main__":
    main()
