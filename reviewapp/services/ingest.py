"""Store mails and (re)build the revisions and series they belong to.

Streams: messages are parsed and written in batches, so memory stays flat in
the size of the input. Idempotent: Message-ID is unique, and a mail already
stored is not parsed into rows again.
"""
import logging
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from django.db import transaction
from django.db.models import Q

from untangle import deps, grouping, mail as mails
from untangle.mail import Mail, MailError

from ..models import (Dependency, MailingList, Message, Patch, PatchFile, Revision, Series,
                      Trailer)

log = logging.getLogger("reviewapp.ingest")
BATCH = 500


@dataclass
class IngestResult:
    revisions: set[int] = field(default_factory=set)  # ids of revisions touched
    stored: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


def ingest(raw_messages: Iterable[bytes], list_name: str | None = None) -> IngestResult:
    result = IngestResult()
    batch: list[bytes] = []
    for raw in raw_messages:
        batch.append(raw)
        if len(batch) >= BATCH:
            _ingest_batch(batch, list_name, result)
            batch = []
    if batch:
        _ingest_batch(batch, list_name, result)
    return result


def _parse_all(raws: list[bytes], result: IngestResult) -> Iterator[Mail]:
    for raw in raws:
        try:
            yield mails.parse(raw)
        except MailError as exc:
            result.errors.append(str(exc))


def _ingest_batch(raws: list[bytes], list_name: str | None, result: IngestResult) -> None:
    parsed: dict[str, Mail] = {}
    for mail in _parse_all(raws, result):
        if mail.msgid in parsed:
            result.duplicates += 1
        parsed.setdefault(mail.msgid, mail)
    with transaction.atomic():
        existing = set(Message.objects.filter(msgid__in=list(parsed)).values_list("msgid", flat=True))
        result.duplicates += len(existing)
        new = [m for k, m in parsed.items() if k not in existing]
        lists = _lists_for(new, list_name)
        Message.objects.bulk_create([_message_row(m, lists) for m in new], ignore_conflicts=True)
        ids = dict(Message.objects.filter(msgid__in=[m.msgid for m in new]).values_list("msgid", "id"))
        _store_patches_and_trailers(new, ids)
        result.stored += len(new)
        touched = _regroup([m.msgid for m in new])
        result.revisions |= touched


def _lists_for(new: list[Mail], forced: str | None) -> dict[str, int]:
    names = {forced} if forced else {m.lists[0] for m in new if m.lists}
    rows = {}
    for name in names:
        rows[name] = MailingList.objects.get_or_create(name=name)[0].id
    return rows


def _message_row(mail: Mail, lists: dict[str, int]) -> Message:
    list_id = next(iter(lists.values())) if len(lists) == 1 and None not in lists else \
        lists.get(mail.lists[0]) if mail.lists else None
    return Message(
        msgid=mail.msgid, mailing_list_id=list_id, subject=mail.subject, from_name=mail.from_name,
        from_email=mail.from_email, date=mail.date, in_reply_to=mail.in_reply_to,
        references=mail.references, kind=mail.kind, version=mail.version, number=mail.number,
        total=mail.total, title=mail.title, body=mail.body, tags=mail.tags)


def _store_patches_and_trailers(new: list[Mail], ids: dict[str, int]) -> None:
    patches = [Patch(message_id=ids[m.msgid], revision=None, number=m.number or 1,
                     subject=m.title, author_name=m.author_name or m.from_name,
                     author_email=m.author_email or m.from_email, date=m.date,
                     commit_message=m.commit_message, diff=m.diff, patch_id=m.patch_id)
               for m in new if m.kind == mails.PATCH and m.msgid in ids]
    Patch.objects.bulk_create(patches, ignore_conflicts=True)
    patch_ids = dict(Patch.objects.filter(message_id__in=[p.message_id for p in patches])
                     .values_list("message_id", "id"))
    files, trailers = [], []
    for m in new:
        mid = ids.get(m.msgid)
        pid = patch_ids.get(mid)
        for f in m.files:
            files.append(PatchFile(patch_id=pid, path=f.path, old_path=f.old_path,
                                   old_blob=f.old_blob, new_blob=f.new_blob, status=f.status))
        for t in m.trailers:
            trailers.append(Trailer(kind=t.kind, name=t.name, email=t.email, value=t.value,
                                    message_id=mid, patch_id=pid))
    PatchFile.objects.bulk_create(files)
    Trailer.objects.bulk_create(trailers, ignore_conflicts=True)


