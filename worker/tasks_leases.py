"""The lease reaper: beat runs it (settings.CELERY_BEAT_SCHEDULE) and so does every
worker as it starts, so a run its killed predecessor held is not left "running"."""
import logging

from celery import shared_task

from reviewapp import taskqueue as names
from celery.signals import worker_ready

log = logging.getLogger("reviewapp.tasks")

__all__ = ["reap_leases"]


@shared_task(name=names.REAP_LEASES, ignore_result=True)
def reap_leases() -> list[dict]:
    from reviewapp.services import leases
    return [{"kind": r.kind, "id": r.id, "outcome": r.outcome} for r in leases.reap()]


@worker_ready.connect
def _reap_at_start(**_kwargs) -> None:
    from reviewapp.services import leases
    try:
        for r in leases.reap():
            log.warning("at start-up: %s %s %s", r.kind, r.id, r.outcome)
    except Exception:  # noqa: BLE001 -- a worker must start even if the database is down
        log.exception("lease reaper at start-up failed")
