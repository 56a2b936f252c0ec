"""Rendered pages for anonymous readers, reused until the data they show changes.

A page is stored under the request's host and full path and the database's *page
generation*: a counter that the database itself moves on every committed write to a
reviewapp table (triggers, installed after every `migrate` by `install_triggers`). So an
ORM save, a bulk insert of the ingest, a raw UPDATE by hand and a worker in another
process all make every stored page unreachable, the moment their transaction commits;
nothing has to remember to invalidate. Heartbeat columns (`lease_until`, `heartbeat`)
do not move it: a run being alive changes no page.

PostgreSQL: a row trigger would make every writer queue behind one counter row until it
commits (and deadlock against other locks). Instead a write marks its own transaction in
`reviewapp_pagedirty` (a row per transaction, no contention), and a deferred constraint
trigger on that row moves the counter at commit. A reader inside a transaction that has
written (tests, admin actions) sees its own mark and does not use the cache.
SQLite has one writer at a time: its row triggers move the counter directly, inside the
transaction, so a reader inside an atomic block does not use the cache there.

Only GETs without a session or messages cookie are served or stored, and only 200s that
set no cookie and used no CSRF token: a maintainer's page (buttons, forms) is never cached.
What an outsider can make it hold is bounded: only the views' own query parameters, a
query of at most 512 characters, pages of at most PAGE_CACHE_MAX_BYTES, and (locmem)
PAGE_CACHE_ENTRIES pages a process, or (Redis) the cache server's own maxmemory.
"""
from __future__ import annotations

import hashlib
import logging
from functools import wraps

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpResponse

GENERATION_TABLE = "reviewapp_pagegeneration"
DIRTY_TABLE = "reviewapp_pagedirty"
# Tables no cached page shows (refusal counts) or that are the mechanism itself.
UNWATCHED = {GENERATION_TABLE, DIRTY_TABLE, "reviewapp_auditlog"}
QUIET_COLUMNS = {"lease_until", "heartbeat"}  # a lease heartbeat changes no page
TRIGGER_PREFIX = "reviewapp_page"
log = logging.getLogger("reviewapp.pagecache")


# ------------------------------------------------------------------ triggers

def watched_tables(connection) -> list[str]:
    with connection.cursor() as cur:
        names = connection.introspection.table_names(cur)
    return sorted(t for t in names if t.startswith("reviewapp_") and t not in UNWATCHED)


def _loud_columns(connection, table: str) -> list[str]:
    with connection.cursor() as cur:
        cols = [c.name for c in connection.introspection.get_table_description(cur, table)]
    return [c for c in cols if c not in QUIET_COLUMNS]


def install_triggers(connection) -> None:
    """(Re)create the counter row and every watched table's triggers; idempotent, so a
    table or column added by a later migration is covered after that `migrate`."""
    statements = _postgres_sql(connection) if connection.vendor == "postgresql" else _sqlite_sql(connection)
    with connection.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


# Once per transaction: the setting is local to it (and undone with a rolled-back savepoint).
_PG_MARK = f"""
      IF current_setting('reviewapp.page_dirty', true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('reviewapp.page_dirty', '1', true);
        INSERT INTO {DIRTY_TABLE} (txid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
      END IF;"""
_PG_COUNTER_ROW = (f"INSERT INTO {GENERATION_TABLE} (id, epoch, value) VALUES (1, (random() * 1e15)::bigint, 0) "
                   "ON CONFLICT (id) DO NOTHING")
