"""Follow a mailing list: incremental sync from its public-inbox archive.

A list registered with its public-inbox URL is mirrored epoch by epoch
(untangle.gitinbox: bare git mirrors under DATA_DIR/inboxes/<list>/N.git).
Each epoch has a SyncCursor (the last commit whose mail is stored); a sync
reads only the commits after it, oldest first, in batches, and moves the
cursor in the same transaction as the batch of mails it covers: a crash
between batches loses nothing and a re-run reads nothing twice.

A server without git falls back to its search by date (untangle.lore).

Runs are SyncRun rows claimed by a conditional update: one running sync
per list. A claim takes a lease (services/leases.py) that a heartbeat renews
while the sync runs; a run whose lease expired lost its worker: a new claim
ends it as failed and goes on from its cursors, and the reaper re-queues it
once (then fails it, "worker lost").
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from untangle import gitinbox, lore

from ..models import MailingList, Message, SyncCursor, SyncRun, Tree
from . import dbstats, leases
from .ingest import ingest

log = logging.getLogger("reviewapp.sync")


class SyncError(Exception):
    """The sync could not run (message says why); recorded on the SyncRun."""


@dataclass
class SyncResult:
    run_id: int
    list_name: str
    status: str
    source: str = ""
    epochs: list[int] = field(default_factory=list)
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    revisions: set[int] = field(default_factory=set)
    error: str = ""
    analyzed_at: int = 0  # `stored` when planner statistics were last refreshed


def _refresh_stats(result: SyncResult) -> None:
    if dbstats.refresh_after(result.stored - result.analyzed_at):
        result.analyzed_at = result.stored


def register(name: str, url: str) -> MailingList:
    """Follow *name* at *url* (an http(s) public-inbox inbox URL); idempotent."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) > 500:
        raise SyncError(f"not an http(s) public-inbox URL: {url!r}")
    if not name or len(name) > 200:
        raise SyncError(f"bad list name: {name!r}")
    mlist, _ = MailingList.objects.update_or_create(name=name, defaults={"url": url})
    return mlist


def followed() -> list[MailingList]:
    return list(MailingList.objects.exclude(url="").order_by("name"))


def mirror_dir(mlist: MailingList) -> Path:
    return Path(settings.DATA_DIR) / "inboxes" / f"{mlist.pk}"


def request_sync(mlist: MailingList, user=None) -> dict:
    """Queue a sync of a followed list for the worker (the caller checked permissions)."""
    if not mlist.url:
        raise SyncError(f"{mlist.name} is not followed (register it with its public-inbox URL first)")
    from .. import dispatch
    dispatch.sync_list(mlist.name)
    return {"list": mlist.name, "url": mlist.url, "queued": True}


def sync_list(name: str, run_id: int | None = None) -> SyncResult:
    """Claim a run for the list (run_id: a re-queued one), sync it, record the outcome;
    raise SyncError if busy/unknown."""
    mlist = MailingList.objects.filter(name=name).exclude(url="").first()
    if mlist is None:
        raise SyncError(f"no followed list named {name!r} (register it with its URL first)")
    run = (SyncRun.objects.filter(pk=run_id, mailing_list=mlist, status=SyncRun.QUEUED).first()
           if run_id else None) or SyncRun.objects.create(mailing_list=mlist)
    if not claim(run.pk):
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.FAILED, error="another sync is running",
                                                 finished_at=timezone.now())
        raise SyncError(f"another sync of {name} is running")
    result = SyncResult(run_id=run.pk, list_name=name, status=SyncRun.RUNNING)
    try:
        with leases.heartbeat(SyncRun, run.pk):
            _sync(mlist, run.pk, result)
    except (gitinbox.InboxError, lore.FetchError, ValueError, OSError) as exc:
        result.status, result.error = SyncRun.FAILED, str(exc)[:2000]
    except Exception as exc:  # recorded, never left running; the worker logs it
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000],
                                                 finished_at=timezone.now())
        raise
    else:
        result.status = SyncRun.DONE
    SyncRun.objects.filter(pk=run.pk).update(status=result.status, error=result.error,
                                             finished_at=timezone.now(), heartbeat=timezone.now())
    if result.status == SyncRun.DONE and result.stored and Tree.objects.filter(name=mlist.name).exists():
        from .. import dispatch
        dispatch.compute_inflight(mlist.name)  # new revisions may collide: the list's tree is known
    return result


