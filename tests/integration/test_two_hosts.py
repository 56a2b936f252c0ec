"""Web and workers that share only the database and the broker (docs/deploy.md).

A web process (gunicorn) and worker processes, each on a data directory of its own that no
other sees and, where the machine allows, in a network namespace of its own reaching
PostgreSQL and Redis over a veth pair (tests/support/netns.py): what one host makes reaches
the others through the database alone. The broker (Redis, or the filesystem transport's
folders outside every data directory) and the tree's upstream repository are what real
hosts share too.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token

from reviewapp.models import ApplyRun, ChainBundle, Patch, SuiteRun
from reviewapp.permissions import MAINTAINERS
from reviewapp.services import trees
from tests.conftest import REPO, _database_url, wait_for
from tests.support import netns
from tests.support.demo import ingest_demo_mails

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prefix() -> str:
    """The deployment's queue names: every host of the test sends to and serves these."""
    return f"hosts-{uuid.uuid4().hex[:8]}-"


HOSTS = ["web-host", "apply-host-1", "apply-host-2", "kernel-host"]


@pytest.fixture
def network():
    net = netns.make(HOSTS, ports=(5432, 6379))  # PostgreSQL and Redis, relayed to each host
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def web_host(settings, tmp_path, prefix, network):
    """A web process on a data directory (and a network) of its own, serving on a free port."""
    from django.db import connection
    host = network.hosts["web-host"]
    data = tmp_path / "web-host"
    data.mkdir()
    port = _free_port()
    env = dict(os.environ, DATABASE_URL=host.url(_database_url(connection.settings_dict)),
               REVIEWAPP_DATA_DIR=str(data), CELERY_BROKER_URL=host.url(settings.CELERY_BROKER_URL),
               REVIEWAPP_QUEUE_PREFIX=prefix, ALLOWED_HOSTS=f"{host.inside},127.0.0.1")
    log = open(tmp_path / "web.log", "wb")
    proc = subprocess.Popen(host.argv([str(Path(sys.executable).parent / "gunicorn"), "reviewapp.wsgi:application",
                                       "--bind", f"{host.inside}:{port}", "--workers", "2", "--timeout", "120"]),
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{host.inside}:{port}"
    try:
        wait_for(lambda: _up(url), timeout=120)
        yield url, data
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _up(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:  # not listening yet, or still starting (slow on a busy machine)
        return False


def _maintainer_token() -> dict:
    user = User.objects.create_user("max", password="x")
    user.groups.add(Group.objects.get_or_create(name=MAINTAINERS)[0])
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


def _sigkill(worker) -> None:
    os.killpg(worker.proc.pid, signal.SIGKILL)  # the host is gone: no finally, no ack
    worker.proc.wait(timeout=20)


def test_an_apply_on_one_host_a_suite_on_another_and_the_web_on_a_third_see_each_others_work(
        settings, tmp_path, demo_source, kernel, prefix, network, web_host, celery_worker_proc_factory):
    settings.KERNEL_IMAGE = str(kernel)
    settings.SUITE_AFTER_APPLY = False
    settings.LEASE_HEARTBEAT_S, settings.LEASE_S, settings.LEASE_MAX_REQUEUES = 1, 3, 1
    ingest_demo_mails()
    trees.register_tree("demo", str(demo_source))  # no host has a mirror yet
    web, web_data = web_host
    auth = _maintainer_token()
    dirs = {name: tmp_path / name for name in ("apply-host-1", "apply-host-2", "kernel-host")}
    for d in dirs.values():
        d.mkdir()
    start = celery_worker_proc_factory
    def host(name: str, role: str):
        return start(prefix=prefix, roles=(role,), data_dir=dirs[name], name=name, host=network.hosts[name])
    apply_1 = host("apply-host-1", "apply")
    kernel_host = host("kernel-host", "kernel")

    # An apply through the API; its host is killed mid-apply (making its mirror, or applying).
    r = requests.post(f"{web}/api/apply-runs/", json={"revision": UFFD_V3, "tree": "demo"}, headers=auth, timeout=30)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    wait_for(lambda: ApplyRun.objects.filter(id=run_id, status="running").exists(), timeout=60, interval=0.002)
    _sigkill(apply_1)
    if ApplyRun.objects.get(id=run_id).status != "running":
        pytest.fail("the apply finished before the kill: the drill did not bite")
    time.sleep(settings.LEASE_S + 1)  # its lease runs out
    apply_2 = host("apply-host-2", "apply")
    run = wait_for(lambda: ApplyRun.objects.filter(id=run_id).exclude(status__in=["queued", "running"]).first(),
                   timeout=120)
    assert run.status == "applied" and run.requeues == 1, run.error + apply_2.log()
    assert ApplyRun.objects.count() == 1  # taken over, done once
    assert ChainBundle.objects.filter(tree=run.tree, head=run.head).exists()
    host_2_mirror = dirs["apply-host-2"] / "mirrors" / "demo.git"
    assert host_2_mirror.is_dir() and not (dirs["kernel-host"] / "mirrors").exists()

    # The suite, on the kernel host: its mirror is made there, the chain taken from the database.
    r = requests.post(f"{web}/api/suite-runs/", json={"apply_run": run.id, "suite": "uffd-faults"}, headers=auth,
                      timeout=30)
    assert r.status_code == 202, r.text
    suite = wait_for(lambda: SuiteRun.objects.filter(id=r.json()["id"], status__in=["pass", "fail", "error"]).first(),
                     timeout=240)
    assert suite.status == "pass", suite.log[-3000:] + kernel_host.log()
    assert "worker.tasks.run_suite[" in kernel_host.log() and "run_suite[" not in apply_2.log()

    # The web host browses the chain (every line traced) and the suite's log, from its own mirror.
    touched = Patch.objects.get(message__msgid=run.applied[-1]["msgid"]).files.values_list("path", flat=True)[0]
    page = requests.get(f"{web}/tree/{run.id}/{touched}", timeout=60)
    assert page.status_code == 200
    assert "from KVM: guest_memfd: support for uffd minor v3" in page.text.split('id="stats"', 1)[1].split("</p>")[0]
    assert requests.get(f"{web}/tree/{run.id}/diff", timeout=30).status_code == 200
    suite_page = requests.get(f"{web}/suite-runs/{suite.id}/", timeout=30)
    assert suite_page.status_code == 200 and "ok 2 minor-shmem" in suite_page.text
    assert (web_data / "mirrors" / "demo.git").is_dir()
    # And git fetches the chain from the web host, which never applied it.
    clone = tmp_path / "reviewer"
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", f"{web}/git/demo.git", run.ref], check=True, timeout=120)
    fetched = subprocess.run(["git", "-C", str(clone), "rev-parse", "FETCH_HEAD"], capture_output=True, text=True)
    assert fetched.stdout.strip() == run.head
    if network.isolated:  # each host had its own network: the web answered on its veth address only
        assert web.startswith(f"http://{network.hosts['web-host'].inside}:")
