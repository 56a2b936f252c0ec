"""Store mails and (re)build the revisions and series they belong to.

Streams: raw mails are parsed (in parser processes once the input is longer
than one batch) and stored in batches of BATCH, so memory stays flat in the
size of the input. A batch costs a bounded number of queries whatever its
size: rows are written with bulk inserts and one-statement updates, the
threading of the whole batch is worked out in memory from the batch plus one
preload of the stored mails around it, families are joined for the whole
batch at once and each touched series is ordered once per batch.

Idempotent: Message-ID is unique, and a mail already stored is not parsed
into rows again.
"""
import hashlib
import json
import logging
import os
import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import chain, islice
from typing import Iterable, Iterator

from django.db import DataError, IntegrityError, connection, models, transaction
from django.utils import timezone

from untangle import deps, grouping, mail as mails
from untangle.mail import Mail, MailError

from ..models import (Dependency, MailingList, Message, Patch, PatchFile, QuarantinedMail,
                      Revision, Series, Trailer)

log = logging.getLogger("reviewapp.ingest")
BATCH = 1000  # mails per transaction
CHUNK = 100  # mails per job handed to a parser process
INFLIGHT = 16  # parser jobs queued ahead: keeps the parsers busy while a batch is written
POSTED = (Message.COVER, Message.PATCH)
_RUN_WIDENINGS = 8  # queries at most to find the stored part of an unthreaded run
# The columns grouping needs: everything but the bodies.
LIGHT = ("id", "msgid", "kind", "version", "number", "total", "in_reply_to", "references",
         "from_email", "from_name", "title", "subject", "date", "received", "tags",
         "mailing_list_id", "revision_id")


@dataclass
class IngestResult:
    revisions: set[int] = field(default_factory=set)  # ids of revisions touched
    stored: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    read: int = 0  # mails read from the input
    quarantined: int = 0  # mails refused (QuarantinedMail rows), parsed or not

    def counts(self) -> dict[str, int]:
        return {"read": self.read, "stored": self.stored, "duplicate": self.duplicates,
                "quarantined": self.quarantined}


@dataclass
class _Item:
    """One mail read: parsed (mail, edges) or refused (reason)."""
    raw: bytes
    mail: Mail | None = None
    edges: list | None = None
    reason: str = ""


# Errors that belong to one mail's values, not to the database being away: the
# mail is quarantined and the import goes on.
_MAIL_ERRORS = (DataError, IntegrityError, ValueError)


def ingest(raw_messages: Iterable[bytes], list_name: str | None = None, *,
           workers: int | None = None, source: str = "",
           limits: mails.Limits | None = None) -> IngestResult:
    """Store raw mails and group them; workers = parser processes (0: parse inline).

    A mail that cannot be parsed or stored is quarantined (source says where it
    came from) and the rest goes on."""
    result = IngestResult()
    lists: dict[str, int] = {}
    parsed = _parsed(raw_messages, result, _default_workers() if workers is None else workers,
                     limits or limits_from_settings())
    try:
        while batch := list(islice(parsed, BATCH)):
            _ingest_batch(batch, list_name, lists, result, source)
    finally:
        parsed.close()  # a failed batch stops the parser processes now, not at GC
    _recompute_graphs_later(result.revisions)
    return result


def limits_from_settings() -> mails.Limits:
    from django.conf import settings
    return mails.Limits(max_bytes=settings.INGEST_MAX_MAIL_BYTES, max_files=settings.INGEST_MAX_FILES,
                        max_hunks=settings.INGEST_MAX_HUNKS,
                        max_number=settings.INGEST_MAX_PATCH_NUMBER,
                        max_version=settings.INGEST_MAX_VERSION)


def _recompute_graphs_later(revision_ids: set[int]) -> None:
    """New mail can change stored graphs (a later Based-on:, a newer revision of a dependency),
    and new revisions need a first graph: pages only show stored ones."""
    if not revision_ids:
        return
    from .. import dispatch
    dispatch.recompute_graphs(sorted(revision_ids))


# --- parsing ------------------------------------------------------------------

def _default_workers() -> int:
    # Storing waits on the database about half the time, so even on two
    # cores two parsers beat one (measured: docs/bench-ingest.md).
    return min(4, max(2, (os.cpu_count() or 2) - 1))


def _parsed(raws: Iterable[bytes], result: IngestResult, workers: int,
            limits: mails.Limits) -> Iterator[_Item]:
    """Each raw mail, parsed or refused, with its raw bytes (for the quarantine)."""
    raws = iter(raws)
    head = list(islice(raws, BATCH))
    # A thread fetched from lore is parsed faster than a process starts.
    if len(head) < BATCH:
        workers = 0
    # parse_stream answers in input order: the raws read but not yet answered
    # wait here (at most its read-ahead window).
    pending: deque[bytes] = deque()

    def remembered() -> Iterator[bytes]:
        for raw in chain(head, raws):
            pending.append(raw)
            result.read += 1
            yield raw

    for item in mails.parse_stream(remembered(), workers, CHUNK, INFLIGHT, edges=True, limits=limits):
        raw = pending.popleft()
        if isinstance(item, MailError):
            result.errors.append(str(item))
            yield _Item(item.raw if item.raw is not None else raw[:limits.max_bytes], reason=str(item))
        else:
            yield _Item(raw, *item)


# --- storing ------------------------------------------------------------------

