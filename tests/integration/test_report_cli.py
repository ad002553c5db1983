"""``agentdash report``: the file it writes, and the exit codes a scheduler acts on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import panel as pn
import pytest

from app.cli import main
from app.report import METADATA_ID, ExitCode
from pipelines import demo
from pipelines.sources.local import PARTITION_KEYS, LocalSource
from tests.conftest import free_port
from tests.cosmos_standin import EMULATOR_KEY, CosmosStandin

AGENTS, MESSAGES = demo.generate(8, 20_000, days=15, seed=5)
MESSAGE_ID = re.compile(r"m-[0-9a-f]{16}")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local store holding 15 days of demo messages: a week and the week before."""
    path = tmp_path_factory.mktemp("report") / "store.db"
    source = LocalSource(path)
    source.upsert("agents", AGENTS)
    source.upsert("messages", MESSAGES)
    source.close()
    return path


@pytest.fixture
def env(clean_env: pytest.MonkeyPatch, store: Path) -> pytest.MonkeyPatch:
    """No AGENTDASH_* setting from outside the test; the demo store as the source."""
    monkeypatch = clean_env
    monkeypatch.setenv("AGENTDASH_SOURCE", "local")
    monkeypatch.setenv("AGENTDASH_LOCAL_PATH", str(store))
    return monkeypatch


def provenance(page: str) -> dict[str, object]:
    """The JSON a report file carries about how it was built."""
    found = re.search(
        rf'<script type="application/json" id="{METADATA_ID}">(.*?)</script>', page, re.S
    )
    assert found is not None, "the report carries no provenance"
    result: dict[str, object] = json.loads(found[1])
    return result


