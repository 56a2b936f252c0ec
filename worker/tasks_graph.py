"""Celery tasks for graph (thin: ids in, service call, state out).

A graph computation is idempotent (a snapshot is written only when the graph
changed, under a row lock), so these tasks need no claim row.
"""
import logging

from celery import shared_task

from reviewapp import taskqueue as names

log = logging.getLogger("reviewapp.tasks")

__all__ = ["recompute_graphs", "fetch_graph", "compute_missing_graphs"]


@shared_task(name=names.RECOMPUTE_GRAPHS, acks_late=True)
def recompute_graphs(revision_ids: list[int]) -> list[int]:
    """New mail touched these revisions: recompute every graph they may change."""
    from reviewapp.services.graph import recompute_after_import
    done = recompute_after_import(revision_ids)
    log.info("graphs recomputed for %s after mail on %s", done, revision_ids)
    return done


@shared_task(name=names.COMPUTE_MISSING_GRAPHS, acks_late=True, ignore_result=True)
def compute_missing_graphs(limit: int = 500) -> list[int]:
    """Beat's sweep: first graphs for revisions that have none (a send lost to a broker outage)."""
    from reviewapp.services.graph import compute_missing, revisions_without_graph
    return compute_missing(revisions_without_graph(limit))


@shared_task(name=names.FETCH_GRAPH, acks_late=True)
def fetch_graph(revision_id: int) -> None:
    """Fetch what the graph of one revision references but we do not store."""
    from reviewapp.models import Revision
    from reviewapp.services.graph import graph_for, recompute_affected
    rev = Revision.objects.filter(id=revision_id).first()
    if rev is None:
        return
    last = Revision.objects.order_by("-id").values_list("id", flat=True).first() or 0
    graph_for(rev, fetch=True)
    # Threads fetched for this graph may change others too.
    new = list(Revision.objects.filter(id__gt=last).values_list("id", flat=True))
    if new:
        recompute_affected(new)
