"""Anonymous pages are stored per page generation, which the database moves on every commit.

These tests commit for real (transactional_db): the generation only moves at commit on
PostgreSQL, and SQLite's cache is off inside a test's atomic block.
"""
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections, transaction
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.test import RequestFactory

from reviewapp import pagecache
from reviewapp.models import ApplyRun, MailingList, Message, Revision, Series, Tree, Trailer
from reviewapp.permissions import MAINTAINERS

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2021, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def rev(transactional_db) -> Revision:
    lst = MailingList.objects.create(name="linux-mm")
    series = Series.objects.create(title="mm: page cache", author_email="a@ex.org")
    return Revision.objects.create(series=series, msgid="pc1@ex.org", anchor="pc1@ex.org",
                                   title="mm: first title", author_name="A", author_email="a@ex.org",
                                   mailing_list=lst, date=T0, expected=1, received=1, complete=True)


def _page(client, url: str) -> tuple[str, str | None]:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), response.get("X-Page-Cache")


def test_anonymous_reader_gets_the_stored_page_until_a_write_commits(client, rev, django_assert_max_num_queries):
    url = f"/series/{rev.msgid}/"
    html, state = _page(client, url)
    assert state == "miss" and "mm: first title" in html
    with django_assert_max_num_queries(1):  # the generation, nothing else
        again, state = _page(client, url)
    assert state == "hit" and again == html

    Revision.objects.filter(id=rev.id).update(title="mm: second title")  # QuerySet.update
    html, state = _page(client, url)
    assert state == "miss" and "mm: second title" in html

    rev.refresh_from_db()
    rev.title = "mm: third title"
    rev.save()  # Model.save
    assert "mm: third title" in _page(client, url)[0]

    with connection.cursor() as cur:  # raw SQL, as someone at a psql prompt
        cur.execute("UPDATE reviewapp_revision SET title = %s WHERE id = %s", ["mm: fourth title", rev.id])
    assert "mm: fourth title" in _page(client, url)[0]


def test_a_bulk_insert_of_replies_changes_the_series_page(client, rev):
    url = f"/series/{rev.msgid}/"
    assert "Reviewed-by" not in _page(client, url)[0]
    reply = Message.objects.bulk_create([Message(msgid="re1@ex.org", subject="Re: mm", kind="reply",
                                                 from_name="Rev", from_email="r@ex.org", revision=rev,
                                                 date=T0, body="ok")])[0]
    Trailer.objects.bulk_create([Trailer(kind="Reviewed-by", name="Rev", email="r@ex.org",
                                         value="Rev <r@ex.org>", message=reply, revision=rev)])
    html, state = _page(client, url)
    assert state == "miss" and "Reviewed-by" in html


def test_the_series_list_shows_a_new_revision_at_once(client, rev):
    assert "mm: brand new" not in _page(client, "/")[0]
    assert _page(client, "/")[1] == "hit"
    Revision.objects.create(series=rev.series, msgid="pc2@ex.org", anchor="pc2@ex.org", version=2,
                            title="mm: brand new", date=T0, expected=1, received=1, complete=True)
    html, state = _page(client, "/")
    assert state == "miss" and "mm: brand new" in html


