"""Following a list: incremental sync from a real public-inbox-httpd (v2, git epochs)."""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from reviewapp.models import MailingList, Message, Revision, SyncCursor, SyncRun
from reviewapp.services import digests, sync
from reviewapp.services.ingest import ingest
from untangle.mbox import messages_from_path
from tests.conftest import REPO, _database_url
from tests.support.archive_slice import write_slice
from tests.support.public_inbox import serve_inbox


def _mbox(tmp_path: Path, name: str, start: int, count: int) -> Path:
    return write_slice(tmp_path / f"{name}.mbox", start, count)


@pytest.mark.django_db
def test_second_sync_reads_only_the_mail_delivered_since(tmp_path, data_dir):
    with serve_inbox([_mbox(tmp_path, "a", 0, 60)], tmp_path, name="ks") as inbox:
        sync.register("ks", inbox.url)
        first = sync.sync_list("ks")
        assert (first.status, first.source, first.read, first.stored) == ("done", "git", 60, 60)
        inbox.add(_mbox(tmp_path, "b", 60, 15))
        second = sync.sync_list("ks")
        assert (second.status, second.read, second.stored, second.duplicates) == ("done", 15, 15, 0)
        third = sync.sync_list("ks")
        assert (third.read, third.stored) == (0, 0)
    assert Message.objects.filter(mailing_list__name="ks").count() == 75
    runs = list(SyncRun.objects.order_by("pk").values_list("status", "read"))
    assert runs == [("done", 60), ("done", 15), ("done", 0)]


@pytest.mark.django_db
def test_an_epoch_rolled_over_after_the_last_sync_is_noticed(tmp_path, data_dir):
    # public-inbox's own rollover (V2Writable rotate_bytes) made small: 40 real
    # mails fill several epochs, the next delivery starts a new one.
    with serve_inbox([_mbox(tmp_path, "a", 0, 40)], tmp_path, name="ks",
                     rotate_bytes=60_000) as inbox:
        sync.register("ks", inbox.url)
        first = sync.sync_list("ks")
        epochs_before = sorted(p.name for p in (inbox.root / "inbox" / "git").iterdir())
        assert first.epochs == [int(n.split(".")[0]) for n in epochs_before] and len(first.epochs) > 1
        inbox.add(_mbox(tmp_path, "b", 40, 30))
        epochs_after = sorted((inbox.root / "inbox" / "git").iterdir(), key=lambda p: int(p.name[:-4]))
        assert len(epochs_after) > len(epochs_before)
        second = sync.sync_list("ks")
    assert second.epochs == list(range(len(epochs_after)))
    assert (second.read, second.stored, second.duplicates) == (30, 30, 0)
    assert SyncCursor.objects.filter(mailing_list__name="ks").count() == len(epochs_after)
    assert Message.objects.count() == 70


