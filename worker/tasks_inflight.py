"""Celery task for the series in flight on a list (thin: a name in, the service, rows out).

The computation replaces the list's stored conflicts in one transaction and applies
through the apply service's cache, so a task run twice writes the same rows."""
import logging

from celery import shared_task

from reviewapp import taskqueue as names

log = logging.getLogger("reviewapp.tasks")

__all__ = ["compute_inflight"]


@shared_task(name=names.COMPUTE_INFLIGHT, acks_late=True, ignore_result=True)
def compute_inflight(list_name: str) -> dict:
    """A sync stored new mail on a list with a tree: re-apply its open series, re-compare them."""
    from reviewapp.services import inflight
    try:
        result = inflight.compute(list_name)
    except inflight.InflightError as exc:  # the tree or list went away meanwhile: nothing to retry
        log.warning("in flight on %s: %s", list_name, exc)
        return {"list": list_name, "error": str(exc)}
    return {"list": list_name, "open": len(result.open), "conflicts": len(result.conflicts)}
