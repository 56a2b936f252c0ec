"""Shared fixtures: the real mails beside the repo, a data dir per test, named actors,
the demo story, the test kernel."""
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lore_dir() -> Path:
    from tests.support.shared import LORE, require

    return require(LORE)


@pytest.fixture
def data_dir(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    return settings.DATA_DIR


@pytest.fixture(scope="session")
def kernel() -> Path:
    """The guest kernel from scripts/fetch-kernel (downloaded once, then reused)."""
    if not shutil.which("qemu-system-x86_64"):
        pytest.fail("qemu-system-x86_64 missing: run scripts/install-system-deps")
    proc = subprocess.run([str(REPO / "scripts" / "fetch-kernel")], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file()
    return path


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory) -> Path:
    """The published demo tree, built once per session (fixed shas)."""
    from tests.support.demo import build_demo_source
    return build_demo_source(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def demo(data_dir, demo_source):
    """The demo story loaded: its mails ingested and its tree registered as `demo` (no runs)."""
    from reviewapp.services import trees
    from tests.support.demo import ingest_demo_mails
    ingest_demo_mails()
    return trees.add_tree("demo", str(demo_source))


@pytest.fixture
def demo_reviewed(demo):
    """The demo with what the worker stores after its mail: graphs and review state."""
    from reviewapp.models import Revision
    from reviewapp.services import review
    from reviewapp.services.graph import compute_missing
    ids = list(Revision.objects.values_list("id", flat=True))
    compute_missing(ids)
    review.recompute(ids)
    return demo


def _database_url(db: dict) -> str:
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    def __init__(self, proc, queue, log_path):
        self.proc, self.queue, self.log_path = proc, queue, log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def celery_worker_proc(celery_worker_proc_factory):
    """A real `celery worker` process on the test database, consuming a queue of its own."""
    return celery_worker_proc_factory()


@pytest.fixture
def celery_worker_proc_factory(settings, transactional_db, tmp_path, data_dir):
    """Starts a worker when called, so a test can adjust settings first. By default each
    worker has queues of its own; workers given one `prefix` share them (hosts of one
    deployment), each serving the `roles` it is given, on its own `data_dir` if given."""
    workers = []

    def start(prefix: str | None = None, roles: tuple[str, ...] | None = None, data_dir: Path | None = None,
              name: str = "worker", env: dict | None = None, host=None):
        gen = _worker(settings, tmp_path, prefix, roles, data_dir, name, env or {}, host)
        worker = next(gen)
        workers.append(gen)
        return worker
    yield start
    for gen in workers:
        gen.close()


def _route_tasks(app, default_queue: str, routes: dict) -> None:
    # Celery caches its router and queues on first use; drop them so the new names apply.
    app.conf.task_default_queue = default_queue
    app.conf.task_routes = routes
    for cached in ("router", "default_queue", "queues"):
        app.amqp.__dict__.pop(cached, None)
    app.amqp._rtable = None


def _worker(settings, tmp_path, prefix, roles, data_dir, name, extra_env, host=None):
    import os
    import subprocess
    import sys
    import time
    import uuid

    from django.db import connection

    from reviewapp import tasknames
    from worker.celery import app

    prefix = prefix or f"test-{uuid.uuid4().hex[:8]}-"
    _route_tasks(app, prefix + "ingest", tasknames.routes(prefix))
    queues = [prefix + r for r in roles] if roles else tasknames.queues(prefix)
    env = dict(os.environ,
               DATABASE_URL=_database_url(connection.settings_dict),
               REVIEWAPP_DATA_DIR=str(data_dir or settings.DATA_DIR),
               LORE_URL=settings.LORE_URL,
               CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
               SMTP_HOST=settings.SMTP["host"], SMTP_PORT=str(settings.SMTP["port"]),
               REVIEWAPP_KERNEL=str(settings.KERNEL_IMAGE),
               REVIEWAPP_FETCH_MAX_RETRIES=str(settings.FETCH_MAX_RETRIES),
               REVIEWAPP_LEASE_S=str(settings.LEASE_S),
               REVIEWAPP_LEASE_HEARTBEAT_S=str(settings.LEASE_HEARTBEAT_S),
               REVIEWAPP_LEASE_MAX_REQUEUES=str(settings.LEASE_MAX_REQUEUES),
               REVIEWAPP_SUITE_AFTER_APPLY=str(settings.SUITE_AFTER_APPLY).lower(),
               REVIEWAPP_QUEUE_PREFIX=prefix, **extra_env)
    if host is not None:  # tests/support/netns.py: the shared services as that host reaches them
        env.update(DATABASE_URL=host.url(env["DATABASE_URL"]), CELERY_BROKER_URL=host.url(env["CELERY_BROKER_URL"]))
    log_path = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        argv = [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", ",".join(queues), "--pool", "solo",
                "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        proc = subprocess.Popen(
            host.argv(argv) if host is not None else argv,
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    worker = WorkerProcess(proc, prefix, log_path)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in worker.log():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{worker.log()}")
            time.sleep(0.2)
        yield worker
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        _route_tasks(app, settings.CELERY_TASK_DEFAULT_QUEUE, settings.CELERY_TASK_ROUTES)


def wait_for(predicate, timeout=60.0, interval=0.2):
    """Poll until predicate() is truthy; returns its value or fails the test."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {predicate}")


from tests.support.browser import page  # noqa: E402,F401
from tests.support.public_inbox import lore_inbox  # noqa: E402,F401


KERNEL_TESTS_ENV = "REVIEWAPP_KERNEL_TESTS"


def pytest_collection_modifyitems(config, items):
    """Real kernel builds run in `make test` (CI builds and boots them; ccache and the kernel
    cache under var/ make CI's second pass cheap). REVIEWAPP_KERNEL_TESTS=0 leaves them out
    (deselected, and the summary says so) for a quick local run."""
    import os
    value = os.environ.get(KERNEL_TESTS_ENV, "1")
    if value not in ("0", "1"):
        raise pytest.UsageError(f"{KERNEL_TESTS_ENV} must be 0 or 1, not {value!r}")
    if value == "1":
        return
    dropped = [i for i in items if i.get_closest_marker("kernel_build")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if not i.get_closest_marker("kernel_build")]
        config._kernel_tests_dropped = len(dropped)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    dropped = getattr(config, "_kernel_tests_dropped", 0)
    if dropped:
        terminalreporter.write_line(f"{dropped} real-kernel build test(s) left out by "
                                    f"{KERNEL_TESTS_ENV}=0")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with empty Django caches (the series list caches its count, and
    pages are stored per generation, which a test's rollback sets back)."""
    from django.core.cache import caches
    for alias in caches:
        caches[alias].clear()
    yield
