"""Celery tasks for apply (thin: ids in, service call, state out)."""
import logging

from celery import shared_task

from reviewapp import taskqueue as names

log = logging.getLogger("reviewapp.tasks")

__all__ = ["fetch_tree", "apply_run"]


@shared_task(name=names.FETCH_TREE, acks_late=True)
def fetch_tree(tree_id: int) -> None:
    """Build or refresh a tree's mirror; the caller claimed it (state "fetching")."""
    from reviewapp.services import trees
    try:
        trees.fetch_tree(tree_id, claimed=True)
    except trees.TreeError as exc:  # recorded on the row; git errors are not transient enough to retry blindly
        log.warning("fetch_tree %s: %s", tree_id, exc)


@shared_task(name=names.APPLY_RUN, acks_late=True)
def apply_run(run_id: int) -> None:
    """Apply a queued run; the conditional claim makes a redelivery a no-op."""
    from reviewapp.models import ApplyRun
    from reviewapp.services import apply
    if not apply.claim(run_id):
        log.info("apply run %s: claimed by another worker or finished", run_id)
        return
    run = apply.execute(ApplyRun.objects.select_related("tree", "root").get(id=run_id))
    from reviewapp.services import suites
    suites.after_apply(run)  # queues the default suite when configured and the chain applied
