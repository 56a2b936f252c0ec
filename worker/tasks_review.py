"""Celery tasks for review state (thin: ids in, service call, state on our own rows).

Review state is recomputed whole from stored mail and replaced in one transaction,
so a task run twice writes the same rows: no claim row is needed.
"""
import logging

from celery import shared_task

from reviewapp import taskqueue as names

log = logging.getLogger("reviewapp.tasks")

__all__ = ["recompute_reviews", "compute_missing_reviews"]


@shared_task(name=names.RECOMPUTE_REVIEWS, acks_late=True, ignore_result=True)
def recompute_reviews(revision_ids: list[int]) -> list[int]:
    """New mail touched these revisions: their review state (and their next revisions')."""
    from reviewapp.services.review import recompute
    done = recompute(revision_ids)
    log.info("review state recomputed for %d revisions after mail on %s", len(done), revision_ids[:20])
    return done


@shared_task(name=names.COMPUTE_MISSING_REVIEWS, acks_late=True, ignore_result=True)
def compute_missing_reviews(limit: int = 500) -> list[int]:
    """Beat's sweep: review state for revisions that have none."""
    from reviewapp.services.review import recompute_missing
    return recompute_missing(limit)
