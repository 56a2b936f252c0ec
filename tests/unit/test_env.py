import os
import subprocess
import sys

import pytest

from reviewapp.env import ConfigError, database_from_url, env_bool, env_int, env_url
from tests.conftest import REPO


def test_postgres_url_gives_postgres_settings():
    db = database_from_url("postgres://root:s%40cret@127.0.0.1:5432/test")
    assert db["OPTIONS"] == {"options": "-c jit=off"}  # no JIT for the pages' short queries
    assert (db["ENGINE"], db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == \
        ("django.db.backends.postgresql", "test", "root", "s@cret", "127.0.0.1", "5432")


def test_sqlite_url_absolute_path():
    assert database_from_url("sqlite:////tmp/x.db")["NAME"] == "/tmp/x.db"


def test_unknown_database_scheme_is_refused():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        database_from_url("mysql://x/y")


@pytest.mark.parametrize("raw", ["maybe", "2", "TRUE!"])
def test_booleans_are_parsed_strictly(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    with pytest.raises(ConfigError, match="X_FLAG"):
        env_bool("X_FLAG", False)


def test_integers_are_parsed_strictly(monkeypatch):
    monkeypatch.setenv("X_INT", "12abc")
    with pytest.raises(ConfigError):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_INT", "-1")
    with pytest.raises(ConfigError, match="at least 0"):
        env_int("X_INT", 1, minimum=0)


def test_url_scheme_is_checked(monkeypatch):
    monkeypatch.setenv("LORE_URL", "ftp://lore")
    with pytest.raises(ConfigError, match="LORE_URL"):
        env_url("LORE_URL", "https://lore.kernel.org/all", ("http", "https"))


def test_a_bad_setting_stops_start_up_with_its_name():
    env = dict(os.environ, REVIEWAPP_GRAPH_DEPTH="deep")
    proc = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "REVIEWAPP_GRAPH_DEPTH" in proc.stderr