# --- grouping -------------------------------------------------------------

class _Lookup:
    """Message summaries by msgid, read from the database in bulk and memoised."""

    def __init__(self):
        self.cache: dict[str, dict | None] = {}

    def preload(self, msgids: Iterable[str]) -> None:
        wanted = [m for m in set(msgids) if m and m not in self.cache]
        for i in range(0, len(wanted), 900):
            for row in Message.objects.filter(msgid__in=wanted[i:i + 900]):
                self.cache[row.msgid] = row.summary()
        for m in wanted:
            self.cache.setdefault(m, None)

    def __call__(self, msgid: str) -> dict | None:
        if msgid not in self.cache:
            self.preload([msgid])
        return self.cache[msgid]


def _regroup(msgids: list[str]) -> set[int]:
    """Attach new mails (and the mails that were waiting for them) to revisions."""
    if not msgids:
        return set()
    waiting = Message.objects.filter(in_reply_to__in=msgids).exclude(msgid__in=msgids)
    rows = list(Message.objects.filter(msgid__in=msgids)) + list(waiting)
    lookup = _Lookup()
    lookup.preload(m.msgid for m in rows)
    lookup.preload(r for m in rows for r in [m.in_reply_to, *m.references])
    anchors: dict[str, list[Message]] = {}
    replies = []
    for row in rows:
        if row.kind in (Message.COVER, Message.PATCH):
            anchors.setdefault(grouping.anchor_of(row.summary(), lookup), []).append(row)
        else:
            replies.append(row)
    touched = {_build_revision(anchor, lookup) for anchor in anchors}
    touched.discard(None)
    touched |= _attach_replies(replies, lookup)
    for series_id in set(Revision.objects.filter(id__in=touched).values_list("series_id", flat=True)):
        order_series(series_id)
    return touched


def _posting_members(anchor: str, lookup: _Lookup) -> list[Message]:
    """Every stored cover/patch whose anchor is this one (walks down the thread)."""
    members, frontier = [], [anchor]
    seen = set()
    while frontier:
        rows = list(Message.objects.filter(Q(msgid__in=frontier) | Q(in_reply_to__in=frontier),
                                           kind__in=[Message.COVER, Message.PATCH]))
        frontier = []
        for row in rows:
            if row.msgid in seen:
                continue
            lookup.cache[row.msgid] = row.summary()
            if grouping.anchor_of(row.summary(), lookup) == anchor:
                seen.add(row.msgid)
                members.append(row)
                frontier.append(row.msgid)
    return members


def _build_revision(anchor: str, lookup: _Lookup) -> int | None:
    members = _posting_members(anchor, lookup)
    if not members:
        return None
    cover = next((m for m in members if m.kind == Message.COVER), None)
    patch_msgs = sorted((m for m in members if m.kind == Message.PATCH),
                        key=lambda m: (m.number or 1, m.date or m.received))
    first = cover or patch_msgs[0]
    expected = max([m.total or 0 for m in members] + [len(patch_msgs), 1])
    complete, missing = grouping.completeness([m.number or 1 for m in patch_msgs],
                                              first.total or (1 if not cover else expected))
    tags = _revision_tags(cover, patch_msgs)
    rev = Revision.objects.filter(anchor=anchor).first() or Revision(anchor=anchor)
    author = _revision_author(cover, patch_msgs)
    rev.msgid = first.msgid if cover else patch_msgs[0].msgid
    rev.version, rev.title = first.version, first.title
    rev.title_key = grouping.normalize_title(first.title)[:255]
    rev.rfc = "RFC" in first.subject.upper().split("]")[0] if first.subject.startswith("[") else False
    rev.cover = cover
    rev.author_name, rev.author_email = author
    rev.mailing_list_id = first.mailing_list_id
    rev.date = first.date
    rev.expected, rev.received = expected, len(patch_msgs)
    rev.complete, rev.missing = complete, missing
    rev.base_commit = (tags.get("base-commit") or [None])[0]
    rev.change_id = (tags.get("change-id") or [None])[0]
    rev.prerequisites = [{"kind": k[len("prerequisite-"):], "value": v}
                         for k, vs in tags.items() if k.startswith("prerequisite-") for v in vs]
    _claim_msgid(rev)
    if rev.series_id is None:
        rev.series = Series.objects.create(title=rev.title, author_email=rev.author_email,
                                           change_id=rev.change_id)
    rev.save()
    former = {m.revision_id for m in members if m.revision_id and m.revision_id != rev.id}
    Message.objects.filter(id__in=[m.id for m in members]).update(revision=rev)
    Patch.objects.filter(message__in=[m.id for m in patch_msgs]).update(revision=rev)
    _drop_emptied_revisions(former, rev)
    _record_text_dependencies(rev, [cover] if cover else patch_msgs[:1], how_reply=False)
    _assign_family(rev)
    return rev.id


