"""Celery tasks for suites (thin: ids in, service call, state out).

Suite runs go to the "kernel" queue (reviewapp/tasknames.py), so a long
boot never holds up ingest or apply workers.
"""
import logging

from celery import shared_task

from reviewapp import taskqueue as names

__all__ = ["run_suite"]

log = logging.getLogger("reviewapp.tasks")


# Named for the route in settings (worker.tasks re-exports it from there).
@shared_task(name=names.RUN_SUITE, acks_late=True)
def run_suite(suite_run_id: int) -> None:
    # No retries: the service turns every failure into an "error" verdict on the row.
    from reviewapp.services import suites
    if suites.run_queued(suite_run_id) is None:
        log.info("suite run %s: claimed elsewhere or finished", suite_run_id)
