"""Every notebook runs top to bottom on the embedded store, as in a fresh checkout."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the notebooks' store goes: absent, so the first notebook seeds the demo data."""
    return tmp_path_factory.mktemp("notebooks") / "agentdash.db"


def test_every_notebook_is_here_and_stripped() -> None:
    assert {path.stem for path in NOTEBOOKS} >= {"quickstart", "latency_deep_dive", "custom_view"}
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name} was saved with outputs"
                assert cell.execution_count is None, f"{path.name} was saved with counts"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_notebook_runs_without_error(
    path: Path, store: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("AGENTDASH_LOCAL_PATH", str(store))  # the kernel inherits the environment
    notebook = nbformat.read(path, as_version=4)
    # "python3" is the kernel of the interpreter running the tests (ipykernel's own spec),
    # whether or not a kernelspec is installed; a failing cell raises CellExecutionError.
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
