"""The one place outside worker/ that sends Celery tasks.

Services and views call these; each sends its task once the current transaction
commits (so a worker never looks for a row that is not there yet).  Keeping the
worker import here, lazily, keeps reviewapp.services free of worker imports
(checked by import-linter, see .importlinter).
"""
from django.db import transaction


def _later(task_name: str, *args) -> None:
    import worker.tasks as tasks  # the only non-worker importer of worker tasks
    task = getattr(tasks, task_name)
    transaction.on_commit(lambda: task.delay(*args))


def apply_run(run_id: int) -> None:
    _later("apply_run", run_id)


def run_suite(suite_run_id: int) -> None:
    _later("run_suite", suite_run_id)


def fetch_tree(tree_id: int) -> None:
    _later("fetch_tree", tree_id)


def fetch_thread(request_id: int) -> None:
    _later("fetch_thread", request_id)


def recompute_graphs(revision_ids: list[int]) -> None:
    _later("recompute_graphs", revision_ids)


def fetch_graph(revision_id: int) -> None:
    _later("fetch_graph", revision_id)


def send_due_digests() -> None:
    _later("send_due_digests")


def sync_list(name: str) -> None:
    _later("sync_list", name)
