"""No Docker engine runs here: check the compose file's services point at real entry points."""
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
APP_SERVICES = ["migrate", "web", "worker", "suite-worker", "beat"]


def test_production_services_are_all_there_with_healthchecks():
    services = COMPOSE["services"]
    assert {"postgres", "redis", *APP_SERVICES} <= set(services)
    for name in ["postgres", "redis", "web", "worker", "suite-worker", "beat"]:
        assert services[name]["healthcheck"]["test"], name
    assert "data:/data" in services["worker"]["volumes"]
    assert services["worker"]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert services["worker"]["environment"]["CELERY_BROKER_URL"].startswith("redis://")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_service_command_exists(name):
    command = COMPOSE["services"][name]["command"]
    exe = command[0]
    found = shutil.which(exe, path=str(Path(sys.executable).parent)) or shutil.which(exe)
    assert found, f"{name}: {exe} not installed"
    if exe == "gunicorn":
        module, _, attr = command[1].partition(":")
        assert hasattr(importlib.import_module(module), attr)
    elif exe == "celery":
        help_ = subprocess.run([found, "-A", command[2], command[3], "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=60)
        assert help_.returncode == 0, help_.stderr
    elif command[1] == "manage.py":
        help_ = subprocess.run([sys.executable, "manage.py", command[2], "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=60)
        assert help_.returncode == 0, help_.stderr
