"""The deployment files: lint-clean, valid, and safe by default.

No container engine runs here: the image is linted (hadolint), the compose file
validated and rendered (``docker-compose config``), and what they ship checked.
The same topology runs for real, without containers, in test_multiprocess.py.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from pipelines.settings import Settings

ROOT = Path(__file__).parents[2]
SHIPPED = [
    ROOT / "Dockerfile",
    ROOT / "docker-compose.yml",
    ROOT / ".env.example",
    ROOT / "nginx" / "agentdash.conf.template",
    *sorted((ROOT / "deploy").rglob("*.*")),
]
TOML_ONLY = {
    "notifiers",  # [notifiers.NAME] and [[schedules]]: tables, in the file (or AGENTDASH_ALERTS')
    "schedules",
    "fields",
    "teams",
    "containers",
    "prices",
    "model_aliases",
    "dimensions",
}  # tables of the AGENTDASH_CONFIG file, not variables


def test_the_dockerfiles_pass_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    for dockerfile in ("Dockerfile", "deploy/report.Dockerfile"):
        result = subprocess.run(
            [str(hadolint), "--no-color", dockerfile], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_unprivileged_and_probes_liveness() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2  # build, then run
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"HEALTHCHECK .*\n.*/health/live", dockerfile)


def compose(tmp_path: Path, *args: str) -> str:
    """``docker-compose ARGS`` on the project's files, .env.example as its .env."""
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    shutil.copytree(ROOT / "nginx", tmp_path / "nginx")
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: run `make system-deps`"
    result = subprocess.run(
        [binary, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compose_validates_with_sign_in_on_behind_nginx(tmp_path: Path) -> None:
    config: dict[str, Any] = yaml.safe_load(compose(tmp_path, "config"))
    services = config["services"]
    assert {"redis", "app1", "app2", "nginx"} <= set(services)
    for name in ("app1", "app2"):
        app = services[name]
        assert app["environment"]["AGENTDASH_AUTH"] == "basic"
        # docker-compose 1.x renders short volume syntax, 2.x long syntax.
        mounted = {v["target"] if isinstance(v, dict) else v.split(":")[1] for v in app["volumes"]}
        assert app["environment"]["AGENTDASH_USERS_FILE"] in mounted
        assert app["environment"]["AGENTDASH_ALLOWED_ORIGINS"] == "localhost:8080"
        assert app["environment"]["AGENTDASH_REDIS_URL"].startswith("redis://redis:")
    assert "app1:5006" in services["nginx"]["environment"]["AGENTDASH_UPSTREAMS"]
    # The emulator comes with its profile only (which docker-compose 1.x leaves out of config).
    written = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert written["cosmos"]["profiles"] == ["cosmos"]
    assert services["cosmos"]["image"].startswith("mcr.microsoft.com/cosmosdb/")


def test_no_shipped_file_allows_any_origin() -> None:
    for path in SHIPPED:
        text = path.read_text()
        assert not re.search(r"(allow-websocket-origin|ORIGINS)[ =:\"',]*\*", text), path


def test_the_example_environment_lists_every_setting() -> None:
    listed = set(
        re.findall(r"^#?\s*(AGENTDASH_[A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    settings = {f"AGENTDASH_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    assert settings - {f"AGENTDASH_{name.upper()}" for name in TOML_ONLY} <= listed
    assert "AGENTDASH_CONFIG" in listed
