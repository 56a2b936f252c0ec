"""The one place outside worker/ that sends Celery tasks.

Services and views call these; each sends its task once the current transaction
commits (so a worker never looks for a row that is not there yet).  Keeping the
worker import here, lazily, keeps reviewapp.services free of worker imports
(checked by import-linter, see .importlinter).
"""
import logging

from django.db import transaction

log = logging.getLogger("reviewapp.dispatch")


def _later(task_name: str, *args) -> None:
    import worker.tasks as tasks  # the only non-worker importer of worker tasks
    task = getattr(tasks, task_name)
    transaction.on_commit(lambda: task.delay(*args))


def _later_if_broker_up(task_name: str, *args) -> None:
    """For work a periodic sweep also does: a broker outage must not fail what just
    committed (a fetch whose mails are stored), so a refused send is only logged."""
    import worker.tasks as tasks
    from kombu.exceptions import OperationalError
    task = getattr(tasks, task_name)

    def send():
        try:
            task.delay(*args)
        except OperationalError as exc:
            log.warning("%s%r not sent (broker: %s); the periodic sweep will do it", task_name, args, exc)
    transaction.on_commit(send)


def apply_run(run_id: int) -> None:
    _later("apply_run", run_id)


def run_suite(suite_run_id: int) -> None:
    _later("run_suite", suite_run_id)


def fetch_tree(tree_id: int) -> None:
    _later("fetch_tree", tree_id)


def fetch_thread(request_id: int) -> None:
    _later("fetch_thread", request_id)


def recompute_graphs(revision_ids: list[int]) -> None:
    _later_if_broker_up("recompute_graphs", revision_ids)


def fetch_graph(revision_id: int) -> None:
    _later("fetch_graph", revision_id)


def send_due_digests() -> None:
    _later("send_due_digests")


def sync_list(name: str, run_id: int | None = None) -> None:
    if run_id is None:
        _later("sync_list", name)
    else:  # a re-queued run (services/leases.py)
        _later("sync_list", name, run_id)


def recompute_reviews(revision_ids: list[int]) -> None:
    _later_if_broker_up("recompute_reviews", revision_ids)
