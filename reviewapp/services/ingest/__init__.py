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

The package, along its seams: this module drives an import (parsing, batches,
quarantine); store.py writes the mail rows, bulk.py holds the bulk SQL helpers,
regroup.py attaches a batch to revisions, families.py joins and orders families,
lookups.py resolves msgids to revisions without model instances.
"""
import hashlib
import logging
import os
import re
from collections import deque
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Iterable, Iterator

from django.db import DataError, IntegrityError, transaction

from untangle import mail as mails
from untangle.mail import Mail, MailError

from ...models import Message, QuarantinedMail
from .bulk import chunked
from .families import order_series
from .regroup import Regroup
from .store import list_ids, store_mails

__all__ = ["ingest", "IngestResult", "limits_from_settings", "order_series", "BATCH", "CHUNK", "INFLIGHT"]

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
    from ... import dispatch
    dispatch.recompute_graphs(sorted(revision_ids))
    dispatch.recompute_reviews(sorted(revision_ids))


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
    existing = {msgid for part in chunked(parsed)
                for msgid in Message.objects.filter(msgid__in=part).values_list("msgid", flat=True)}
    duplicates += len(existing)
    new = [m for k, m in parsed.items() if k not in existing]
    if not new:
        return 0, duplicates, set()
    rows, patch_ids = store_mails(new, list_name, list_ids(new, list_name, lists))
    return len(new), duplicates, Regroup(rows, {m.msgid: m for m in new}, patch_ids, edges).run()
