"""Pages at list scale: bounded queries and bounded HTML whatever the archive holds."""
from datetime import datetime, timedelta, timezone

import pytest

from reviewapp.models import MailingList, Message, Patch, PatchFile, Revision, Series

pytestmark = pytest.mark.django_db
T0 = datetime(2021, 1, 1, tzinfo=timezone.utc)


def _archive(n: int) -> list[Revision]:
    """n one-patch revisions, on two lists, every other one incomplete."""
    lists = [MailingList.objects.create(name="linux-kselftest"), MailingList.objects.create(name="linux-mm")]
    series = Series.objects.bulk_create(Series(title=f"s{i}", author_email=f"a{i % 7}@ex.org") for i in range(n))
    revs = Revision.objects.bulk_create(
        Revision(series=s, msgid=f"r{i}@ex.org", anchor=f"r{i}@ex.org", title=f"selftests: fix thing {i}",
                 version=1 + i % 3, author_name=f"Author {i % 7}", author_email=f"a{i % 7}@ex.org",
                 mailing_list=lists[i % 2], date=T0 + timedelta(days=i), expected=1, received=1,
                 complete=i % 2 == 0) for i, s in enumerate(series))
    msgs = Message.objects.bulk_create(
        Message(msgid=f"r{i}@ex.org", subject=r.title, kind="patch", body="x" * 20000, revision=r,
                date=r.date) for i, r in enumerate(revs))
    Patch.objects.bulk_create(Patch(revision=r, message=m, number=1, subject=r.title, diff="y" * 50000)
                              for r, m in zip(revs, msgs))
    return revs


def test_series_list_pages_and_filters_in_a_bounded_number_of_queries(client, django_assert_max_num_queries):
    _archive(300)
    # 6 for the page, 1 for the page generation (reviewapp.pagecache) on PostgreSQL
    with django_assert_max_num_queries(7):
        page = client.get("/")
    html = page.content.decode()
    assert html.count('href="/series/') == 50 and "page 1 of 6" in html and "300 series" in html
    assert len(page.content) < 120_000  # no bodies, no diffs
    with django_assert_max_num_queries(7):
        filtered = client.get("/", {"list": "linux-mm", "state": "incomplete", "version": "2",
                                    "q": "fix thing", "since": "2021-02-01", "until": "2021-06-30"})
    shown = filtered.content.decode()
    expected = [r for r in Revision.objects.all() if r.mailing_list.name == "linux-mm" and not r.complete
                and r.version == 2 and datetime(2021, 2, 1, tzinfo=timezone.utc) <= r.date
                and r.date.date() <= datetime(2021, 6, 30).date()]
    assert expected and shown.count('href="/series/') == len(expected)
    assert all(f'/series/{r.msgid}/' in shown for r in expected)
    second = client.get("/", {"page": 2}).content.decode()
    assert "page 2 of 6" in second and "/series/r249@ex.org/" in second and "/series/r299@ex.org/" not in second
    by_author = client.get("/", {"author": "a3@ex"}).content.decode()
    assert f"{len(range(3, 300, 7))} series" in by_author and "Author 4" not in by_author


def test_a_series_touching_5000_files_is_a_small_page_in_bounded_queries(client, django_assert_max_num_queries):
    rev = _archive(3)[0]
    patch = rev.patches.get()
    PatchFile.objects.bulk_create(PatchFile(patch=patch, path=f"drivers/x/file{i}.c") for i in range(5000))
    with django_assert_max_num_queries(40):
        page = client.get(f"/series/{rev.msgid}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "file0.c" in html and "file4999.c" not in html and "and 4960 more files" in html
    assert len(page.content) < 80_000


def test_a_file_over_the_page_cap_is_a_plain_preview_of_bounded_size(client, demo, monkeypatch):
    from reviewapp.services.apply import apply
    from reviewapp.web import browse
    from tests.support.demo import UFFD_V3
    run = apply(Revision.objects.get(msgid=UFFD_V3), demo)
    url = f"/tree/{run.id}/mm/userfaultfd.c"
    full = client.get(url).content.decode()
    assert 'id="code"' in full and "too large" not in full
    monkeypatch.setattr(browse, "FILE_PAGE_BYTES", 2000)
    capped = client.get(url)
    html = capped.content.decode()
    assert capped.status_code == 200 and "too large for line provenance" in html
    assert 'id="code"' not in html and 'id="preview"' in html
    assert len(capped.content) < len(full) / 3


def test_series_list_days_are_whole_utc_days_and_set_aside_revisions_never_show(client):
    revs = _archive(10)  # r0 on 2021-01-01 ... r9 on 2021-01-10, all at 00:00 UTC
    Revision.objects.filter(id=revs[4].id).update(date=datetime(2021, 1, 5, 23, 59, tzinfo=timezone.utc))
    Revision.objects.filter(id=revs[6].id).update(msgid=Revision.STALE_PREFIX + "7:" + revs[6].msgid)
    shown = client.get("/", {"since": "2021-01-05", "until": "2021-01-07"}).content.decode()
    assert "/series/r4@ex.org/" in shown and "/series/r5@ex.org/" in shown  # 23:59 on the last-but-one day
    assert "/series/r3@ex.org/" not in shown and "/series/r7@ex.org/" not in shown
    assert "stale:" not in shown and Revision.objects.live().count() == 9


def test_deep_list_pages_keep_the_newest_first_order(client):
    _archive(120)
    third = client.get("/", {"page": 3}).content.decode()
    # 120 revisions, 50 a page, newest first: page 3 holds r19 ... r0, in that order.
    assert third.index("/series/r19@ex.org/") < third.index("/series/r0@ex.org/")
    assert "/series/r20@ex.org/" not in third and "120 series" in third


def test_series_page_queries_do_not_grow_with_patches_replies_or_family(client, django_assert_max_num_queries):
    def page_queries(rev):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext
        with CaptureQueriesContext(connection) as q:
            assert client.get(f"/series/{rev.msgid}/").status_code == 200
        return len(q.captured_queries)

    small, big = _archive(2)
    before = page_queries(small)
    msgs = Message.objects.bulk_create(
        Message(msgid=f"p{i}@ex.org", subject=f"[PATCH {i}/30] x", kind="patch", body="b", revision=big,
                date=T0) for i in range(2, 31))
    Patch.objects.bulk_create(Patch(revision=big, message=m, number=i, subject=m.subject, diff="d")
                              for i, m in enumerate(msgs, 2))
    Message.objects.bulk_create(Message(msgid=f"re{i}@ex.org", subject="Re: x", kind="reply", body="r",
                                        revision=big, date=T0, from_name=f"R {i}") for i in range(60))
    Revision.objects.bulk_create(Revision(series=big.series, msgid=f"v{i}@ex.org", anchor=f"v{i}@ex.org",
                                          title="fam", version=i, date=T0) for i in range(2, 12))
    assert page_queries(big) <= before + 2  # 30 patches, 60 replies, 11 revisions: no query per row