_PG_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION {TRIGGER_PREFIX}_mark() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_PG_MARK}
      RETURN NULL;
    END $$""",
    # For statement triggers: a statement that changed no row (a reaper finding nothing) is no write.
    f"""CREATE OR REPLACE FUNCTION {TRIGGER_PREFIX}_mark_rows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM changed) THEN {_PG_MARK}
      END IF;
      RETURN NULL;
    END $$""",
    # At commit (deferred): the counter row is locked only while the transaction commits.
    f"""CREATE OR REPLACE FUNCTION {TRIGGER_PREFIX}_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {_PG_COUNTER_ROW};
      UPDATE {GENERATION_TABLE} SET value = value + 1 WHERE id = 1;
      DELETE FROM {DIRTY_TABLE} WHERE txid = NEW.txid;
      RETURN NULL;
    END $$""",
]


def _postgres_sql(connection) -> list[str]:
    sql = _PG_FUNCTIONS + [
        _PG_COUNTER_ROW,
        f"DROP TRIGGER IF EXISTS {TRIGGER_PREFIX}_bump ON {DIRTY_TABLE}",
        f"CREATE CONSTRAINT TRIGGER {TRIGGER_PREFIX}_bump AFTER INSERT ON {DIRTY_TABLE} "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {TRIGGER_PREFIX}_bump()",
    ]
    for table in watched_tables(connection):
        cols = ", ".join(connection.ops.quote_name(c) for c in _loud_columns(connection, table))
        t = connection.ops.quote_name(table)
        # Statement triggers for inserts and deletes (one call for a bulk insert of 10,000
        # rows), row triggers for updates (a statement trigger cannot name columns).
        for name, event, ref in (("ins", "INSERT", "NEW"), ("del", "DELETE", "OLD")):
            sql += [f"DROP TRIGGER IF EXISTS {TRIGGER_PREFIX}_{name} ON {t}",
                    f"CREATE TRIGGER {TRIGGER_PREFIX}_{name} AFTER {event} ON {t} "
                    f"REFERENCING {ref} TABLE AS changed FOR EACH STATEMENT "
                    f"EXECUTE FUNCTION {TRIGGER_PREFIX}_mark_rows()"]
        sql += [f"DROP TRIGGER IF EXISTS {TRIGGER_PREFIX}_upd ON {t}",
                f"CREATE TRIGGER {TRIGGER_PREFIX}_upd AFTER UPDATE OF {cols} ON {t} FOR EACH ROW "
                f"WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION {TRIGGER_PREFIX}_mark()",
                f"DROP TRIGGER IF EXISTS {TRIGGER_PREFIX}_trunc ON {t}",
                f"CREATE TRIGGER {TRIGGER_PREFIX}_trunc AFTER TRUNCATE ON {t} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION {TRIGGER_PREFIX}_mark()"]
    return sql


_SQLITE_BUMP = (f"INSERT OR IGNORE INTO {GENERATION_TABLE} (id, epoch, value) VALUES (1, abs(random()), 0); "
                f"UPDATE {GENERATION_TABLE} SET value = value + 1 WHERE id = 1;")


def _sqlite_sql(connection) -> list[str]:
    sql = [f"INSERT OR IGNORE INTO {GENERATION_TABLE} (id, epoch, value) VALUES (1, abs(random()), 0)"]
    for table in watched_tables(connection):
        cols = ", ".join(connection.ops.quote_name(c) for c in _loud_columns(connection, table))
        t = connection.ops.quote_name(table)
        for name, event in (("ins", "INSERT"), ("del", "DELETE"), ("upd", f"UPDATE OF {cols}")):
            trigger = f"{TRIGGER_PREFIX}_{name}_{table}"
            sql += [f"DROP TRIGGER IF EXISTS {trigger}",
                    f"CREATE TRIGGER {trigger} AFTER {event} ON {t} BEGIN {_SQLITE_BUMP} END"]
    return sql


def installed_on(connection) -> set[str]:
    """Watched tables that have all their triggers (for the test that none is missed)."""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT c.relname, count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "WHERE t.tgname LIKE %s AND NOT t.tgisinternal GROUP BY 1", [f"{TRIGGER_PREFIX}_%"])
            return {t for t, n in cur.fetchall() if n == 4}
        cur.execute("SELECT tbl_name, count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s "
                    "GROUP BY 1", [f"{TRIGGER_PREFIX}_%"])
        return {t for t, n in cur.fetchall() if n == 3}


def generation(connection) -> str | None:
    """The page generation as a key part, or None when the cache must not be used: no
    counter row yet, or this very transaction has written (its own writes count at commit)."""
    if connection.vendor != "postgresql" and connection.in_atomic_block:
        # SQLite moves the counter inside the transaction: a rollback would set it back
        # and the next write would reuse a key for other data.
        return None
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"SELECT g.epoch, g.value, EXISTS (SELECT 1 FROM {DIRTY_TABLE} d "
                        f"WHERE d.txid = txid_current_if_assigned()) FROM {GENERATION_TABLE} g WHERE g.id = 1")
        else:
            cur.execute(f"SELECT epoch, value, 0 FROM {GENERATION_TABLE} WHERE id = 1")
        row = cur.fetchone()
    if row is None or row[2]:
        return None
    return f"{row[0]}.{row[1]}"


# ------------------------------------------------------------------ the view wrapper

_SKIP_COOKIES = (settings.SESSION_COOKIE_NAME, "messages")
# The query parameters the cached views read. A page asked for with any other, or with a
# long query, is served but not stored: made-up query strings cannot fill the cache.
STORED_PARAMS = frozenset({"page", "q", "author", "list", "state", "version", "since", "until",
                           "changed", "combined", "raw", "tree"})
MAX_STORED_QUERY = 512


def _key(request) -> str | None:
    if not settings.PAGE_CACHE or request.method not in ("GET", "HEAD"):
        return None
    if any(name in request.COOKIES for name in _SKIP_COOKIES):
        return None  # a session may be a maintainer's, messages are for one reader
    gen = generation(connection)
    if gen is None:
        return None
    where = hashlib.sha1(f"{request.get_host()}\n{request.get_full_path()}".encode()).hexdigest()
    return f"page:{gen}:{where}"


def _storable(request, response) -> bool:
    return (response.status_code == 200 and not response.streaming and not response.cookies
            and set(request.GET) <= STORED_PARAMS
            and len(request.META.get("QUERY_STRING", "")) <= MAX_STORED_QUERY
            and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
            and len(response.content) <= settings.PAGE_CACHE_MAX_BYTES)


def anonymous_cached(view):
    """Serve `view`'s page from the cache for anonymous readers while the data is unchanged."""
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        key = _key(request)
        if key is None:
            return view(request, *args, **kwargs)
        store = caches[settings.PAGE_CACHE_ALIAS]
        try:
            hit = store.get(key)
        except Exception:  # noqa: BLE001 - a cache that is down costs speed, never the page
            log.warning("page cache unavailable; rendering %s", request.path, exc_info=True)
            return view(request, *args, **kwargs)
        if hit is not None:
            content_type, content = hit
            response = HttpResponse(content, content_type=content_type)
            response["X-Page-Cache"] = "hit"
            return response
        response = view(request, *args, **kwargs)
        if _storable(request, response):
            try:
                store.set(key, (response["Content-Type"], response.content), settings.PAGE_CACHE_SECONDS)
                response["X-Page-Cache"] = "miss"
            except Exception:  # noqa: BLE001 - as above
                log.warning("page cache unavailable; %s not stored", request.path, exc_info=True)
        return response
    return wrapped