def _claim_msgid(rev: Revision) -> None:
    # A cover arriving after its patches renames the revision: the stale row
    # that held the first patch's msgid gives way.
    clash = Revision.objects.filter(msgid=rev.msgid).exclude(anchor=rev.anchor).first()
    if clash:
        clash.msgid = f"stale:{clash.id}:{clash.msgid}"[:500]
        clash.save(update_fields=["msgid"])


def _drop_emptied_revisions(former: set[int], rev: Revision) -> None:
    """Revisions whose mails all moved to rev (their cover arrived late) go away."""
    for stale in Revision.objects.filter(id__in=former):
        if stale.patches.exists() or stale.cover_id is not None:
            continue
        Message.objects.filter(revision=stale).update(revision=rev)
        Trailer.objects.filter(revision=stale).update(revision=rev)
        Revision.objects.filter(previous=stale).update(previous=None)
        Dependency.objects.filter(target_revision=stale).update(target_revision=None)
        series = stale.series
        stale.delete()
        if not series.revisions.exists():
            series.delete()


def _revision_tags(cover: Message | None, patches: list[Message]) -> dict[str, list[str]]:
    # The cover's base-commit wins over one quoted inside a patch.
    tags: dict[str, list[str]] = {}
    for m in ([cover] if cover else []) + patches:
        for key, values in (m.tags or {}).items():
            tags.setdefault(key, values)
    return tags


def _revision_author(cover: Message | None, patches: list[Message]) -> tuple[str, str]:
    if cover:
        return cover.from_name, cover.from_email
    p = Patch.objects.filter(message=patches[0]).first()
    if p:
        return p.author_name, p.author_email
    return patches[0].from_name, patches[0].from_email


def _attach_replies(replies: list[Message], lookup: _Lookup) -> set[int]:
    touched = set()
    for reply in replies:
        owner = grouping.owner_of_reply(reply.summary(), lookup)
        if owner is None:
            continue
        owner_row = Message.objects.filter(msgid=owner["msgid"]).select_related("patch").first()
        if owner_row is None or owner_row.revision_id is None:
            continue
        Message.objects.filter(id=reply.id).update(revision_id=owner_row.revision_id)
        patch = getattr(owner_row, "patch", None) if owner_row.kind == Message.PATCH else None
        Trailer.objects.filter(message=reply).update(
            revision_id=owner_row.revision_id, patch=patch)
        rev = Revision.objects.get(id=owner_row.revision_id)
        _record_text_dependencies(rev, [reply], how_reply=True)
        touched.add(rev.id)
    return touched


def _record_text_dependencies(rev: Revision, messages: list[Message], how_reply: bool) -> None:
    rows = [Dependency(source=rev, kind=e.kind, target=e.target, how="reply" if how_reply else e.how,
                       evidence_msgid=e.source_msgid, target_type=e.target_type,
                       evidence=e.evidence, version=e.version, extra=e.extra)
            for msg in messages
            for e in deps.discover_text_edges(msg.msgid, msg.body, is_reply=how_reply)
            if e.target not in (rev.msgid, rev.anchor)]
    Dependency.objects.bulk_create(rows, ignore_conflicts=True)


