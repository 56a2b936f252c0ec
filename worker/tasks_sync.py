"""Celery tasks for followed lists (thin: a service call, state on SyncRun rows).

Beat runs sync_lists every REVIEWAPP_SYNC_INTERVAL seconds. Progress and
exactly-once live in SyncCursor/SyncRun (reviewapp.services.sync): a run that
dies leaves its cursors where its last committed batch put them, and the next
beat run goes on from there, so Celery does not retry.
"""
import logging

from celery import shared_task

from reviewapp import taskqueue as names

log = logging.getLogger("reviewapp.tasks")

__all__ = ["sync_list", "sync_lists"]


@shared_task(name=names.SYNC_LISTS, acks_late=True, ignore_result=True)
def sync_lists() -> list[dict]:
    from reviewapp.services import sync
    results = sync.sync_all()
    for r in results:
        log.info("sync %s: %s read %d stored %d %s", r.list_name, r.status, r.read, r.stored, r.error)
    return [{"run": r.run_id, "list": r.list_name, "status": r.status} for r in results]


@shared_task(name=names.SYNC_LIST, acks_late=True, ignore_result=True)
def sync_list(name: str, run_id: int | None = None) -> dict:
    """One list, asked for by a maintainer (API) or re-queued by the lease reaper (run_id);
    a busy list is left to the sync running it."""
    from reviewapp.services import sync
    try:
        r = sync.sync_list(name, run_id)
    except sync.SyncError as exc:
        log.info("sync %s not run: %s", name, exc)
        return {"list": name, "status": "refused", "error": str(exc)}
    return {"run": r.run_id, "list": r.list_name, "status": r.status}
