"""Fetching by message-id: b4 against a real public-inbox, through a real Celery worker."""
import json
import socket

import pytest
from django.core.management import call_command

from reviewapp.models import FetchRequest, Message, Revision, ReviewState
from reviewapp.services import fetch
from tests.conftest import wait_for
from worker import tasks

UFFD_V3 = "20250404154352.23078-1-kalyazin@amazon.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_thread_fetched_by_msgid_arrives_through_a_real_worker(lore_settings, celery_worker_proc):
    req = fetch.request_fetch(f"<{UFFD_V3}>")
    tasks.fetch_thread.delay(req.id)
    done = wait_for(lambda: FetchRequest.objects.filter(id=req.id, state__in=["done", "failed"]).first())
    assert done.state == "done", done.error + celery_worker_proc.log()
    assert done.revisions == [UFFD_V3]
    rev = Revision.objects.get(msgid=UFFD_V3)
    assert (rev.received, rev.expected, rev.complete) == (6, 6, True)
    # The mail's arrival sends the review state's computation to the worker too.
    state = wait_for(lambda: ReviewState.objects.filter(revision=rev).first())
    assert state is not None, celery_worker_proc.log()
    # The real v3 thread has no replies: six patches, nobody has spoken yet.
    assert (state.state, state.patches, state.reviewed) == ("waiting", 6, 0)
    assert [p["number"] for p in state.data["patches"]] == [1, 2, 3, 4, 5, 6]


@pytest.fixture
def lore_settings(lore_inbox, settings):
    settings.LORE_URL = lore_inbox.url
    return settings


@pytest.mark.django_db(transaction=True)
def test_unknown_msgid_fails_once_with_a_clear_error_and_writes_nothing(lore_settings, celery_worker_proc):
    req = fetch.request_fetch("https://lore.kernel.org/all/nothing-here-123@example.org/")
    tasks.fetch_thread.delay(req.id)
    done = wait_for(lambda: FetchRequest.objects.filter(id=req.id, state="failed").first())
    assert "nothing-here-123@example.org" in done.error and "404" in done.error
    assert done.attempts == 1
    assert Message.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_server_down_is_retried_a_bounded_number_of_times(settings, celery_worker_proc_factory):
    settings.LORE_URL = f"http://127.0.0.1:{_free_port()}/all"
    settings.FETCH_MAX_RETRIES = 2
    worker = celery_worker_proc_factory()
    req = fetch.request_fetch(UFFD_V3)
    tasks.fetch_thread.delay(req.id)
    done = wait_for(lambda: FetchRequest.objects.filter(id=req.id, state="failed", attempts=3).first(),
                    timeout=90)
    assert "unreachable" in done.error or "refused" in done.error, worker.log()
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_cli_ingest_by_msgid_fetches_from_lore_url(lore_settings, capsys):
    call_command("ingest", "--msgid", f"https://lore.kernel.org/kvm/{UFFD_V3}/T/#u", "--json")
    out = json.loads(capsys.readouterr().out)
    assert [r["msgid"] for r in out["series"]] == [UFFD_V3]
    assert out["series"][0]["base_commit"] == "3cc51efc17a2c41a480eed36b31c1773936717e0"
