"""Thin tasks: ids in, a service call, state written to our own tables."""
import logging

from celery import shared_task

from reviewapp import taskqueue as names
from django.conf import settings

from untangle import lore

log = logging.getLogger("reviewapp.tasks")


@shared_task(name=names.FETCH_THREAD, bind=True, acks_late=True)
def fetch_thread(self, request_id: int) -> None:
    from reviewapp.services import fetch
    if not fetch.claim(request_id):
        log.info("fetch %s: claimed by another worker or finished", request_id)
        return
    try:
        fetch.run(request_id)
    except lore.FetchError as exc:
        if exc.temporary and self.request.retries < settings.FETCH_MAX_RETRIES:
            raise self.retry(exc=exc, countdown=2 ** self.request.retries)

# Each area keeps its tasks in its own module; importing them here registers them.
from .tasks_apply import *  # noqa: E402,F401,F403
from .tasks_digests import *  # noqa: E402,F401,F403
from .tasks_graph import *  # noqa: E402,F401,F403
from .tasks_inflight import *  # noqa: E402,F401,F403
from .tasks_review import *  # noqa: E402,F401,F403
from .tasks_leases import *  # noqa: E402,F401,F403
from .tasks_suites import *  # noqa: E402,F401,F403
from .tasks_sync import *  # noqa: E402,F401,F403
