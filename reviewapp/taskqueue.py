"""The worker's tasks, by name, and the Celery app that sends them.

Django processes (web, management commands) send tasks by name through this app, so
nothing outside worker/ imports the worker: a web host needs no worker code on its path.
The names are the ones the tasks were registered under when they were sent by import, so
messages already queued by an older process still find their task.
"""
from functools import cache
from pathlib import Path

from celery import Celery

FETCH_THREAD = "worker.tasks.fetch_thread"
FETCH_TREE = "worker.tasks_apply.fetch_tree"
APPLY_RUN = "worker.tasks_apply.apply_run"
RECOMPUTE_GRAPHS = "worker.tasks_graph.recompute_graphs"
FETCH_GRAPH = "worker.tasks_graph.fetch_graph"
COMPUTE_MISSING_GRAPHS = "worker.tasks.compute_missing_graphs"
RECOMPUTE_REVIEWS = "worker.tasks.recompute_reviews"
COMPUTE_MISSING_REVIEWS = "worker.tasks.compute_missing_reviews"
RUN_SUITE = "worker.tasks.run_suite"
SEND_DUE_DIGESTS = "worker.tasks.send_due_digests"
SYNC_LISTS = "worker.tasks_sync.sync_lists"
SYNC_LIST = "worker.tasks_sync.sync_list"
REAP_LEASES = "worker.tasks.reap_leases"
COMPUTE_INFLIGHT = "worker.tasks.compute_inflight"

ALL = (FETCH_THREAD, FETCH_TREE, APPLY_RUN, RECOMPUTE_GRAPHS, FETCH_GRAPH, COMPUTE_MISSING_GRAPHS,
       RECOMPUTE_REVIEWS, COMPUTE_MISSING_REVIEWS, RUN_SUITE, SEND_DUE_DIGESTS, SYNC_LISTS, SYNC_LIST,
       REAP_LEASES, COMPUTE_INFLIGHT)

# Configured from Django's settings (CELERY_* names) when first used; the worker registers
# its tasks on this same app (worker/celery.py).
app = Celery("reviewapp")
app.config_from_object("django.conf:settings", namespace="CELERY")


def send(name: str, *args) -> None:
    ensure_broker_dirs()
    app.send_task(name, args=list(args))


@cache
def ensure_broker_dirs() -> None:
    """The filesystem transport (the default, needing no server) wants its folders, in the
    sending process as in the worker."""
    from django.conf import settings
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