@pytest.mark.django_db(transaction=True)
def test_sync_killed_mid_way_loses_nothing_and_reads_nothing_twice(tmp_path, data_dir, settings):
    from django.db import connection
    total = 200
    with serve_inbox([_mbox(tmp_path, "a", 0, total)], tmp_path, name="ks") as inbox:
        sync.register("ks", inbox.url)
        env = dict(os.environ, DATABASE_URL=_database_url(connection.settings_dict),
                   REVIEWAPP_DATA_DIR=str(settings.DATA_DIR), REVIEWAPP_SYNC_BATCH="5")
        proc = subprocess.Popen([sys.executable, "manage.py", "sync", "ks", "--json"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not SyncCursor.objects.exclude(last_commit="").exists():
                assert proc.poll() is None and time.monotonic() < deadline, "sync never committed a batch"
                time.sleep(0.01)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        killed = SyncRun.objects.get()
        assert killed.status == SyncRun.RUNNING  # it died: nobody recorded an end
        stored_before = Message.objects.count()
        assert 0 < stored_before < total
        assert killed.read == stored_before  # counts moved with the batches
        assert killed.lease_until is not None  # its lease stopped being renewed when it died
        SyncRun.objects.filter(pk=killed.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        rerun = sync.sync_list("ks")
    assert rerun.status == "done"
    assert rerun.read == total - stored_before and rerun.duplicates == 0
    assert Message.objects.count() == total
    killed.refresh_from_db()
    assert killed.status == SyncRun.FAILED and "abandoned: worker lost" in killed.error
    assert f"taken over by sync run {rerun.run_id}" in killed.error


@pytest.mark.django_db
def test_a_list_already_syncing_is_not_synced_twice(tmp_path, data_dir):
    from django.utils import timezone
    mlist = sync.register("ks", "http://127.0.0.1:9/ks")
    SyncRun.objects.create(mailing_list=mlist, status=SyncRun.RUNNING, heartbeat=timezone.now())
    with pytest.raises(sync.SyncError, match="another sync"):
        sync.sync_list("ks")
    assert SyncRun.objects.filter(status=SyncRun.RUNNING).count() == 1


@pytest.mark.django_db
def test_an_unreachable_archive_is_a_failed_run_with_its_reason(data_dir):
    sync.register("ks", "http://127.0.0.1:9/ks")  # port 9: nothing listens
    result = sync.sync_list("ks")
    assert result.status == "failed" and result.error
    run = SyncRun.objects.get()
    assert run.status == SyncRun.FAILED and run.error == result.error and run.finished_at


@pytest.mark.django_db
def test_beat_task_syncs_every_followed_list(tmp_path, data_dir, settings):
    from worker.tasks_sync import sync_lists
    assert settings.CELERY_BEAT_SCHEDULE["sync-followed-lists"]["task"] == sync_lists.name
    with serve_inbox([_mbox(tmp_path, "a", 0, 10)], tmp_path, name="ks") as a, \
            serve_inbox([_mbox(tmp_path, "b", 10, 7)], tmp_path, name="kt") as b:
        sync.register("ks", a.url)
        sync.register("kt", b.url)
        MailingList.objects.create(name="not-followed")
        out = sync_lists.apply().get()
    assert sorted((r["list"], r["status"]) for r in out) == [("ks", "done"), ("kt", "done")]
    assert Message.objects.filter(mailing_list__name="ks").count() == 10
    assert Message.objects.filter(mailing_list__name="kt").count() == 7


@pytest.mark.django_db
def test_digest_of_a_followed_list_reports_what_the_sync_brought(tmp_path, data_dir):
    other = ingest(messages_from_path(_mbox(tmp_path, "o", 300, 40)), "other-list")
    assert other.revisions
    sub = digests.subscribe("mm@example.org", lists=["ks"])
    with serve_inbox([_mbox(tmp_path, "a", 0, 80)], tmp_path, name="ks") as inbox:
        sync.register("ks", inbox.url)
        brought = sync.sync_list("ks")
    titles = set(Revision.objects.filter(pk__in=brought.revisions).values_list("title", flat=True))
    assert titles
    body = digests.preview(sub)["body"]
    for title in titles:
        assert title[:40] in body
    for rev in Revision.objects.filter(pk__in=other.revisions):
        assert rev.title[:40] not in body


@pytest.mark.django_db
def test_an_archive_without_git_epochs_is_synced_through_its_search_by_date(tmp_path, data_dir, settings):
    # A v1 inbox: public-inbox-httpd serves no <inbox>/git/N.git for it, only search.
    # The mails are from 2019: the first sync reaches back far enough for them.
    settings.SYNC_SEARCH_DAYS = 365 * 30
    with serve_inbox([_mbox(tmp_path, "a", 0, 25)], tmp_path, name="ks", version=1) as inbox:
        sync.register("ks", inbox.url)
        first = sync.sync_list("ks")
    assert (first.status, first.source) == ("done", "search"), first.error
    assert first.read == 25 and first.stored == 25
    assert Message.objects.filter(mailing_list__name="ks").count() == 25


@pytest.mark.django_db
def test_sync_command_registers_a_list_and_prints_counts_as_json(tmp_path, data_dir):
    import json
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError
    with serve_inbox([_mbox(tmp_path, "a", 0, 12)], tmp_path, name="ks") as inbox:
        out = StringIO()
        call_command("sync", "ks", "--url", inbox.url, "--json", stdout=out)
        again = StringIO()
        call_command("sync", "ks", "--json", stdout=again)
    first, second = json.loads(out.getvalue()), json.loads(again.getvalue())
    assert (first["status"], first["read"], first["stored"], first["epochs"]) == ("done", 12, 12, [0])
    assert (second["read"], second["stored"]) == (0, 0)
    assert MailingList.objects.get(name="ks").url == inbox.url
    with pytest.raises(CommandError, match="no followed list"):
        call_command("sync", "nope")
