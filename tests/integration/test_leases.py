"""Leases on claimed work: a run whose worker died is taken over, re-queued once, then
failed "worker lost"; a live lease is never taken; "run again" always starts a new run."""
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from reviewapp.models import ApplyRun, Revision, SuiteRun
from reviewapp.services import apply, fetch, leases, suites

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"


def _expire(model, pk: int) -> None:
    model.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))


def _stuck_apply(demo) -> ApplyRun:
    run = apply.request_apply(Revision.objects.get(msgid=UFFD_V3), demo)
    assert apply.claim(run.id)
    return run


@pytest.mark.django_db
def test_a_claim_takes_a_lease_and_a_live_lease_is_never_taken_over(demo):
    run = _stuck_apply(demo)
    run.refresh_from_db()
    assert run.status == "running" and run.lease_until > timezone.now()
    assert not apply.claim(run.id)  # a redelivered task while the first worker beats


@pytest.mark.django_db
def test_a_redelivered_task_takes_over_a_run_whose_lease_expired(demo):
    run = _stuck_apply(demo)
    _expire(ApplyRun, run.id)
    assert apply.claim(run.id)
    done = apply.execute(ApplyRun.objects.get(id=run.id))
    assert done.status == "applied" and done.lease_until is None


@pytest.mark.django_db
def test_reaper_requeues_an_expired_run_once_then_fails_it_as_worker_lost(demo, settings):
    settings.LEASE_MAX_REQUEUES = 1
    run = _stuck_apply(demo)
    _expire(ApplyRun, run.id)
    with transaction.atomic():  # the re-sent task goes out on commit
        first = leases.reap()
    assert [(r.kind, r.id, r.outcome) for r in first] == [("apply run", run.id, "requeued")]
    run.refresh_from_db()
    assert (run.status, run.requeues, run.lease_until) == ("queued", 1, None)
    assert apply.claim(run.id)
    _expire(ApplyRun, run.id)  # its second worker died too
    assert [r.outcome for r in leases.reap()] == ["lost"]
    run.refresh_from_db()
    assert (run.status, run.error, run.failed["error"]) == ("failed", "worker lost", "worker lost")
    assert run.finished is not None
    assert leases.reap() == []  # ended once: nothing twice


@pytest.mark.django_db
def test_reaper_leaves_live_leases_and_finished_runs_alone(demo):
    live = _stuck_apply(demo)
    done = apply.apply(Revision.objects.get(msgid=UFFD_V3), demo)
    assert leases.reap() == []
    assert ApplyRun.objects.get(id=live.id).status == "running"
    assert ApplyRun.objects.get(id=done.id).status == "applied"


@pytest.mark.django_db
def test_a_row_running_from_before_leases_is_reaped_after_one_lease(demo, settings):
    run = _stuck_apply(demo)
    ApplyRun.objects.filter(id=run.id).update(
        lease_until=None, created=timezone.now() - timedelta(seconds=settings.LEASE_S + 5))
    assert [r.outcome for r in leases.reap()] == ["requeued"]


@pytest.mark.django_db
def test_reaper_removes_a_lost_suite_runs_scratch_dir(demo, data_dir, settings):
    settings.LEASE_MAX_REQUEUES = 0
    applied = apply.apply(Revision.objects.get(msgid=UFFD_V3), demo)
    row = SuiteRun.objects.create(apply_run=applied, suite=suites.ensure_default_suite())
    assert suites.claim(row.id)
    scratch = suites._scratch_dir(row.id)
    (scratch / "tree").mkdir()
    (scratch / "tree" / "Makefile").write_text("all:\n")
    _expire(SuiteRun, row.id)
    assert [r.outcome for r in leases.reap()] == ["lost"]
    row.refresh_from_db()
    assert row.status == "error" and "worker lost" in suites.problems(row)[0]
    assert not scratch.exists() and suites.scratch_dirs(row.id) == []


@pytest.mark.django_db
def test_run_again_starts_a_new_suite_run_beside_a_stuck_one(demo):
    applied = apply.apply(Revision.objects.get(msgid=UFFD_V3), demo)
    stuck = suites.request_run(applied)
    assert suites.claim(stuck.id)
    again = suites.request_run(applied, force=True)
    assert again.id != stuck.id and again.status == "queued"
    assert suites.request_run(applied).id in (stuck.id, again.id)  # a plain request still reuses


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_heartbeat_pushes_the_lease_forward_while_work_runs(demo):
    run = _stuck_apply(demo)
    ApplyRun.objects.filter(id=run.id).update(lease_until=timezone.now())
    import time
    with leases.heartbeat(ApplyRun, run.id, every=0.2):
        before = ApplyRun.objects.get(id=run.id).lease_until
        time.sleep(0.7)
        after = ApplyRun.objects.get(id=run.id).lease_until
    assert after > before
    assert ApplyRun.objects.get(id=run.id).lease_until is None  # released at the end


@pytest.mark.django_db
def test_a_fetch_that_dies_outside_fetcherror_is_recorded_failed(settings):
    settings.LORE_URL = "http://[::1"  # unparsable: urllib raises ValueError, not FetchError
    req = fetch.request_fetch("<nobody@example.org>")
    assert fetch.claim(req.id)
    with pytest.raises(Exception) as caught:
        fetch.run(req.id)
    req.refresh_from_db()
    assert req.state == "failed" and req.lease_until is None
    assert type(caught.value).__name__ in req.error
