"""Fault drill: the Redis broker (a private redis-server on a free port, never the
shared one) is killed and restarted while a fetch runs through a real worker.

The fetch ends recorded (done, one attempt); the worker reconnects and takes the
next task; fetching the same thread again stores nothing twice.
"""
import shutil
import socket
import subprocess
import time

import pytest

from reviewapp.models import FetchRequest, Message, Revision
from reviewapp.services import fetch
from tests.conftest import wait_for
from worker import tasks
from worker.celery import app

UFFD_V3 = "20250404154352.23078-1-kalyazin@amazon.com"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    def __init__(self, port: int, tmp):
        self.port, self.tmp, self.proc = port, tmp, None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/install-system-deps)")
    server = PrivateRedis(_free_port(), tmp_path)
    server.start()
    yield server
    if server.proc.poll() is None:
        server.kill()


def _send(task, url: str, *args) -> None:
    with app.connection_for_write(url) as conn:
        task.apply_async(args, connection=conn)


def test_redis_restarted_during_a_fetch_the_fetch_ends_done_once_and_the_worker_goes_on(
        lore_inbox, settings, private_redis, celery_worker_proc_factory):
    settings.LORE_URL = lore_inbox.url
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    settings.CELERY_BROKER_URL = url
    worker = celery_worker_proc_factory()

    first = fetch.request_fetch(f"<{UFFD_V3}>")
    _send(tasks.fetch_thread, url, first.id)
    wait_for(lambda: FetchRequest.objects.filter(id=first.id).exclude(state="queued").exists(),
             timeout=60, interval=0.01)
    private_redis.kill()  # mid-fetch: the worker loses its broker (and the ack of this task)
    time.sleep(1)
    private_redis.start()  # empty: whatever Redis held is gone, the rows are the record

    done = wait_for(lambda: FetchRequest.objects.filter(id=first.id, state__in=["done", "failed"]).first(),
                    timeout=90)
    assert done.state == "done" and done.attempts == 1, done.error + worker.log()
    mails = Message.objects.count()
    assert Revision.objects.get(msgid=UFFD_V3).received == 6

    again = fetch.request_fetch(f"<{UFFD_V3}>")
    deadline = time.monotonic() + 60
    while True:  # the worker reconnects on its own; until then a send may be refused
        try:
            _send(tasks.fetch_thread, url, again.id)
            break
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    redone = wait_for(lambda: FetchRequest.objects.filter(id=again.id, state__in=["done", "failed"]).first(),
                      timeout=120)
    assert redone.state == "done", redone.error + worker.log()
    assert Message.objects.count() == mails  # nothing twice
    assert FetchRequest.objects.filter(state="running").count() == 0
