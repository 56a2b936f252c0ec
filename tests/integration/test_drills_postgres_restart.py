"""Fault drill: a private PostgreSQL cluster (initdb into a tmp dir, a free port, never the
shared server) is stopped hard in the middle of an import and started again.

The import ends with an error (recorded: its exit status and message), the batches it
committed stay, and re-running the same import stores exactly the rest: nothing lost,
nothing twice (every mail once, duplicates = what the first run had stored).
"""
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.archive_slice import write_slice

pytestmark = pytest.mark.slow
MAILS = 3000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PrivateCluster:
    """initdb + pg_ctl as an unprivileged user (PostgreSQL refuses to run as root)."""

    def __init__(self, bindir: Path, root: Path):
        self.bin, self.root, self.port = bindir, root, _free_port()
        self.data, self.log = root / "data", root / "pg.log"
        self.user = "postgres" if os.geteuid() == 0 else None
        root.mkdir(parents=True, exist_ok=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(root, pw.pw_uid, pw.pw_gid)
            os.chmod(root.parent, 0o755)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop_hard(self) -> None:
        """The server goes away as in a crash: no checkpoint, open connections cut."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def query(self, db: str, sql: str):
        import psycopg
        with psycopg.connect(self.url(db), connect_timeout=5) as conn:
            return conn.execute(sql).fetchone()


@pytest.fixture
def cluster(tmp_path):
    bindir = _pg_bin()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("no PostgreSQL server binaries (initdb) to start a private cluster")
    # Its own dir under /tmp: pytest's tmp_path is private to root, the server user could not enter it.
    root = Path(tempfile.mkdtemp(prefix="reviewapp-pg-drill-"))
    try:
        c = PrivateCluster(bindir, root / "pg")
        c.start()
        yield c
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(c.data), "-m", "immediate", "stop"],
                       capture_output=True, **({"user": c.user} if c.user else {}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _manage(url: str, data_dir: Path, *args: str, stdout=subprocess.PIPE):
    env = dict(os.environ, DATABASE_URL=url, REVIEWAPP_DATA_DIR=str(data_dir))
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                            stdout=stdout, stderr=subprocess.PIPE, text=True)


def test_postgres_stopped_mid_import_and_restarted_loses_nothing_and_stores_nothing_twice(cluster, tmp_path):
    cluster.query("postgres", "SELECT 1")
    import psycopg
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE drill")
    url = cluster.url("drill")
    migrate = _manage(url, tmp_path, "migrate", "--noinput", "-v", "0")
    assert migrate.communicate(timeout=300) and migrate.returncode == 0
    mbox = write_slice(tmp_path / "slice.mbox", 0, MAILS)

    first = _manage(url, tmp_path, "ingest", "--mbox", str(mbox), "--list", "linux-kselftest",
                    stdout=subprocess.DEVNULL)  # polled, not read: a full pipe would block it
    deadline = time.monotonic() + 300
    stored_when_stopped = 0
    while stored_when_stopped == 0:  # stop it as soon as a batch is committed, not before
        assert first.poll() is None, "the import ended before the server could be stopped: " + first.stderr.read()
        assert time.monotonic() < deadline, "no batch committed in 300 s"
        try:
            stored_when_stopped = cluster.query("drill", "SELECT count(*) FROM reviewapp_message")[0]
        except psycopg.OperationalError:
            pass
        time.sleep(0.05)
    cluster.stop_hard()
    out, err = first.communicate(timeout=120)
    assert first.returncode != 0  # the import says it failed, it does not pretend
    assert "connection" in err.lower() or "server" in err.lower(), err[-2000:]

    cluster.start()
    kept = cluster.query("drill", "SELECT count(*), count(DISTINCT msgid) FROM reviewapp_message")
    assert kept[0] == kept[1] >= stored_when_stopped > 0  # committed batches survived the crash
    assert kept[0] < MAILS  # it really was stopped mid-import

    second = _manage(url, tmp_path, "ingest", "--mbox", str(mbox), "--list", "linux-kselftest", "--json")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-2000:]
    counts = json.loads(out)["counts"]
    assert counts["read"] == MAILS
    assert counts["duplicate"] >= kept[0]  # what the first run stored is not stored again
    assert counts["stored"] + counts["duplicate"] + counts["quarantined"] == MAILS
    total, distinct = cluster.query("drill", "SELECT count(*), count(DISTINCT msgid) FROM reviewapp_message")
    assert total == distinct == kept[0] + counts["stored"]  # nothing twice

    # Nothing lost: the same mails as an import nobody interrupted.
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE clean TEMPLATE template0")
    for args in (("migrate", "--noinput", "-v", "0"),
                 ("ingest", "--mbox", str(mbox), "--list", "linux-kselftest", "--json")):
        proc = _manage(cluster.url("clean"), tmp_path, *args)
        _, err = proc.communicate(timeout=600)  # read the pipes, or a long output blocks the child
        assert proc.returncode == 0, err[-2000:]
    sql = "SELECT md5(string_agg(msgid, ',' ORDER BY msgid)), count(*) FROM reviewapp_message"
    assert cluster.query("drill", sql) == cluster.query("clean", sql)
    sql = "SELECT count(*), count(DISTINCT msgid) FROM reviewapp_revision"
    assert cluster.query("drill", sql) == cluster.query("clean", sql)
