"""Celery tasks for digests (thin: ids in, service call, state out).

Beat calls worker.tasks.send_due_digests hourly (settings.CELERY_BEAT_SCHEDULE).
Exactly-once lives in the Digest rows (see reviewapp.services.digests), not in
Celery: two overlapping runs compose each period once and claim each digest
once, and a run that dies leaves rows the next run picks up.  So the task is
not retried by Celery; the next hourly run is the retry.
"""
import logging

from celery import shared_task

from reviewapp import taskqueue as names

log = logging.getLogger("reviewapp.tasks")

__all__ = ["send_due_digests"]


@shared_task(name=names.SEND_DUE_DIGESTS, acks_late=True, ignore_result=True)
def send_due_digests() -> list[dict]:
    from reviewapp.services import digests
    results = digests.send_due()
    for digest, result in results:
        log.info("digest %s to %s: %s", digest.message_id, digest.subscription.address, result)
    return [{"id": d.pk, "state": d.state} for d, _ in results]