# --- families ---------------------------------------------------------------

def revision_of_msgid(msgid: str) -> Revision | None:
    """The revision a msgid names: a revision's own, or one of its mails'."""
    return resolve_msgids([msgid]).get(msgid)


def _assign_family(rev: Revision) -> int:
    """Join rev to the family its mails point at; returns its series id."""
    for other in _family_candidates(rev):
        if other.series_id != rev.series_id:
            _merge_series(keep=other.series, drop=rev.series)
            rev.refresh_from_db(fields=["series"])
    return rev.series_id


def _family_candidates(rev: Revision) -> list[Revision]:
    others = Revision.objects.exclude(id=rev.id)
    found: list[Revision] = []
    if rev.change_id:
        found += others.filter(change_id=rev.change_id)[:1]
    stated = Dependency.objects.filter(source=rev, kind=Dependency.PREVIOUS, target_type="msgid")
    found += resolve_msgids([d.target for d in stated]).values()
    own_msgids = list(rev.messages.values_list("msgid", flat=True)) + [rev.msgid]
    found += [d.source for d in Dependency.objects.filter(kind=Dependency.PREVIOUS, target__in=own_msgids)
              .exclude(source=rev).select_related("source")]
    found += others.filter(author_email=rev.author_email, title_key=rev.title_key)[:1]
    found += _reply_parent_revision(rev)
    return [r for r in found if r.id != rev.id]


def resolve_msgids(msgids: list[str]) -> dict[str, Revision]:
    """Map msgids (a revision's own, or any of its mails') to revisions, in bulk."""
    wanted = set(msgids)
    if not wanted:
        return {}
    found = {r.msgid: r for r in Revision.objects.filter(msgid__in=wanted)}
    found.update({r.anchor: r for r in Revision.objects.filter(anchor__in=wanted - set(found))})
    rest = wanted - set(found)
    if rest:
        for row in Message.objects.filter(msgid__in=rest).exclude(revision=None).select_related("revision"):
            found[row.msgid] = row.revision
    return found


def _reply_parent_revision(rev: Revision) -> list[Revision]:
    # A v2 posted in reply to v1 belongs to v1's family.
    first = Message.objects.filter(msgid=rev.anchor).first()
    if not first or not first.in_reply_to:
        return []
    parent = Message.objects.filter(msgid=first.in_reply_to).exclude(revision=None).first()
    if parent and parent.revision_id != rev.id and parent.revision.version <= rev.version:
        return [parent.revision]
    return []


def _merge_series(keep: Series, drop: Series) -> None:
    if keep.id == drop.id:
        return
    keep, drop = (keep, drop) if keep.id < drop.id else (drop, keep)
    Revision.objects.filter(series=drop).update(series=keep)
    if not keep.change_id and drop.change_id:
        keep.change_id = drop.change_id
        keep.save(update_fields=["change_id"])
    drop.delete()


def order_series(series_id: int) -> None:
    revs = list(Revision.objects.filter(series_id=series_id))
    if not revs:
        return
    stated = list(Dependency.objects.filter(source__in=revs, kind=Dependency.PREVIOUS,
                                            target_type="msgid").select_related("source"))
    targets = resolve_msgids([d.target for d in stated])
    explicit = {d.source.msgid: targets[d.target].msgid for d in stated if d.target in targets}
    previous = grouping.order_family(
        [{"msgid": r.msgid, "version": r.version, "date": r.date.isoformat() if r.date else ""}
         for r in revs], explicit)
    by_msgid = {r.msgid: r for r in revs}
    for r in revs:
        want = by_msgid.get(previous.get(r.msgid) or "")
        if (want.id if want else None) != r.previous_id:
            Revision.objects.filter(id=r.id).update(previous=want)
    newest = max(revs, key=lambda r: (r.version, r.date.isoformat() if r.date else ""))
    Series.objects.filter(id=series_id).exclude(title=newest.title).update(title=newest.title)
