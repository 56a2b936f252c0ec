"""Planner statistics after bulk writes.

A sync or an archive import can grow the mail tables by a large share at once; until the
database re-reads their statistics, its planner costs them at their old size and picks
sequential scans where an index serves (seen on PostgreSQL: a graph's `patchfile JOIN patch
WHERE revision_id = ?` took 7 ms instead of 0.3 ms after 5,000 new mails, until ANALYZE).
PostgreSQL's autovacuum gets there within a minute or so; the graphs the worker computes
right after a sync do not wait for it.
"""
import logging
import time

from django.db import connection

from ..models import Dependency, Message, Patch, PatchFile, Revision, Series, Trailer

log = logging.getLogger("reviewapp.dbstats")
AFTER_ROWS = 1000  # mails stored in one go before statistics are refreshed, at least
GROWTH = 0.2  # ... and at least this share of the mail already held (the cost of ANALYZE grows with it)
GROWING = (Message, Revision, Series, Patch, PatchFile, Trailer, Dependency)


def refresh_after(stored: int) -> bool:
    """Refresh the mail tables' statistics when `stored` mails were just written and they
    are a large share of what the tables hold (statistics that far off mislead the planner)."""
    if stored < AFTER_ROWS:
        return False
    held = Message.objects.order_by("-id").values_list("id", flat=True).first() or 0  # an index read
    if stored < GROWTH * (held - stored):
        return False
    tables = [m._meta.db_table for m in GROWING]
    start = time.monotonic()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in tables))
        elif connection.vendor == "sqlite":
            cursor.execute("PRAGMA analysis_limit=1000")  # sampled: bounded cost on a big file
            for t in tables:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(t)}")
    log.info("planner statistics refreshed after %d mails in %.2f s", stored, time.monotonic() - start)
    return True
