"""Planner statistics are refreshed after a bulk write (reviewapp/services/dbstats.py)."""
import pytest
from django.db import connection

from reviewapp.services import dbstats
from reviewapp.services.ingest import ingest

pytestmark = pytest.mark.django_db


def _mails(n: int) -> list[bytes]:
    return [f"From: A <a@example.org>\nSubject: [PATCH] mm: change {i}\nMessage-ID: <stats-{i}@example.org>\n"
            f"Date: Mon, 1 Dec 2025 10:00:00 +0000\n\nChange {i}.\n---\n"
            f"diff --git a/f{i} b/f{i}\n--- a/f{i}\n+++ b/f{i}\n@@ -1 +1 @@\n-a\n+b\n".encode() for i in range(n)]


def _known_rows(table: str):
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
            value = c.fetchone()[0]
            return None if value < 0 else int(value)  # -1: never analyzed
        c.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if c.fetchone() is None:
            return None
        c.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = %s LIMIT 1", [table])  # "rows [per-index...]"
        row = c.fetchone()
        return int(row[0].split()[0]) if row else None


def test_a_bulk_write_refreshes_the_planners_row_counts_and_a_small_one_does_not():
    ingest(_mails(40), "linux-mm")
    table = "reviewapp_patchfile"
    before = _known_rows(table)
    assert not dbstats.refresh_after(dbstats.AFTER_ROWS - 1)
    assert _known_rows(table) == before
    assert dbstats.refresh_after(dbstats.AFTER_ROWS)
    assert _known_rows(table) == 40


def test_a_bulk_write_small_beside_what_the_tables_hold_leaves_the_statistics_alone():
    from reviewapp.models import Message
    Message.objects.create(id=100_000, msgid="old-archive@example.org", subject="s", kind="reply", body="b")
    stored = dbstats.AFTER_ROWS * 2  # 2,000 new beside ~98,000 held: under a fifth
    assert not dbstats.refresh_after(stored)
    assert dbstats.refresh_after(30_000)  # a third of it new: the plans would be off
