"""Write parsed mails as rows: messages, patches, files, trailers (COPY on PostgreSQL)."""
import logging

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from untangle import mail as mails
from untangle.mail import Mail

from ...models import MailingList, Message, Patch, PatchFile, Trailer
from .bulk import insert_rows, insert_with_ids

log = logging.getLogger("reviewapp.ingest")
# The columns grouping needs: everything but the bodies.
LIGHT = ("id", "msgid", "kind", "version", "number", "total", "in_reply_to", "references",
         "from_email", "from_name", "title", "subject", "date", "received", "tags",
         "mailing_list_id", "revision_id")


def list_ids(new: list[Mail], forced: str | None, cache: dict[str, int]) -> dict[str, int]:
    names = {forced} if forced else {m.lists[0] for m in new if m.lists}
    for name in names - set(cache):
        cache[name] = MailingList.objects.get_or_create(name=name)[0].id
    return cache


def store_mails(new: list[Mail], forced: str | None,
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
    rows, ids = insert_with_ids(Message, rows, "msgid", copy)
    light = []
    for row in rows:
        if row["msgid"] in ids:
            light.append({name: row[name] for name in LIGHT if name != "id"} | {"id": ids[row["msgid"]]})
    patches = [dict(message_id=ids[m.msgid], revision_id=None, number=m.number or 1,
                    subject=m.title, author_name=m.author_name or m.from_name,
                    author_email=m.author_email or m.from_email, date=m.date,
                    commit_message=m.commit_message, diff=m.diff, patch_id=m.patch_id)
               for m in new if m.kind == mails.PATCH and m.msgid in ids]
    patches, patch_ids = insert_with_ids(Patch, patches, "message_id", copy)
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
    insert_rows(PatchFile, files, copy)
    insert_rows(Trailer, list(trailers.values()), copy)
    return light, patch_ids
