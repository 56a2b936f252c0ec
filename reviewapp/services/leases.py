"""Leases on claimed work, so nothing stays "running" after its worker died.

A worker that claims a row (an apply run, a suite run, a fetch request, ...) sets
its lease_until and, while it works, a heartbeat thread pushes it forward every
LEASE_HEARTBEAT_S.  A row still "running" past its lease lost its worker (SIGKILL,
OOM, a power cut): the reaper (a beat task, and every worker at start-up) removes
its scratch dirs and re-queues it once, or, when it was re-queued already, ends it
as failed with "worker lost".  A redelivered task may take over such a row too
(`claimable`), but never one whose lease is live.

Adopting it for another kind of run (a sync run, say): give the model the two
columns (lease_until, requeues), claim with `claimable(...)` and `lease_fields()`,
wrap the work in `heartbeat(Model, pk)`, and `register(Kind(...))`.
"""
from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

log = logging.getLogger("reviewapp.leases")

WORKER_LOST = "worker lost"


def lease_fields() -> dict:
    """What a claim writes besides its status: a fresh lease."""
    return {"lease_until": timezone.now() + timedelta(seconds=settings.LEASE_S)}


def expired(status_field: str, running: str, legacy: bool = True) -> Q:
    """Rows whose worker is gone: running past their lease (or, for rows claimed
    before leases existed, running with none for longer than a lease; legacy=False
    for a model where "running" with no lease means "not claimed", a digest)."""
    now = timezone.now()
    lapsed = Q(lease_until__lt=now)
    if legacy:
        lapsed |= Q(lease_until__isnull=True, created__lt=now - timedelta(seconds=settings.LEASE_S))
    return Q(**{status_field: running}) & lapsed


def claimable(status_field: str, queued: list[str], running: str) -> Q:
    """A claim's condition: queued, or running with a dead worker (a take-over)."""
    return Q(**{f"{status_field}__in": queued}) | expired(status_field, running)


def unleased_or_expired() -> Q:
    """A claim's condition where the claimed and the free row share a state (a
    composed digest): no lease, or a lease its holder stopped renewing."""
    return Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now())


# ------------------------------------------------------------------ heartbeat

class _Beater(threading.Thread):
    def __init__(self, model, pk: int, every: float):
        super().__init__(name=f"lease-{model.__name__}-{pk}", daemon=True)
        self.model, self.pk, self.every = model, pk, every
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.wait(self.every):
                try:
                    self.model.objects.filter(pk=self.pk).update(**lease_fields())
                except Exception:  # noqa: BLE001 -- a missed beat is retried; the lease has slack
                    log.warning("lease heartbeat for %s %s failed", self.model.__name__, self.pk,
                                exc_info=True)
                    close_old_connections()
        finally:
            connection.close()  # this thread's own connection


@contextmanager
def heartbeat(model, pk: int, every: float | None = None) -> Iterator[None]:
    """Keep the row's lease live while the block runs (in a thread: a long git or
    QEMU step reports no progress for minutes). The claim (or the row's creation)
    took the first lease."""
    beater = _Beater(model, pk, settings.LEASE_HEARTBEAT_S if every is None else every)
    beater.start()
    try:
        yield
    finally:
        beater.stop.set()
        beater.join(timeout=30)
        model.objects.filter(pk=pk).update(lease_until=None)


# ------------------------------------------------------------------ the reaper

@dataclass(frozen=True)
class Kind:
    """How to reap one model's rows."""
    name: str
    model: type
    status_field: str
    queued: str
    running: str
    lost: Callable[[object], dict]          # fields that end a row as lost
    requeue: Callable[[int], None]          # sends its task again (after commit)
    scratch: Callable[[int], list[Path]] = field(default=lambda pk: [])
    legacy: bool = True  # a running row with no lease and an old `created` is lost too


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    KINDS[kind.name] = kind


@dataclass
class Reaped:
    kind: str
    id: int
    outcome: str  # "requeued" or "lost"


def reap() -> list[Reaped]:
    """Find rows whose lease expired; re-queue each once, else mark it lost."""
    _register_defaults()
    done: list[Reaped] = []
    for kind in KINDS.values():
        for pk in list(kind.model.objects.filter(expired(kind.status_field, kind.running, kind.legacy))
                       .values_list("pk", flat=True)):
            outcome = _reap_one(kind, pk)
            if outcome:
                done.append(Reaped(kind.name, pk, outcome))
                log.warning("%s %s: lease expired, %s", kind.name, pk, outcome)
    return done


def _reap_one(kind: Kind, pk: int) -> str | None:
    for path in kind.scratch(pk):
        shutil.rmtree(path, ignore_errors=True)
    gone = kind.model.objects.filter(expired(kind.status_field, kind.running, kind.legacy), pk=pk)
    with transaction.atomic():
        if gone.filter(requeues__lt=settings.LEASE_MAX_REQUEUES).update(
                **{kind.status_field: kind.queued}, lease_until=None, requeues=F("requeues") + 1):
            kind.requeue(pk)
            return "requeued"
        row = gone.first()
        if row is None:  # its worker came back, or another reaper was first
            return None
        if gone.update(lease_until=None, **kind.lost(row)):
            return "lost"
    return None


_defaults_done = False


def _register_defaults() -> None:
    """The kinds this app has (imported late: the services import this module)."""
    global _defaults_done
    if _defaults_done:
        return
    from .. import dispatch
    from ..models import ApplyRun, Digest, FetchRequest, SuiteRun, SyncRun
    from . import digests, suites, sync

    now = timezone.now
    register(Kind("apply run", ApplyRun, "status", ApplyRun.QUEUED, ApplyRun.RUNNING,
                  lambda row: {"status": ApplyRun.FAILED, "error": WORKER_LOST, "finished": now(),
                               "failed": {"msgid": None, "error": WORKER_LOST, "files": []}},
                  dispatch.apply_run))
    register(Kind("suite run", SuiteRun, "status", SuiteRun.QUEUED, SuiteRun.RUNNING,
                  suites.lost_fields, dispatch.run_suite, suites.scratch_dirs))
    register(Kind("fetch", FetchRequest, "state", FetchRequest.QUEUED, FetchRequest.RUNNING,
                  lambda row: {"state": FetchRequest.FAILED, "error": WORKER_LOST, "finished": now()},
                  dispatch.fetch_thread))
    register(Kind("sync run", SyncRun, "status", SyncRun.QUEUED, SyncRun.RUNNING,
                  lambda row: {"status": SyncRun.FAILED, "error": WORKER_LOST, "finished_at": now()},
                  sync.requeue))
    # A digest is claimed without changing state (composed, with a lease): re-queued
    # is "composed, lease cleared, sent again"; lost is failed, never sent twice.
    register(Kind("digest", Digest, "state", Digest.COMPOSED, Digest.COMPOSED,
                  lambda row: {"state": digests.FAILED, "error": WORKER_LOST, "sending_since": None},
                  digests.requeue, legacy=False))
    _defaults_done = True
