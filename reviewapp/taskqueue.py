"""The worker's tasks, by name, and the Celery app that sends them.

Django processes (web, management commands) send tasks by name through this app, so
nothing outside worker/ imports the worker: a web host needs no worker code on its path.
The names are the ones the tasks were registered under when they were sent by import, so
messages already queued by an older process still find their task.
"""
from functools import cache
from pathlib import Path

from celery import Celery

from .tasknames import (  # noqa: F401  (the names, for senders and the worker)
    ALL, APPLY_RUN, COMPUTE_INFLIGHT, COMPUTE_MISSING_GRAPHS, COMPUTE_MISSING_REVIEWS, FETCH_GRAPH, FETCH_THREAD,
    FETCH_TREE, REAP_LEASES, RECOMPUTE_GRAPHS, RECOMPUTE_REVIEWS, ROLES, RUN_SUITE, SEND_DUE_DIGESTS, SYNC_LIST,
    SYNC_LISTS, queues, routes)

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