def _ingest_batch(batch: list[_Item], list_name: str | None, lists: dict[str, int],
                  result: IngestResult, source: str) -> None:
    refused = [item for item in batch if item.mail is None]
    good = [item for item in batch if item.mail is not None]
    try:
        with transaction.atomic():
            stored, duplicates, revisions = _store_batch(good, list_name, lists)
    except _MAIL_ERRORS as exc:
        if len(good) == 1:
            good[0].reason = f"could not be stored: {_one_line(exc)}"
            result.errors.append(f"{good[0].mail.msgid}: {good[0].reason}")
            refused += good
        else:
            # One mail spoils its batch: find it by storing the rest one by one.
            log.warning("batch of %d mails failed (%s); storing them one by one", len(good), _one_line(exc))
            lists.clear()  # ids learnt inside the rolled-back transaction may be gone
            for item in good:
                _ingest_batch([item], list_name, lists, result, source)
        good = []
    else:
        result.stored += stored
        result.duplicates += duplicates
        result.revisions |= revisions
    _quarantine(refused, source, result)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


_DEP_TAG = re.compile(r"^(based-on|depends-on|supersedes|prerequisite-[a-z-]+):", re.M | re.I)
_RAW_MSGID = re.compile(rb"^message-id:[ \t]*<?([^<>\s]{1,500})", re.M | re.I)


def _quarantine(items: list[_Item], source: str, result: IngestResult) -> None:
    """Keep refused mails as they came; the same bytes are kept once."""
    if not items:
        return
    rows = {}
    for item in items:
        digest = hashlib.sha256(item.raw).hexdigest()
        m = _RAW_MSGID.search(item.raw[:65536])
        msgid = (item.mail.msgid if item.mail else
                 m.group(1).decode("utf-8", "replace") if m else "")[:500]
        rows.setdefault(digest, QuarantinedMail(digest=digest, msgid=_text(msgid), source=_text(source[:2000]),
                                                reason=_text(item.reason), raw=item.raw, size=len(item.raw)))
    QuarantinedMail.objects.bulk_create(rows.values(), ignore_conflicts=True)
    result.quarantined += len(items)


def _text(value: str) -> str:
    # PostgreSQL text refuses NUL; a refused mail's claimed msgid or reason may carry one.
    return value.replace("\x00", "\ufffd")


def _store_batch(items: list[_Item], list_name: str | None,
                 lists: dict[str, int]) -> tuple[int, int, set[int]]:
    """Store and group parsed mails: (stored, duplicates, revisions touched)."""
    parsed: dict[str, Mail] = {}
    edges: dict[str, list] = {}
    duplicates = 0
    for item in items:
        mail, stated = item.mail, item.edges
        if mail.msgid in parsed:
            duplicates += 1
            continue
        parsed[mail.msgid] = mail
        if stated is not None:
            edges[mail.msgid] = stated
    if not parsed:
        return 0, duplicates, set()
    existing = {msgid for part in _chunked(parsed)
                for msgid in Message.objects.filter(msgid__in=part).values_list("msgid", flat=True)}
    duplicates += len(existing)
    new = [m for k, m in parsed.items() if k not in existing]
    if not new:
        return 0, duplicates, set()
    rows, patch_ids = _store(new, list_name, _list_ids(new, list_name, lists))
    return len(new), duplicates, _Regroup(rows, {m.msgid: m for m in new}, patch_ids, edges).run()


def _list_ids(new: list[Mail], forced: str | None, cache: dict[str, int]) -> dict[str, int]:
    names = {forced} if forced else {m.lists[0] for m in new if m.lists}
    for name in names - set(cache):
        cache[name] = MailingList.objects.get_or_create(name=name)[0].id
    return cache


def _store(new: list[Mail], forced: str | None,
           lists: dict[str, int]) -> tuple[list[dict], dict[int, int]]:
    """Insert messages, patches, files and trailers.

    Returns the light rows of the new messages and their patch ids by message id.
    """
    now = timezone.now()
    rows = [_message_row(m, lists[forced] if forced else lists.get(m.lists[0]) if m.lists else None, now)
            for m in new]
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic():
                return _store_rows(new, rows, copy=True)
        except IntegrityError:
            # Another ingest stored some of these mails since we looked.
            log.info("concurrent ingest: storing %d mails with conflict checks", len(new))
    return _store_rows(new, rows, copy=False)


def _message_row(mail: Mail, list_id: int | None, now) -> dict:
    return dict(
        msgid=mail.msgid, mailing_list_id=list_id, subject=mail.subject, from_name=mail.from_name,
        from_email=mail.from_email, date=mail.date, in_reply_to=mail.in_reply_to,
        references=mail.references, kind=mail.kind, version=mail.version, number=mail.number,
        total=mail.total, title=mail.title, body=mail.body, tags=mail.tags, received=now,
        revision_id=None, lists=mail.lists)


