"""The one place outside worker/ that sends Celery tasks.

Services and views call these; each sends its task, by name (reviewapp.taskqueue), once the
current transaction commits, so a worker never looks for a row that is not there yet.
Nothing here imports the worker (checked by import-linter, see .importlinter).
"""
import logging

from django.db import transaction

from . import taskqueue as names

log = logging.getLogger("reviewapp.dispatch")


def _later(task_name: str, *args) -> None:
    transaction.on_commit(lambda: names.send(task_name, *args))


def _later_if_broker_up(task_name: str, *args) -> None:
    """For work a periodic sweep also does: a broker outage must not fail what just
    committed (a fetch whose mails are stored), so a refused send is only logged."""
    from kombu.exceptions import OperationalError

    def send():
        try:
            names.send(task_name, *args)
        except OperationalError as exc:
            log.warning("%s%r not sent (broker: %s); the periodic sweep will do it", task_name, args, exc)
    transaction.on_commit(send)


def apply_run(run_id: int) -> None:
    _later(names.APPLY_RUN, run_id)


def run_suite(suite_run_id: int) -> None:
    _later(names.RUN_SUITE, suite_run_id)


def fetch_tree(tree_id: int) -> None:
    _later(names.FETCH_TREE, tree_id)


def fetch_thread(request_id: int) -> None:
    _later(names.FETCH_THREAD, request_id)


def recompute_graphs(revision_ids: list[int]) -> None:
    _later_if_broker_up(names.RECOMPUTE_GRAPHS, revision_ids)


def fetch_graph(revision_id: int) -> None:
    _later(names.FETCH_GRAPH, revision_id)


def send_due_digests() -> None:
    _later(names.SEND_DUE_DIGESTS)


def sync_list(name: str, run_id: int | None = None) -> None:
    if run_id is None:
        _later(names.SYNC_LIST, name)
    else:  # a re-queued run (services/leases.py)
        _later(names.SYNC_LIST, name, run_id)


def compute_inflight(list_name: str) -> None:
    _later_if_broker_up(names.COMPUTE_INFLIGHT, list_name)


def recompute_reviews(revision_ids: list[int]) -> None:
    _later_if_broker_up(names.RECOMPUTE_REVIEWS, revision_ids)
