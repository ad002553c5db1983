"""The two commands of the README: what `make run` and `make test` would install and run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def planned(target: str, venv: Path) -> list[str]:
    """The commands ``make TARGET`` runs from scratch into a new virtualenv (none is run)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # As a user types it, not as a make of its own: `make test` runs this test.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(
        ["make", "--dry-run", "--always-make", target, f"VENV={venv}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_make_run_installs_the_dashboard_without_the_dev_tools(tmp_path: Path) -> None:
    commands = planned("run", tmp_path / "venv")
    installs = [c for c in commands if "pip install" in c and "--upgrade pip" not in c]
    assert installs == [f"{tmp_path / 'venv'}/bin/python -m pip install --quiet -e ."]
    assert commands[-1] == f"{tmp_path / 'venv'}/bin/agentdash serve"


@pytest.mark.parametrize("target", ["test", "bench"])
def test_make_test_and_bench_install_the_dev_extra(tmp_path: Path, target: str) -> None:
    commands = planned(target, tmp_path / "venv")
    assert f'{tmp_path / "venv"}/bin/python -m pip install --quiet -e ".[dev]"' in commands


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    assert script[-1] == "make test"
    assert "make test    # " in (ROOT / "README.md").read_text()