def _store_rows(new: list[Mail], rows: list[dict], copy: bool) -> tuple[list[dict], dict[int, int]]:
    rows, ids = _insert_with_ids(Message, rows, "msgid", copy)
    light = []
    for row in rows:
        if row["msgid"] in ids:
            light.append({name: row[name] for name in LIGHT if name != "id"} | {"id": ids[row["msgid"]]})
    patches = [dict(message_id=ids[m.msgid], revision_id=None, number=m.number or 1,
                    subject=m.title, author_name=m.author_name or m.from_name,
                    author_email=m.author_email or m.from_email, date=m.date,
                    commit_message=m.commit_message, diff=m.diff, patch_id=m.patch_id)
               for m in new if m.kind == mails.PATCH and m.msgid in ids]
    patches, patch_ids = _insert_with_ids(Patch, patches, "message_id", copy)
    files, trailers = [], {}
    for m in new:
        mid = ids.get(m.msgid)
        pid = patch_ids.get(mid)
        for f in m.files:
            files.append(dict(patch_id=pid, path=f.path, old_path=f.old_path,
                              old_blob=f.old_blob, new_blob=f.new_blob, status=f.status))
        for t in m.trailers:
            # One row per (mail, kind, value): the table's unique constraint.
            trailers.setdefault((mid, t.kind, t.value), dict(
                kind=t.kind, name=t.name, email=t.email, value=t.value, message_id=mid,
                patch_id=pid, revision_id=None))
    _insert(PatchFile, files, copy)
    _insert(Trailer, list(trailers.values()), copy)
    return light, patch_ids


def _insert_with_ids(model, rows: list[dict], key: str, copy: bool) -> tuple[list[dict], dict]:
    """Insert rows; return them and {row[key]: id} for the rows now stored."""
    if copy:  # ids drawn beforehand: no query to learn them afterwards
        rows = [{"id": i} | r for i, r in zip(_next_ids(model, len(rows)), rows)]
        _insert(model, rows, copy)
        return rows, {r[key]: r["id"] for r in rows}
    _insert(model, rows, copy)
    return rows, _ids_by(model, key, [r[key] for r in rows])