def test_a_write_from_another_process_reaches_the_next_page(client, rev):
    url = f"/series/{rev.msgid}/"
    _page(client, url)
    assert _page(client, url)[1] == "hit"
    db = connection.settings_dict
    env_db = (f"sqlite:///{db['NAME']}" if connection.vendor == "sqlite" else
              f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}")
    code = ("import django; django.setup(); from reviewapp.models import Revision; "
            f"Revision.objects.filter(msgid='{rev.msgid}').update(title='mm: from the worker')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"DJANGO_SETTINGS_MODULE": "reviewapp.settings", "DATABASE_URL": env_db,
                               "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    html, state = _page(client, url)
    assert state == "miss" and "mm: from the worker" in html


def test_a_lease_heartbeat_moves_no_page(client, rev):
    tree = Tree.objects.create(name="t", source="/nonexistent")
    run = ApplyRun.objects.create(tree=tree, root=rev, status="running")
    before = pagecache.generation(connection)
    ApplyRun.objects.filter(id=run.id).update(lease_until=datetime.now(timezone.utc))
    assert pagecache.generation(connection) == before
    ApplyRun.objects.filter(id=run.id).update(status="applied")
    assert pagecache.generation(connection) != before


def test_a_statement_that_changes_no_row_moves_no_page(rev):
    before = pagecache.generation(connection)
    Revision.objects.filter(msgid="nobody@ex.org").update(title="x")
    Revision.objects.filter(msgid="nobody@ex.org").delete()
    assert pagecache.generation(connection) == before


def test_a_maintainers_page_is_never_stored_nor_served_from_the_store(client, rev, django_user_model):
    url = f"/series/{rev.msgid}/"
    anonymous, _ = _page(client, url)
    user = django_user_model.objects.create_user("maint", password="pw")
    user.groups.add(Group.objects.get_or_create(name=MAINTAINERS)[0])
    client.force_login(user)
    for _ in range(2):
        html, state = _page(client, url)
        assert state is None and "maint" in html and html != anonymous
    client.logout()
    assert "maint" not in _page(client, url)[0]


def test_made_up_query_strings_are_served_but_not_stored(client, rev):
    assert _page(client, "/?page=1")[1] == "miss"
    assert _page(client, "/?page=1")[1] == "hit"
    for url in ("/?utm_source=x", "/?page=1&x=1", "/?q=" + "a" * 600):
        for _ in range(2):
            html, state = _page(client, url)
            assert state is None and "Series" in html


def test_a_page_that_hands_out_a_csrf_token_is_not_stored(rev):
    def view(request):
        return HttpResponse(f"form {get_token(request)}")
    cached = pagecache.anonymous_cached(view)
    first = cached(RequestFactory().get("/form"))
    assert first.status_code == 200 and "X-Page-Cache" not in first
    assert "X-Page-Cache" not in cached(RequestFactory().get("/form"))


def test_pages_render_when_the_shared_cache_is_down(client, rev, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                       settings.PAGE_CACHE_ALIAS: {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    for _ in range(2):
        html, state = _page(client, f"/series/{rev.msgid}/")
        assert "mm: first title" in html and state is None


def test_every_reviewapp_table_has_its_triggers(transactional_db):
    watched = set(pagecache.watched_tables(connection))
    assert {"reviewapp_revision", "reviewapp_message", "reviewapp_graphsnapshot", "reviewapp_applyrun"} <= watched
    assert pagecache.installed_on(connection) >= watched


def test_the_generation_is_none_without_its_row(transactional_db):
    from reviewapp.models import PageGeneration
    PageGeneration.objects.all().delete()
    assert pagecache.generation(connection) is None
    MailingList.objects.create(name="after")  # the next write creates it again
    assert pagecache.generation(connection) is not None


postgres_only = pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                                   reason="PostgreSQL's commit-time counter: CI's second pass "
                                          "(DATABASE_URL=postgres://...) runs it")


def _on_thread(fn):
    out, err = [], []

    def run():
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            err.append(exc)
        finally:
            connections.close_all()
    thread = threading.Thread(target=run)
    thread.start()
    return thread, out, err


@postgres_only
def test_postgres_uncommitted_writes_do_not_move_the_generation_and_writers_do_not_queue(rev):
    before = pagecache.generation(connection)
    inside, release = threading.Event(), threading.Event()

    def writer():
        with transaction.atomic():
            Revision.objects.filter(id=rev.id).update(title="mm: held open")
            inside.set()
            assert release.wait(30)

    thread, _, err = _on_thread(writer)
    assert inside.wait(30)
    try:
        assert pagecache.generation(connection) == before  # not committed: not visible
        # A second writer is not held up by the first's open transaction.
        second, _, err2 = _on_thread(lambda: MailingList.objects.create(name="second writer"))
        second.join(10)
        assert not second.is_alive() and not err2
        after_second = pagecache.generation(connection)
        assert after_second != before
    finally:
        release.set()
        thread.join(30)
    assert not err
    assert pagecache.generation(connection) not in (before, after_second)


@postgres_only
def test_postgres_a_rolled_back_write_moves_nothing(rev):
    before = pagecache.generation(connection)
    with pytest.raises(RuntimeError), transaction.atomic():
        Revision.objects.filter(id=rev.id).update(title="never")
        assert pagecache.generation(connection) is None  # this transaction wrote: no cache in it
        raise RuntimeError
    assert pagecache.generation(connection) == before
