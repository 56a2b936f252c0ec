"""Fetch a thread from the public-inbox at LORE_URL (through b4) and ingest it.

A FetchRequest row records each attempt: claimed with a conditional update so
two workers never run the same request, and failed with a clear error.
"""
import io

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from untangle import lore, mbox

from ..models import FetchRequest
from . import leases
from .ingest import IngestResult, ingest


def request_fetch(ref: str) -> FetchRequest:
    msgid = lore.parse_ref(ref)
    return FetchRequest.objects.create(ref=ref, msgid=msgid)


PENDING = (FetchRequest.QUEUED, FetchRequest.RUNNING)


def queue_fetch(ref: str) -> tuple[FetchRequest, bool]:
    """One fetch per msgid while one is pending: a second ask joins the first.

    Returns the request and whether it is new; a new one is sent to the worker on commit.
    Raises ValueError for a ref that names no message-id."""
    msgid = lore.parse_ref(ref)
    with transaction.atomic():
        req = FetchRequest.objects.select_for_update().filter(msgid=msgid, state__in=PENDING).first()
        if req is not None:
            return req, False
        req = FetchRequest.objects.create(ref=ref, msgid=msgid)
        from .. import dispatch
        dispatch.fetch_thread(req.id)
    return req, True


def claim(request_id: int) -> bool:
    won = FetchRequest.objects.filter(
        leases.claimable("state", [FetchRequest.QUEUED, FetchRequest.FAILED], FetchRequest.RUNNING),
        id=request_id).update(state=FetchRequest.RUNNING, **leases.lease_fields())
    return won == 1


def limits() -> lore.FetchLimits:
    return lore.FetchLimits(max_bytes=settings.FETCH_MAX_BYTES,
                            wall_clock=float(settings.FETCH_TIMEOUT))


def fetch_thread(msgid: str) -> IngestResult:
    data = lore.fetch_thread(msgid, settings.LORE_URL, limits=limits())
    return ingest(mbox.messages_from_stream(io.BytesIO(data)))


def run(request_id: int) -> FetchRequest:
    """Do one attempt. Raises lore.FetchError after recording it, so a task can retry."""
    req = FetchRequest.objects.get(id=request_id)
    FetchRequest.objects.filter(id=req.id).update(attempts=req.attempts + 1)
    try:
        with leases.heartbeat(FetchRequest, req.id):
            result = fetch_thread(req.msgid)
    except Exception as exc:  # any failure ends the row (a FetchError is then retried)
        error = str(exc) if isinstance(exc, lore.FetchError) else f"{type(exc).__name__}: {exc}"
        FetchRequest.objects.filter(id=req.id).update(
            state=FetchRequest.FAILED, error=error, finished=timezone.now(), lease_until=None)
        raise
    from ..selectors import revisions
    msgids = [r.msgid for r in revisions(result.revisions)]
    with transaction.atomic():
        FetchRequest.objects.filter(id=req.id).update(
            state=FetchRequest.DONE, error="", revisions=msgids, finished=timezone.now())
    req.refresh_from_db()
    return req