def claim(run_id: int) -> bool:
    """queued -> running with a lease, unless another run of the list holds a live one.

    Other runs of the list still running with an expired lease lost their worker:
    they end failed here, and this run goes on from the cursors they committed."""
    now = timezone.now()
    run = SyncRun.objects.get(pk=run_id)
    with transaction.atomic():
        # The list row is the lock: two claims of one list (PostgreSQL) take turns here.
        MailingList.objects.select_for_update().filter(pk=run.mailing_list_id).first()
        others = (SyncRun.objects.select_for_update()
                  .filter(mailing_list_id=run.mailing_list_id, status=SyncRun.RUNNING)
                  .exclude(pk=run_id))
        lost = others.filter(leases.expired("status", SyncRun.RUNNING))
        if others.exclude(pk__in=lost.values("pk")).exists():
            return False
        lost.update(status=SyncRun.FAILED, error=f"abandoned: {leases.WORKER_LOST} (lease expired), "
                    f"taken over by sync run {run_id}", finished_at=now, lease_until=None)
        return SyncRun.objects.filter(pk=run_id, status=SyncRun.QUEUED).update(
            status=SyncRun.RUNNING, started_at=now, heartbeat=now, **leases.lease_fields()) == 1


def requeue(run_id: int) -> None:
    """The reaper put a run whose worker died back to queued: send its task again."""
    from .. import dispatch
    name = SyncRun.objects.filter(pk=run_id).values_list("mailing_list__name", flat=True).first()
    if name:
        dispatch.sync_list(name, run_id)  # sent after commit


def _sync(mlist: MailingList, run_id: int, result: SyncResult) -> None:
    try:
        found = gitinbox.epochs(mlist.url, timeout=settings.SYNC_TIMEOUT)
    except gitinbox.NoGitError:
        result.source = "search"
        _save_counts(run_id, result)
        _sync_by_search(mlist, run_id, result)
        return
    result.source = "git"
    result.epochs = [e.number for e in found]
    _save_counts(run_id, result)
    for epoch in found:
        _sync_epoch(mlist, epoch, run_id, result)


def _sync_epoch(mlist: MailingList, epoch: gitinbox.Epoch, run_id: int, result: SyncResult) -> None:
    mirror = mirror_dir(mlist) / f"{epoch.number}.git"
    tip = gitinbox.fetch(epoch, mirror, timeout=settings.SYNC_TIMEOUT)
    if tip is None:
        return
    cursor, _ = SyncCursor.objects.get_or_create(mailing_list=mlist, epoch=epoch.number)
    commits = gitinbox.new_commits(mirror, tip, cursor.last_commit or None)
    for start in range(0, len(commits), settings.SYNC_BATCH):
        batch = commits[start:start + settings.SYNC_BATCH]
        raws = [raw for _, raw in gitinbox.read_mails(mirror, batch) if raw is not None]
        _store_batch(mlist, cursor.pk, batch[-1], raws, run_id, result)
        _refresh_stats(result)


def _store_batch(mlist: MailingList, cursor_id: int, last: str, raws: list[bytes],
                 run_id: int, result: SyncResult) -> None:
    # Mails and the cursor covering them commit together: nothing lost, nothing twice.
    with transaction.atomic():
        got = ingest(raws, mlist.name, workers=0)
        SyncCursor.objects.filter(pk=cursor_id).update(last_commit=last, updated=timezone.now())
        result.read += len(raws)
        result.stored += got.stored
        result.duplicates += got.duplicates
        result.revisions |= got.revisions
        _save_counts(run_id, result)


def _save_counts(run_id: int, result: SyncResult) -> None:
    SyncRun.objects.filter(pk=run_id).update(
        read=result.read, stored=result.stored, duplicates=result.duplicates,
        source=result.source, epochs=result.epochs, heartbeat=timezone.now())


def _sync_by_search(mlist: MailingList, run_id: int, result: SyncResult) -> None:
    # No git: ask the search for mail since the newest one we hold (a day back
    # for clock skew; mails already stored count as duplicates, never twice).
    newest = (Message.objects.filter(mailing_list=mlist, date__isnull=False)
              .order_by("-date").values_list("date", flat=True).first())
    now = timezone.now()
    # A Date: header in the future (spam, broken clocks) must not stop the search for good.
    since = (min(newest, now) - timedelta(days=1)) if newest else now - timedelta(days=settings.SYNC_SEARCH_DAYS)
    raws = lore.search_since(mlist.url, since.strftime("%Y%m%d"), timeout=settings.SYNC_TIMEOUT)
    for start in range(0, len(raws), settings.SYNC_BATCH):
        with transaction.atomic():
            batch = raws[start:start + settings.SYNC_BATCH]
            got = ingest(batch, mlist.name, workers=0)
            result.read += len(batch)
            result.stored += got.stored
            result.duplicates += got.duplicates
            result.revisions |= got.revisions
            _save_counts(run_id, result)
        _refresh_stats(result)


def sync_all() -> list[SyncResult]:
    """Sync every followed list (the beat task); a busy or failing list does not stop the others."""
    results = []
    for mlist in followed():
        try:
            results.append(sync_list(mlist.name))
        except SyncError as exc:
            log.info("sync %s skipped: %s", mlist.name, exc)
    return results
