"""No Docker engine runs here: check the compose file's services point at real entry points,
one worker service per queue role, and nothing but the database and broker shared."""
import importlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reviewapp import tasknames

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
WORKERS = list(tasknames.ROLES)  # ingest, apply, kernel, mail
APP_SERVICES = ["migrate", "web", *WORKERS, "beat"]


def _argv(name: str) -> list[str]:
    command = COMPOSE["services"][name]["command"]
    if command[:2] == ["sh", "-c"]:  # the web: a background step, then exec the server
        return shlex.split(command[2].split("exec ", 1)[1])
    return command


def test_production_services_are_all_there_with_healthchecks():
    services = COMPOSE["services"]
    assert {"postgres", "redis", *APP_SERVICES} <= set(services)
    for name in ["postgres", "redis", "web", *WORKERS, "beat"]:
        assert services[name]["healthcheck"]["test"], name
    for name in WORKERS:
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
        assert services[name]["environment"]["CELERY_BROKER_URL"].startswith("redis://")


@pytest.mark.parametrize("role", WORKERS)
def test_each_worker_service_serves_its_role_queue_and_can_be_scaled(role):
    service = COMPOSE["services"][role]
    argv = service["command"]
    assert argv[argv.index("-Q") + 1] == role
    assert "container_name" not in service and "ports" not in service  # --scale makes replicas
    # Nothing shared between hosts but PostgreSQL and the broker: no named volume of a worker's.
    assert all(":" not in v for v in service["volumes"]), service["volumes"]


def test_the_web_keeps_its_own_mirrors_and_catches_them_up_at_start():
    web = COMPOSE["services"]["web"]
    assert web["volumes"] == ["webdata:/data"]
    assert "manage.py tree local" in web["command"][2]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_service_command_exists(name):
    command = _argv(name)
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


def test_the_webs_start_step_is_a_real_command():
    help_ = subprocess.run([sys.executable, "manage.py", "tree", "local", "--help"], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and "published" in help_.stdout, help_.stderr