def _next_ids(model, count: int) -> list[int]:
    """count fresh primary keys from the table's sequence (PostgreSQL)."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [model._meta.db_table, model._meta.pk.column, count])
        return [row[0] for row in cursor.fetchall()]


def _ids_by(model, key: str, values: list) -> dict:
    return {k: i for part in _chunked(values)
            for k, i in model.objects.filter(**{f"{key}__in": part}).values_list(key, "id")}


def _insert(model, rows: list[dict], copy: bool) -> None:
    """Insert rows (dicts of field attnames): COPY on PostgreSQL, else bulk_create
    skipping rows that clash with stored ones."""
    if not rows:
        return
    if not copy:
        model.objects.bulk_create([model(**r) for r in rows], ignore_conflicts=True)
        return
    fields = [model._meta.get_field(name) for name in rows[0]]
    # Columns we do not set get their model default, as Django would give them.
    rest = [f for f in model._meta.concrete_fields if not f.primary_key and f not in fields]
    fixed = tuple(_db_value(f, timezone.now() if getattr(f, "auto_now", False) or
                            getattr(f, "auto_now_add", False) else f.get_default()) for f in rest)
    q = connection.ops.quote_name
    sql = (f"COPY {q(model._meta.db_table)} "
           f"({', '.join(q(f.column) for f in fields + rest)}) FROM STDIN")
    as_json = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    # The raw psycopg cursor: its errors are turned into Django's by hand.
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as out:
        for row in rows:
            values = list(row.values())
            for i in as_json:
                values[i] = _db_value(fields[i], values[i])
            out.write_row((*values, *fixed))


def _db_value(f, value):
    if isinstance(f, models.JSONField):
        return json.dumps(value, cls=f.encoder)
    return value


# --- bulk helpers ---------------------------------------------------------------

def _chunked(items: Iterable, size: int | None = None) -> Iterator[list]:
    # SQLite caps the parameters of one statement; PostgreSQL takes long lists.
    items = list(items)
    size = size or (20000 if connection.vendor == "postgresql" else 900)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _set_ids(model, key: str, columns: list[str], rows: list[tuple]) -> None:
    """UPDATE model SET columns = ... WHERE key = ..., for many rows in one statement.

    rows: (key value, column values...), all integers or None (ids).
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        by_values: dict[tuple, list] = defaultdict(list)
        for key_value, *values in rows:
            by_values[tuple(values)].append(key_value)
        for values, keys in by_values.items():
            for part in _chunked(keys):
                model.objects.filter(**{f"{key}__in": part}).update(
                    **{model._meta.get_field(c).attname: v for c, v in zip(columns, values)})
        return
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    cols = [q(model._meta.get_field(name).column) for name in [key, *columns]]
    sql = (f"UPDATE {table} SET {', '.join(f'{c} = v.{c}' for c in cols[1:])} "
           f"FROM unnest({', '.join(['%s::bigint[]'] * len(cols))}) AS v({', '.join(cols)}) "
           f"WHERE {table}.{cols[0]} = v.{cols[0]}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows)])


# --- grouping -------------------------------------------------------------------

class _Lookup:
    """Light message rows by msgid, read from the database in bulk and memoised."""

    def __init__(self):
        self.rows: dict[str, dict | None] = {}

    def add(self, row: dict) -> None:
        self.rows[row["msgid"]] = row

    def preload(self, msgids: Iterable[str]) -> None:
        wanted = {m for m in msgids if m and m not in self.rows}
        for part in _chunked(wanted):
            for row in Message.objects.filter(msgid__in=part).values(*LIGHT):
                self.rows[row["msgid"]] = row
        for m in wanted:
            self.rows.setdefault(m, None)

    def __call__(self, msgid: str) -> dict | None:
        if msgid not in self.rows:
            self.preload([msgid])
        return self.rows[msgid]


@dataclass
class _Plan:
    """A revision as its mails say it is, before it is written."""
    anchor: str
    members: list[dict]
    cover: dict | None
    patches: list[dict]
    rev: Revision | None = None
    created: bool = False


class _Regroup:
    """Attach one batch of new mails (and the mails that were waiting for them)
    to revisions, series and families."""

    def __init__(self, new_rows: list[dict], new_mails: dict[str, Mail], patch_ids: dict[int, int],
                 edges: dict[str, list]):
        self.new_rows = new_rows
        self.mails = new_mails
        self.edges = edges  # msgid -> edges its body states, read by the parser
        self.patch_ids = patch_ids  # message id -> patch id, grows as needed
        self.lookup = _Lookup()
        self.rev_of_msgid: dict[str, int] = {}  # where this batch put each posted mail
        self.revs: dict[int, Revision] = {}  # revisions built in this batch
        self.children_of_new: dict[str, list[dict]] = {}  # stored replies to new mails

    def run(self) -> set[int]:
        if not self.new_rows:
            return set()
        rows = self.new_rows + self._waiting()
        for row in rows:
            self.lookup.add(row)
        self.lookup.preload(p for r in rows for p in [r["in_reply_to"], *(r["references"] or [])])
        self._find_unthreaded_runs(rows)
        anchors = {self._anchor(r): None for r in rows if r["kind"] in POSTED}
        plans = [self._plan(a, ms) for a, ms in self._members(anchors).items() if ms]
        self._write_revisions(plans)
        touched = set(self.revs)
        touched |= self._attach_replies([r for r in rows if r["kind"] not in POSTED])
        self._record_posting_dependencies(plans)
        self._join_families()
        _order_many(set(Revision.objects.filter(id__in=touched).values_list("series_id", flat=True)))
        return touched

    def _anchor(self, row: dict) -> str:
        anchor = grouping.anchor_of(row, self.lookup)
        return self.run_head.get(anchor, anchor)

    def _find_unthreaded_runs(self, rows: list[dict]) -> None:
        """Postings sent without threading headers that are one run (same sender,
        version and N, minutes apart): the batch's and the stored ones near them."""
        self.run_head: dict[str, str] = {}
        self.run_members: dict[str, list[dict]] = defaultdict(list)
        loose = {r["msgid"]: r for r in rows if grouping.is_unthreaded(r)}
        if not loose:
            return
        senders = {r["from_email"] for r in loose.values()}
        window = timedelta(seconds=grouping.RUN_SECONDS)
        lo = min(r["date"] for r in loose.values()) - window
        hi = max(r["date"] for r in loose.values()) + window
        asked_lo, asked_hi = None, None
        for _ in range(_RUN_WIDENINGS):  # a run stored across batches: widen while it grows
            if (asked_lo, asked_hi) == (lo, hi):
                break
            asked_lo, asked_hi = lo, hi
            for row in (Message.objects.filter(kind__in=POSTED, from_email__in=sorted(senders),
                                               total__gte=2, date__gte=lo, date__lte=hi)
                        .filter(models.Q(in_reply_to__isnull=True) | models.Q(in_reply_to=""))
                        .values(*LIGHT)):
                if row["msgid"] not in loose and grouping.is_unthreaded(row):
                    loose[row["msgid"]] = row
                    self.lookup.rows.setdefault(row["msgid"], row)
            lo = min(lo, min(r["date"] for r in loose.values()) - window)
            hi = max(hi, max(r["date"] for r in loose.values()) + window)
        self.run_head = grouping.unthreaded_runs(loose.values())
        for msgid, head in self.run_head.items():
            self.run_members[head].append(self.lookup.rows.get(msgid) or loose[msgid])

    def _waiting(self) -> list[dict]:
        """Stored mails that reply to a new one: their thread just got a parent."""
        new = [r["msgid"] for r in self.new_rows]
        waiting = self._query_children(new)
        # Remembered: the walk down the threads asks again for the same parents.
        self.children_of_new = {msgid: [] for msgid in new}
        for row in waiting:
            self.children_of_new[row["in_reply_to"]].append(row)
        return waiting

    def _stored_posted_children(self, parents: list[str]) -> list[dict]:
        """Stored covers and patches replying to parents, less this batch's own."""
        known = [row for p in parents for row in self.children_of_new.get(p, ()) if row["kind"] in POSTED]
        asked = [p for p in parents if p not in self.children_of_new]
        return known + (self._query_children(asked, kind__in=POSTED) if asked else [])

    def _query_children(self, parents: list[str], **filters) -> list[dict]:
        new_ids = [r["id"] for r in self.new_rows]
        qs = Message.objects.filter(**filters)
        if connection.vendor == "postgresql":  # long NOT IN lists are hashed there
            qs = qs.exclude(id__in=new_ids)
        new_ids = set(new_ids)
        return [row for part in _chunked(parents)
                for row in qs.filter(in_reply_to__in=part).values(*LIGHT)
                if row["id"] not in new_ids]

    def _members(self, anchors: dict[str, None]) -> dict[str, list[dict]]:
        """Every stored cover/patch of each anchor's posting (walks down the threads)."""
        members: dict[str, list[dict]] = {a: [] for a in anchors}
        seen: set[str] = set()
        frontier = []
        for anchor in anchors:
            for row in [self.lookup(anchor), *self.run_members.get(anchor, ())]:
                if row is not None and row["msgid"] not in seen:
                    members[anchor].append(row)
                    seen.add(row["msgid"])
                    frontier.append(row["msgid"])
        new_children = defaultdict(list)  # the batch's own mails need no query
        for row in self.new_rows:
            if row["kind"] in POSTED and row["in_reply_to"]:
                new_children[row["in_reply_to"]].append(row)
        while frontier:
            children = [row for parent in frontier for row in new_children.get(parent, ())]
            children += self._stored_posted_children(frontier)
            frontier = []
            for child in children:
                if child["msgid"] in seen:
                    continue
                self.lookup.add(child)
                anchor = self._anchor(child)
                if anchor in members:
                    seen.add(child["msgid"])
                    members[anchor].append(child)
                    frontier.append(child["msgid"])
        return members

    def _plan(self, anchor: str, members: list[dict]) -> _Plan:
        cover = next((m for m in members if m["kind"] == Message.COVER), None)
        if cover is None:  # a thread root its patches' author wrote is their cover
            cover = next((m for m in members if m["msgid"] == anchor and m["kind"] not in POSTED), None)
        patches = sorted((m for m in members if m["kind"] == Message.PATCH),
                         key=lambda m: (m["number"] or 1, m["date"] or m["received"]))
        return _Plan(anchor, members, cover, patches)

    # -- revisions --

    def _write_revisions(self, plans: list[_Plan]) -> None:
        existing = {r.anchor: r for part in _chunked(p.anchor for p in plans)
                    for r in Revision.objects.filter(anchor__in=part)}
        authors = self._first_patch_authors([p for p in plans if not p.cover])
        now = timezone.now()
        for plan in plans:
            plan.rev = existing.get(plan.anchor)
            plan.created = plan.rev is None
            if plan.created:
                plan.rev = Revision(anchor=plan.anchor)
            _fill_revision(plan, authors)
            plan.rev.updated = now
        self._claim_msgids(plans)
        fresh = [p for p in plans if p.created]
        series = [Series(title=p.rev.title, author_email=p.rev.author_email,
                         change_id=p.rev.change_id) for p in fresh]
        _bulk_create_with_ids(Series, series)
        for plan, s in zip(fresh, series):
            plan.rev.series_id = s.id
        _bulk_create_with_ids(Revision, [p.rev for p in fresh])
        Revision.objects.bulk_update([p.rev for p in plans if not p.created], _REVISION_FIELDS)
        for plan in plans:
            self.revs[plan.rev.id] = plan.rev
        self._move_members(plans)

    def _first_patch_authors(self, plans: list[_Plan]) -> dict[str, tuple[str, str]]:
        # A revision without a cover is authored by its first patch's author.
        authors = {}
        stored = []
        for plan in plans:
            first = plan.patches[0]
            mail = self.mails.get(first["msgid"])
            if mail is not None:
                authors[first["msgid"]] = (mail.author_name or mail.from_name,
                                           mail.author_email or mail.from_email)
            else:
                stored.append(first["id"])
        for part in _chunked(stored):
            for msgid, name, email in Patch.objects.filter(message_id__in=part).values_list(
                    "message__msgid", "author_name", "author_email"):
                authors[msgid] = (name, email)
        return authors

    def _claim_msgids(self, plans: list[_Plan]) -> None:
        # A cover arriving after its patches renames the revision: the stale
        # row that held the first patch's msgid gives way.
        wanted = {p.rev.msgid: p.anchor for p in plans}
        for part in _chunked(wanted):
            for rid, msgid, anchor in Revision.objects.filter(msgid__in=part).values_list(
                    "id", "msgid", "anchor"):
                if anchor != wanted[msgid]:
                    Revision.objects.filter(id=rid).update(msgid=f"stale:{rid}:{msgid}"[:500])

    def _move_members(self, plans: list[_Plan]) -> None:
        moves, patch_moves, former = [], [], set()
        for plan in plans:
            rid = plan.rev.id
            for m in plan.members:
                self.rev_of_msgid[m["msgid"]] = rid
                if m["revision_id"] == rid:
                    continue
                if m["revision_id"] is not None:
                    former.add(m["revision_id"])
                moves.append((m["id"], rid))
                if m["kind"] == Message.PATCH:
                    patch_moves.append((m["id"], rid))
                m["revision_id"] = rid
        _set_ids(Message, "id", ["revision"], moves)
        _set_ids(Patch, "message", ["revision"], patch_moves)
        _drop_emptied_revisions(former - set(self.revs))

    # -- replies --

    def _attach_replies(self, replies: list[dict]) -> set[int]:
        owned = []
        for reply in replies:
            owner = grouping.owner_of_reply(reply, self.lookup, self._adopted_cover)
            if owner is None:
                continue
            rid = self.rev_of_msgid.get(owner["msgid"], owner.get("revision_id"))
            if rid is not None:
                owned.append((reply, owner, rid))
        if not owned:
            return set()
        owner_patches = [o["id"] for _, o, _ in owned
                         if o["kind"] == Message.PATCH and o["id"] not in self.patch_ids]
        self.patch_ids.update(_ids_by(Patch, "message_id", owner_patches))
        _set_ids(Message, "id", ["revision"], [(r["id"], rid) for r, _, rid in owned])
        _set_ids(Trailer, "message", ["revision", "patch"], [
            (r["id"], rid, self.patch_ids.get(o["id"]) if o["kind"] == Message.PATCH else None)
            for r, o, rid in owned])
        revs = self._revisions({rid for _, _, rid in owned})
        edges = self._stated_edges([r for r, _, _ in owned], is_reply=True)
        _record_text_dependencies([(revs[rid], edges[r["msgid"]], True)
                                   for r, _, rid in owned if rid in revs])
        return {rid for _, _, rid in owned}

    def _adopted_cover(self, row: dict) -> bool:
        # A root of kind "other" heads a revision only as an adopted cover.
        return not row["in_reply_to"] and not row["references"] and (
            row["msgid"] in self.rev_of_msgid or row["revision_id"] is not None)

    def _revisions(self, ids: set[int]) -> dict[int, Revision]:
        found = {i: self.revs[i] for i in ids if i in self.revs}
        rest = ids - set(found)
        found.update(Revision.objects.in_bulk(list(rest)) if rest else {})
        return found

    def _stated_edges(self, rows: list[dict], is_reply: bool) -> dict[str, list]:
        """msgid -> the edges the mail's body states (read by the parser when it could)."""
        # The parser read a root of kind "other" as a reply; as an adopted cover it is read again.
        found = {r["msgid"]: self.edges[r["msgid"]] for r in rows
                 if r["msgid"] in self.edges and (is_reply or r["kind"] != Message.OTHER)}
        bodies = {r["msgid"]: self.mails[r["msgid"]].body for r in rows
                  if r["msgid"] not in found and r["msgid"] in self.mails}
        stored = [r["id"] for r in rows if r["msgid"] not in found and r["msgid"] not in bodies]
        for part in _chunked(stored):
            bodies.update(Message.objects.filter(id__in=part).values_list("msgid", "body"))
        found.update({msgid: deps.discover_text_edges(msgid, body, is_reply=is_reply)
                      for msgid, body in bodies.items()})
        return found

    def _record_posting_dependencies(self, plans: list[_Plan]) -> None:
        # The cover (else the first patch) states what the posting needs; read
        # it when it is new or when its revision is.
        evidence = []
        for plan in plans:
            first = plan.cover or plan.patches[0]
            if plan.created or first["msgid"] in self.mails:
                evidence.append((plan.rev, first))
        edges = self._stated_edges([row for _, row in evidence], is_reply=False)
        _record_text_dependencies([(rev, edges[row["msgid"]], False) for rev, row in evidence])
        self._record_patch_note_tags(plans, {row["msgid"] for _, row in evidence})

    def _record_patch_note_tags(self, plans: list[_Plan], read: set[str]) -> None:
        """Based-on:/Depends-on:/Supersedes:/prerequisite-* in any new patch's
        notes (below ---) or commit message speak for its posting too."""
        sources = []
        for plan in plans:
            for row in plan.patches:
                mail = self.mails.get(row["msgid"])
                if row["msgid"] in read or mail is None or not _DEP_TAG.search(mail.body):
                    continue
                tagged = [e for e in deps.discover_text_edges(row["msgid"], mail.body, is_reply=False)
                          if e.how == "tag"]
                sources.append((plan.rev, tagged, False))
        _record_text_dependencies(sources)

    # -- families --

    def _join_families(self) -> None:
        """Join each revision of the batch to the family its mails point at."""
        revs = list(self.revs.values())
        if not revs:
            return
        links = _FamilyLinks()
        links.same_key(revs)
        links.stated_previous(revs)
        links.named_as_previous(revs)
        links.reply_parents(revs, self.lookup, self.rev_of_msgid)
        _merge_series_many(links.merges())
        for rev in revs:
            rev.series_id = links.root(rev.series_id)


def _fill_revision(plan: _Plan, authors: dict[str, tuple[str, str]]) -> None:
    cover, patches = plan.cover, plan.patches
    members = plan.members
    first = cover or patches[0]
    # The same patches sent twice in one run are one patch each ([n/8] stays 8,
    # not "16 of 16"); a [PATCH 3/2] extra counts as received but expects nothing.
    numbers = {m["number"] or 1 for m in patches}
    declared = max([m["total"] or 0 for m in patches] or [m["total"] or 0 for m in members], default=0)
    expected = declared or max(len(numbers), 1)
    complete, missing = grouping.completeness(numbers, first["total"] or (1 if not cover else expected))
    tags = _revision_tags(cover, patches)
    rev = plan.rev
    rev.msgid = first["msgid"]
    # The patches' own label wins over a cover that says another version.
    versions = [m["version"] for m in patches] or [first["version"]]
    rev.version, rev.title = max(set(versions), key=versions.count), first["title"]
    rev.title_key = grouping.normalize_title(first["title"])[:255]
    subject = first["subject"]
    rev.rfc = "RFC" in subject.upper().split("]")[0] if subject.startswith("[") else False
    rev.cover_id = cover["id"] if cover else None
    rev.author_name, rev.author_email = (
        (cover["from_name"], cover["from_email"]) if cover else
        authors.get(first["msgid"], (first["from_name"], first["from_email"])))
    rev.mailing_list_id = first["mailing_list_id"]
    rev.date = first["date"]
    rev.expected, rev.received = expected, len(numbers)
    rev.complete, rev.missing = complete, missing
    base = (tags.get("base-commit") or [None])[0]
    rev.base_commit = base if base and len(base) <= 64 else None
    rev.change_id = (tags.get("change-id") or [None])[0]
    rev.prerequisites = [{"kind": k[len("prerequisite-"):], "value": v}
                         for k, vs in tags.items() if k.startswith("prerequisite-") for v in vs]


_REVISION_FIELDS = ["msgid", "version", "title", "title_key", "rfc", "cover", "author_name",
                    "author_email", "mailing_list", "date", "expected", "received", "complete",
                    "missing", "base_commit", "change_id", "prerequisites", "updated"]


def _revision_tags(cover: dict | None, patches: list[dict]) -> dict[str, list[str]]:
    # The cover's base-commit wins over one quoted inside a patch.
    tags: dict[str, list[str]] = {}
    for m in ([cover] if cover else []) + patches:
        for key, values in (m["tags"] or {}).items():
            tags.setdefault(key, values)
    return tags


def _bulk_create_with_ids(model, objs: list) -> None:
    if not objs:
        return
    model.objects.bulk_create(objs)
    if connection.features.can_return_rows_from_bulk_insert:
        return
    for obj in objs:  # older SQLite: no RETURNING, save one by one
        if obj.pk is None:
            obj.save(force_insert=True)


def _drop_emptied_revisions(former: set[int]) -> None:
    """Revisions whose mails all moved to another (their cover arrived late) go away."""
    for stale in Revision.objects.filter(id__in=former).select_related("series"):
        if stale.patches.exists() or stale.cover_id is not None:
            continue
        # Its replies follow its mails: to the revision that took its first mail.
        heir = Message.objects.filter(msgid=stale.msgid).values_list("revision_id", flat=True).first()
        Message.objects.filter(revision=stale).update(revision_id=heir)
        Trailer.objects.filter(revision=stale).update(revision_id=heir)
        Revision.objects.filter(previous=stale).update(previous=None)
        Dependency.objects.filter(target_revision=stale).update(target_revision=None)
        series = stale.series
        stale.delete()
        if not series.revisions.exists():
            series.delete()


def _bounded_version(version: int | None) -> int | None:
    # "v99999999999" in prose is no version; the column is a 32-bit integer.
    return version if version is not None and 0 <= version <= 1_000_000 else None


def _record_text_dependencies(sources: list[tuple[Revision, list, bool]]) -> None:
    """sources: (revision, edges stated by one of its mails, is_reply)."""
    rows = [Dependency(source=rev, kind=e.kind, target=e.target, how="reply" if is_reply else e.how,
                       evidence_msgid=e.source_msgid, target_type=e.target_type,
                       evidence=e.evidence, version=_bounded_version(e.version), extra=e.extra)
            for rev, edges, is_reply in sources
            for e in edges
            if e.target not in (rev.msgid, rev.anchor) and len(e.target) <= mails.MSGID_MAX]
    Dependency.objects.bulk_create(rows, ignore_conflicts=True)


# --- families ---------------------------------------------------------------------

class _FamilyLinks:
    """Union-find over series ids: which series of the batch are one family."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def root(self, sid: int) -> int:
        while self.parent.get(sid, sid) != sid:
            sid = self.parent[sid]
        return sid

    def link(self, a: int | None, b: int | None) -> None:
        if a is None or b is None:
            return
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def merges(self) -> list[tuple[int, set[int]]]:
        groups: dict[int, set[int]] = defaultdict(set)
        for sid in list(self.parent):
            groups[self.root(sid)].add(sid)
        return [(keep, members - {keep}) for keep, members in groups.items() if members - {keep}]

    def same_key(self, revs: list[Revision]) -> None:
        # Same change-id, or same author and title: one family, stored or new.
        by_change = defaultdict(list)
        by_title = defaultdict(list)
        for rev in revs:
            if rev.change_id:
                by_change[rev.change_id].append(rev.series_id)
            by_title[(rev.author_email, rev.title_key)].append(rev.series_id)
        for part in _chunked(by_change):
            for cid, sid in (Revision.objects.filter(change_id__in=part).order_by()
                             .values_list("change_id", "series_id").distinct()):
                by_change[cid].append(sid)
        titles = {t for _, t in by_title}
        for part in _chunked(titles):
            for email, title, sid in (Revision.objects.filter(title_key__in=part).order_by()
                                      .values_list("author_email", "title_key", "series_id").distinct()):
                if (email, title) in by_title:
                    by_title[(email, title)].append(sid)
        for sids in chain(by_change.values(), by_title.values()):
            for sid in sids[1:]:
                self.link(sids[0], sid)

    def stated_previous(self, revs: list[Revision]) -> None:
        # "Changes since v2 [4]": the mail names its previous revision.
        series = {r.id: r.series_id for r in revs}
        stated = [(src, target) for part in _chunked(series) for src, target in
                  Dependency.objects.filter(source_id__in=part, kind=Dependency.PREVIOUS,
                                            target_type="msgid").values_list("source_id", "target")]
        found = _resolve_light([t for _, t in stated])
        for src, target in stated:
            if target in found and found[target]["id"] != src:
                self.link(series[src], found[target]["series_id"])

    def named_as_previous(self, revs: list[Revision]) -> None:
        # A later revision that arrived first and named one of these as its previous.
        owner: dict[str, int] = {}
        for part in _chunked(r.id for r in revs):
            owner.update(Message.objects.filter(revision_id__in=part).values_list("msgid", "revision_id"))
        owner.update({r.msgid: r.id for r in revs})
        series = {r.id: r.series_id for r in revs}
        for part in _chunked(owner):
            for target, src, sid in Dependency.objects.filter(
                    kind=Dependency.PREVIOUS, target__in=part).values_list(
                    "target", "source_id", "source__series_id"):
                if src != owner[target]:
                    self.link(series[owner[target]], sid)

    def reply_parents(self, revs: list[Revision], lookup: _Lookup, placed: dict[str, int]) -> None:
        # A v2 posted in reply to v1 belongs to v1's family.
        parent_rev = {}
        for rev in revs:
            first = lookup(rev.anchor)
            parent = lookup(first["in_reply_to"]) if first and first["in_reply_to"] else None
            if parent is not None:
                rid = placed.get(parent["msgid"], parent["revision_id"])
                if rid is not None and rid != rev.id:
                    parent_rev[rev.id] = rid
        known = {r.id: (r.version, r.series_id) for r in revs}
        missing = set(parent_rev.values()) - set(known)
        for part in _chunked(missing):
            known.update((i, (v, s)) for i, v, s in Revision.objects.filter(id__in=part)
                         .values_list("id", "version", "series_id"))
        for rev in revs:
            version, sid = known.get(parent_rev.get(rev.id), (None, None))
            if sid is not None and version <= rev.version:
                self.link(rev.series_id, sid)


def _merge_series_many(merges: list[tuple[int, set[int]]]) -> None:
    """Fold each group's series into its kept one: a handful of statements for
    all the batch's merges (one per merge cost ~7 and dominated big imports)."""
    if not merges:
        return
    into = {d: keep for keep, drop in merges for d in drop}
    moves = [(rid, into[sid]) for part in _chunked(into)
             for rid, sid in Revision.objects.filter(series_id__in=part).values_list("id", "series_id")]
    _set_ids(Revision, "id", ["series"], moves)
    everyone = set(into) | {keep for keep, _ in merges}
    change_ids = {i: c for part in _chunked(everyone)
                  for i, c in Series.objects.filter(id__in=part).values_list("id", "change_id")}
    for keep, drop in merges:
        if not change_ids.get(keep):
            inherited = next((change_ids[s] for s in sorted(drop) if change_ids.get(s)), None)
            if inherited:
                Series.objects.filter(id=keep).update(change_id=inherited)
    for part in _chunked(into):
        Series.objects.filter(id__in=part).delete()


# --- lookups by msgid -----------------------------------------------------------------

# Lookups are reads: reviewapp.selectors.resolve_msgids / revision_of_msgid.


def _resolve_light(msgids: Iterable[str]) -> dict[str, dict]:
    """resolve_msgids() as {msgid: {"id", "msgid", "series_id", "version", "date"}}:
    no model instances."""
    wanted = set(msgids)
    found: dict[str, dict] = {}
    cols = ("id", "msgid", "anchor", "series_id", "version", "date")
    for field_name in ("msgid", "anchor"):
        rest = wanted - set(found)
        for part in _chunked(rest):
            for row in Revision.objects.filter(**{f"{field_name}__in": part}).order_by().values(*cols):
                found[row[field_name]] = row
    rest = wanted - set(found)
    for part in _chunked(rest):
        for msgid, *values in (Message.objects.filter(msgid__in=part).exclude(revision=None)
                               .values_list("msgid", "revision_id", "revision__msgid",
                                            "revision__series_id", "revision__version",
                                            "revision__date")):
            found[msgid] = dict(zip(("id", "msgid", "series_id", "version", "date"), values))
    return found


# --- order within a family ------------------------------------------------------------

def order_series(series_id: int) -> None:
    """Set each revision's previous one, and the series title from the newest."""
    _order_many({series_id})


def _newest_stated(stated: list[tuple[str, str, int]]) -> dict[str, str]:
    """source msgid -> msgid of the revision of its family it names as previous.
    stated: (source msgid, target msgid, source series id). A cover that lists
    all its earlier versions ("v7: <link>, v6: <link>, ...") means the newest."""
    targets = _resolve_light(t for _, t, _ in stated)
    best: dict[str, tuple] = {}
    for source, target, series_id in stated:
        found = targets.get(target)
        if found is None or found["msgid"] == source or found["series_id"] != series_id:
            continue
        key = (found["version"], found["date"].isoformat() if found["date"] else "", found["msgid"])
        if source not in best or key > best[source][0]:
            best[source] = (key, found)
    return {source: found["msgid"] for source, (_, found) in best.items()}


def _order_many(series_ids: set[int]) -> None:
    if not series_ids:
        return
    ids = list(series_ids)
    revs = [r for part in _chunked(ids) for r in Revision.objects.filter(series_id__in=part)
            .order_by().values("id", "msgid", "version", "date", "previous_id", "title", "series_id")]
    stated = [row for part in _chunked(ids) for row in Dependency.objects.filter(
        source__series_id__in=part, kind=Dependency.PREVIOUS, target_type="msgid")
        .values_list("source__msgid", "target", "source__series_id")]
    explicit = _newest_stated(stated)
    families: dict[int, list[dict]] = defaultdict(list)
    for r in revs:
        r["date_key"] = r["date"].isoformat() if r["date"] else ""
        families[r["series_id"]].append(r)
    changes, titles = [], {}
    for sid, family in families.items():
        previous = grouping.order_family(
            [{"msgid": r["msgid"], "version": r["version"], "date": r["date_key"]} for r in family],
            explicit)
        by_msgid = {r["msgid"]: r["id"] for r in family}
        for r in family:
            want = by_msgid.get(previous.get(r["msgid"]) or "")
            if want != r["previous_id"]:
                changes.append((r["id"], want))
        titles[sid] = max(family, key=lambda r: (r["version"], r["date_key"]))["title"]
    _set_ids(Revision, "id", ["previous"], changes)
    for sid, title in Series.objects.filter(id__in=list(titles)).values_list("id", "title"):
        if title != titles[sid]:
            Series.objects.filter(id=sid).update(title=titles[sid])
