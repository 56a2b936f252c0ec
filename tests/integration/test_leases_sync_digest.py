"""Syncs and digests on the shared lease helper (services/leases.py): a sync or a digest
sender that died is re-queued once, then failed "worker lost"; a live lease is never
taken over; nothing stays running (or claimed) for ever."""
from datetime import datetime, timedelta, timezone as tz

import pytest
from django.db import transaction
from django.utils import timezone

from reviewapp.models import Digest, Subscription, SyncRun
from reviewapp.services import digests, leases, sync

pytestmark = pytest.mark.django_db


def _expire(model, pk: int) -> None:
    model.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))


def _stuck_sync() -> SyncRun:
    mlist = sync.register("ks", "http://127.0.0.1:9/ks")  # port 9: nothing listens
    run = SyncRun.objects.create(mailing_list=mlist)
    assert sync.claim(run.pk)
    run.refresh_from_db()
    return run


def _composed() -> Digest:
    sub = Subscription.objects.create(address="rev@example.org", name="r")
    start = datetime(2025, 5, 5, tzinfo=tz.utc)
    return Digest.objects.create(subscription=sub, period_start=start, period_end=start + timedelta(days=1),
                                 message_id="<digest-1@example.org>", subject="s", body="b")


def test_a_sync_claim_takes_a_lease_and_a_second_sync_of_the_list_is_refused():
    run = _stuck_sync()
    assert run.status == SyncRun.RUNNING and run.lease_until > timezone.now()
    with pytest.raises(sync.SyncError, match="another sync"):
        sync.sync_list("ks")
    assert SyncRun.objects.filter(status=SyncRun.RUNNING).count() == 1


def test_a_killed_sync_is_requeued_once_and_runs_as_the_same_row_then_is_failed_worker_lost(settings):
    settings.LEASE_MAX_REQUEUES = 1
    run = _stuck_sync()
    _expire(SyncRun, run.pk)
    with transaction.atomic():  # the re-sent task goes out on commit
        assert [(r.kind, r.id, r.outcome) for r in leases.reap()] == [("sync run", run.pk, "requeued")]
    run.refresh_from_db()
    assert (run.status, run.requeues, run.lease_until) == ("queued", 1, None)
    result = sync.sync_list("ks", run.pk)  # the re-queued task: the same row, run to an end
    assert result.run_id == run.pk and result.status == "failed"  # nothing listens on port 9
    run.refresh_from_db()
    assert run.status == SyncRun.FAILED and run.lease_until is None and run.finished_at

    again = SyncRun.objects.create(mailing_list=run.mailing_list, requeues=1)
    assert sync.claim(again.pk)
    _expire(SyncRun, again.pk)
    assert [r.outcome for r in leases.reap()] == ["lost"]
    again.refresh_from_db()
    assert (again.status, again.error) == ("failed", "worker lost") and again.finished_at
    assert leases.reap() == []


def test_a_sync_whose_worker_died_is_ended_by_the_next_claim_of_its_list():
    run = _stuck_sync()
    _expire(SyncRun, run.pk)
    result = sync.sync_list("ks")
    assert result.run_id != run.pk
    run.refresh_from_db()
    assert run.status == SyncRun.FAILED and f"taken over by sync run {result.run_id}" in run.error


def test_a_finished_sync_leaves_no_lease():
    sync.register("ks", "http://127.0.0.1:9/ks")
    result = sync.sync_list("ks")
    row = SyncRun.objects.get(pk=result.run_id)
    assert row.status == SyncRun.FAILED and row.lease_until is None


def test_a_digest_claim_is_a_lease_and_a_live_one_is_never_taken_over():
    d = _composed()
    assert digests.claim(d.pk)
    d.refresh_from_db()
    assert d.state == Digest.COMPOSED and d.lease_until > timezone.now() and d.sending_since
    assert not digests.claim(d.pk)  # its sender is alive (renewing): nobody sends it twice
    assert leases.reap() == []
    _expire(Digest, d.pk)
    assert digests.claim(d.pk)  # its sender died: the next run takes it over


def test_a_killed_digest_sender_is_requeued_once_then_failed_worker_lost(settings):
    settings.LEASE_MAX_REQUEUES = 1
    d = _composed()
    never_claimed = Digest.objects.create(subscription=d.subscription, period_start=d.period_end,
                                          period_end=d.period_end + timedelta(days=1),
                                          message_id="<digest-2@example.org>", subject="s", body="b")
    assert digests.claim(d.pk)
    _expire(Digest, d.pk)
    with transaction.atomic():
        assert [(r.kind, r.id, r.outcome) for r in leases.reap()] == [("digest", d.pk, "requeued")]
    d.refresh_from_db()
    assert (d.state, d.requeues, d.lease_until) == ("composed", 1, None)
    assert digests.claim(d.pk)
    _expire(Digest, d.pk)
    assert [r.outcome for r in leases.reap()] == ["lost"]
    d.refresh_from_db()
    assert (d.state, d.error, d.sending_since) == ("failed", "worker lost", None)
    never_claimed.refresh_from_db()
    assert never_claimed.state == Digest.COMPOSED and never_claimed.requeues == 0  # not claimed: not lost
