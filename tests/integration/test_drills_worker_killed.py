"""Fault drills: a real worker SIGKILLed mid-suite and mid-apply, then a new worker starts.

Runs with whatever broker the suite is configured with: CI runs it twice, on the
filesystem broker and on Redis. Each drill ends in a recorded state, the work done
once, no scratch dir left.
"""
import os
import signal
import time

import pytest

from reviewapp.models import ApplyRun, Revision, SuiteRun
from reviewapp.services import apply, suites
from tests.conftest import wait_for

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def short_leases(settings, kernel):
    settings.KERNEL_IMAGE = str(kernel)
    settings.SUITE_AFTER_APPLY = False
    settings.LEASE_HEARTBEAT_S = 1
    settings.LEASE_S = 3
    settings.LEASE_MAX_REQUEUES = 1
    return settings


def _sigkill(worker) -> None:
    os.killpg(worker.proc.pid, signal.SIGKILL)  # the whole worker: no finally, no ack
    worker.proc.wait(timeout=20)


def test_worker_killed_mid_suite_the_next_worker_requeues_it_and_it_runs_once(
        demo, short_leases, data_dir, celery_worker_proc_factory):
    applied = apply.apply(Revision.objects.get(msgid=UFFD_V3), demo)
    assert applied.status == "applied", applied.error
    first = celery_worker_proc_factory()
    run = suites.request_run(applied)
    wait_for(lambda: SuiteRun.objects.filter(id=run.id, step__startswith="boot").exists(), timeout=120,
             interval=0.05)
    _sigkill(first)
    row = SuiteRun.objects.get(id=run.id)
    assert row.status == "running" and suites.scratch_dirs(run.id)  # what a killed worker leaves
    time.sleep(short_leases.LEASE_S + 1)  # its lease runs out: nobody beats any more

    second = celery_worker_proc_factory()  # reaps at start-up, then runs the re-queued task
    done = wait_for(lambda: SuiteRun.objects.filter(id=run.id).exclude(
        status__in=suites.ACTIVE).first(), timeout=180)
    assert done.status == "pass", done.log[-2000:] + second.log()
    assert done.requeues == 1 and done.lease_until is None
    assert "requeued" in second.log()
    assert SuiteRun.objects.filter(apply_run=applied).count() == 1  # nothing twice
    assert suites.scratch_dirs(run.id) == []


def test_worker_killed_twice_mid_suite_ends_failed_worker_lost(
        demo, short_leases, data_dir, celery_worker_proc_factory):
    short_leases.LEASE_MAX_REQUEUES = 0
    applied = apply.apply(Revision.objects.get(msgid=UFFD_V3), demo)
    first = celery_worker_proc_factory()
    run = suites.request_run(applied)
    wait_for(lambda: SuiteRun.objects.filter(id=run.id, step__startswith="boot").exists(), timeout=120,
             interval=0.05)
    _sigkill(first)
    time.sleep(short_leases.LEASE_S + 1)
    second = celery_worker_proc_factory()
    done = wait_for(lambda: SuiteRun.objects.filter(id=run.id).exclude(
        status__in=suites.ACTIVE).first(), timeout=60)
    assert done.status == "error" and "worker lost" in suites.problems(done)[0], second.log()
    assert suites.scratch_dirs(run.id) == []
    # "Run again" is a new run, not the lost one.
    again = suites.request_run(applied, force=True)
    assert again.id != run.id


def test_worker_killed_mid_apply_the_run_is_taken_over_and_applied_once(
        demo, short_leases, data_dir, celery_worker_proc_factory):
    rev = Revision.objects.get(msgid=UFFD_V3)
    first = celery_worker_proc_factory()
    run = apply.request_apply(rev, demo)
    # The apply is quick: catch it running (claimed, lease taken) and kill at once.
    wait_for(lambda: ApplyRun.objects.filter(id=run.id).exclude(status="queued").exists(),
             timeout=60, interval=0.002)
    _sigkill(first)
    row = ApplyRun.objects.get(id=run.id)
    if row.status != "running":
        pytest.fail(f"the apply finished ({row.status}) before the kill: the drill did not bite")
    time.sleep(short_leases.LEASE_S + 1)
    second = celery_worker_proc_factory()
    done = wait_for(lambda: ApplyRun.objects.filter(id=run.id).exclude(
        status__in=["queued", "running"]).first(), timeout=120)
    assert done.status == "applied", done.error + second.log()
    assert done.requeues == 1 and done.lease_until is None
    assert ApplyRun.objects.filter(root=rev).count() == 1
    assert len(done.applied) == done.total > 0