def test_the_report_is_one_file_of_aggregates_that_says_how_it_was_built(
    env: pytest.MonkeyPatch, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"

    assert main(["report", "--window", "7d", "--out", str(out)]) == ExitCode.OK

    page = out.read_text()
    assert out.stat().st_size < 5e6
    assert "cdn.holoviz.org" not in page
    assert not re.search(r"<link[^>]+href=\"https?:", page), "a stylesheet or icon is linked"
    assert not MESSAGE_ID.search(page), "per-message data in the report"
    built = provenance(page)
    start, end = pd.Timestamp(str(built["start"])), pd.Timestamp(str(built["end"]))
    frame = pd.DataFrame(MESSAGES)
    stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    assert built["rows"] == {
        # A 7d window is answered from hourly rollups: its numbers are of whole hours.
        "messages": int(
            stamps.between(
                start.floor("h"), end.floor("h") + pd.Timedelta(hours=1), inclusive="left"
            ).sum()
        ),
        "previous_messages": int(
            stamps.between(
                (start - (end - start)).floor("h"),
                start.floor("h") + pd.Timedelta(hours=1),
                inclusive="left",
            ).sum()
        ),
        "agents": len(AGENTS),
        "quarantined": 0,
    }
    assert end - start == pd.Timedelta(days=7)
    assert built["source"] == f"local:{store.resolve()}"
    assert built["window"] == "7d" and built["tz"] == "UTC"
    assert built["agentdash_version"] == version("agentdash")
    assert pd.Timestamp(str(built["latest_message"])) <= end <= pd.Timestamp(str(built["read_at"]))
    assert pd.Timestamp(str(built["built_at"])) >= end
    assert f"wrote {out}" in capsys.readouterr().out


def test_agents_by_name_time_zone_and_title_shape_the_report(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    router = next(a for a in AGENTS if a["kind"] == "router")
    out = tmp_path / "router.html"
    args = ["--agents", router["name"], "--tz", "Europe/Paris", "--title", "Router week"]

    assert main(["report", "--out", str(out), *args]) == ExitCode.OK

    page = out.read_text()
    built = provenance(page)
    assert built["filters"] == {"agents": [router["id"]]}
    assert built["tz"] == "Europe/Paris"
    assert "<title>Router week</title>" in page


def test_an_added_section_is_saved_with_the_others(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import holoviews as hv

    from app.report import Report
    from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline
    from pipelines.settings import load_settings

    backend = LiveFrames.from_settings(load_settings())
    messages = MessagesPipeline(frames=backend, window="7d")
    report = Report(messages, AgentsPipeline(frames=backend), title="With extras")
    report.add("Turns per conversation", hv.Histogram(([0, 1, 2], [3, 4])))

    saved = report.save(tmp_path / "extra.html")

    assert "Turns per conversation" in saved.read_text()


def test_a_fixed_window_and_dated_file_name(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - pd.Timedelta(days=2)
    out = tmp_path / "reports" / "agents-%Y-%m-%d.html"

    args = ["--start", start.isoformat(), "--end", end.isoformat(), "--out", str(out)]
    assert main(["report", *args]) == ExitCode.OK

    written = tmp_path / "reports" / datetime.now(UTC).strftime("agents-%Y-%m-%d.html")
    built = provenance(written.read_text())
    assert (built["window"], built["start"], built["end"]) == (
        "custom",
        start.isoformat(),
        end.isoformat(),
    )
    assert list(written.parent.iterdir()) == [written], "a partial file was left behind"


def test_an_empty_store_exits_3_and_gets_no_demo_data(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.db"
    LocalSource(empty).close()
    env.setenv("AGENTDASH_LOCAL_PATH", str(empty))
    out = tmp_path / "report.html"

    # As a scheduler runs it: a process, its exit status and its stderr.
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "report", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == ExitCode.NO_DATA == 3
    assert "agentdash: error: no messages from" in result.stderr
    assert "nothing to report" in result.stderr
    assert not out.exists()
    assert LocalSource(empty).is_empty("messages")


def test_a_missing_store_exits_2_and_is_not_created(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "store.db"
    env.setenv("AGENTDASH_LOCAL_PATH", str(missing))

    assert main(["report", "--out", str(tmp_path / "r.html")]) == ExitCode.CONFIG_OR_SOURCE

    assert f"there is no local store at {missing}" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_an_unreachable_cosmos_account_exits_2(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("AGENTDASH_SOURCE", "cosmos")
    env.setenv("AGENTDASH_COSMOS_ENDPOINT", f"http://127.0.0.1:{free_port()}/")  # nobody listens
    env.setenv("AGENTDASH_COSMOS_KEY", EMULATOR_KEY)
    env.setenv("AGENTDASH_COSMOS_DATABASE", "agentdash")

    assert main(["report", "--out", str(tmp_path / "r.html")]) == ExitCode.CONFIG_OR_SOURCE

    assert "cannot reach Cosmos DB" in capsys.readouterr().err


@pytest.fixture
def cosmos(env: pytest.MonkeyPatch) -> Iterator[CosmosStandin]:
    """Settings pointing at stand-in containers holding the demo agents and messages."""
    with CosmosStandin() as standin:
        for container, docs in (("agents", AGENTS), ("messages", MESSAGES)):
            name = f"{container}-{uuid.uuid4().hex[:8]}"
            standin.create_container("agentdash", name, pk_path="/" + PARTITION_KEYS[container])
            standin.upsert("agentdash", name, docs)
            env.setenv(f"AGENTDASH_COSMOS_{container.upper()}_CONTAINER", name)
        env.setenv("AGENTDASH_SOURCE", "cosmos")
        env.setenv("AGENTDASH_COSMOS_ENDPOINT", standin.url)
        env.setenv("AGENTDASH_COSMOS_KEY", standin.key)
        env.setenv("AGENTDASH_COSMOS_DATABASE", "agentdash")
        yield standin


def test_a_report_of_a_cosmos_account(cosmos: CosmosStandin, tmp_path: Path) -> None:
    out = tmp_path / "cosmos.html"

    assert main(["report", "--window", "24h", "--out", str(out)]) == ExitCode.OK

    built = provenance(out.read_text())
    assert str(built["source"]).startswith(f"cosmos:{cosmos.url.rstrip('/')}/agentdash")
    assert built["rows"]["messages"] > 0  # type: ignore[index]


@pytest.mark.ui
@pytest.mark.parametrize(
    ("fmt", "paper", "magic"),
    [("pdf", "a4", b"%PDF-"), ("pdf", "letter", b"%PDF-"), ("png", "a4", b"\x89PNG\r\n\x1a\n")],
)
def test_pdf_and_png_through_headless_chromium(
    env: pytest.MonkeyPatch, tmp_path: Path, fmt: str, paper: str, magic: bytes
) -> None:
    out = tmp_path / f"report.{fmt}"

    assert main(["report", "--format", fmt, "--paper", paper, "--out", str(out)]) == ExitCode.OK

    content = out.read_bytes()
    assert content.startswith(magic)
    assert len(content) > 50_000, "too small to hold the charts"
    if fmt == "png":
        from PIL import Image

        with Image.open(out) as image:
            assert image.width == 1280 and image.height > 1500
    else:
        # Every page of the paper asked for, in points: A4 is 210 x 297 mm, Letter 8.5 x 11 in.
        size = {"a4": (595, 842), "letter": (612, 792)}[paper]
        boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", content)
        assert boxes and {(round(float(w)), round(float(h))) for w, h in boxes} == {size}


def test_a_printed_report_leaves_out_what_only_a_browser_can_use(env: pytest.MonkeyPatch) -> None:
    from bokeh.models import Plot

    from app.report import Report
    from app.report.document import HELP
    from pipelines.settings import load_settings

    report = Report.from_settings(load_settings(), window="7d")
    for printed in (False, True):
        layout = report.layout(printed=printed)
        # The KPI cards are a Bokeh Div; the charts, figures.
        figures = [p.object for p in layout.select(pn.pane.Bokeh) if isinstance(p.object, Plot)]
        assert len(figures) == 4  # volume, latency, its distribution, cost
        tables = layout.select(pn.widgets.Tabulator)
        text = " ".join(str(pane.object) for pane in layout.select(pn.pane.Markdown))
        toolbars = {f.toolbar_location for f in figures}
        assert toolbars == ({None} if printed else {"above"})
        assert {t.sortable for t in tables} == {not printed}
        assert (HELP in text) is not printed


def test_without_chromium_pdf_exits_4_and_says_what_to_install(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("PATH", str(tmp_path))  # a PATH where no Chromium lives
    out = tmp_path / "report.pdf"

    assert main(["report", "--out", str(out)]) == ExitCode.RENDERER_MISSING == 4

    err = capsys.readouterr().err
    assert "PDF and PNG need Chromium" in err and "apt-get install chromium" in err
    assert not out.exists()


def test_window_and_start_together_are_refused(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["report", "--window", "7d", "--start", "2025-01-01T00:00:00Z"]

    assert main(args) == ExitCode.CONFIG_OR_SOURCE

    assert "give --window or --start (and --end), not both" in capsys.readouterr().err
