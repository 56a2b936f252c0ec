"""Attach a batch of new mails (and the stored mails waiting for them) to
revisions: the threading walk in memory, unthreaded runs, adopted covers,
replies, the dependencies the mails state."""
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable

from django.db import connection, models
from django.utils import timezone

from untangle import deps, grouping, mail as mails
from untangle.mail import Mail

from ...models import Dependency, Message, Patch, Revision, Series, Trailer
from .bulk import bulk_create_with_ids, chunked, ids_by, set_ids
from .families import FamilyLinks, merge_series, order_many
from .store import LIGHT

POSTED = (Message.COVER, Message.PATCH)
_RUN_WIDENINGS = 8  # queries at most to find the stored part of an unthreaded run
_DEP_TAG = re.compile(r"^(based-on|depends-on|supersedes|prerequisite-[a-z-]+):", re.M | re.I)


class Lookup:
    """Light message rows by msgid, read from the database in bulk and memoised."""

    def __init__(self):
        self.rows: dict[str, dict | None] = {}

    def add(self, row: dict) -> None:
        self.rows[row["msgid"]] = row

    def preload(self, msgids: Iterable[str]) -> None:
        wanted = {m for m in msgids if m and m not in self.rows}
        for part in chunked(wanted):
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


class Regroup:
    """Attach one batch of new mails (and the mails that were waiting for them)
    to revisions, series and families."""

    def __init__(self, new_rows: list[dict], new_mails: dict[str, Mail], patch_ids: dict[int, int],
                 edges: dict[str, list]):
        self.new_rows = new_rows
        self.mails = new_mails
        self.edges = edges  # msgid -> edges its body states, read by the parser
        self.patch_ids = patch_ids  # message id -> patch id, grows as needed
        self.lookup = Lookup()
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
        anchors: dict[str, None] = {}
        self.partial_rows: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            if r["kind"] in POSTED:
                anchor = self._anchor(r)
                anchors[anchor] = None
                if grouping.partial_root(anchor):
                    self.partial_rows[anchor].append(r)
        plans = [self._plan(a, ms) for a, ms in self._members(anchors).items() if ms]
        self._write_revisions(plans)
        touched = set(self.revs)
        touched |= self._attach_replies([r for r in rows if r["kind"] not in POSTED])
        self._record_posting_dependencies(plans)
        self._join_families()
        order_many(set(Revision.objects.filter(id__in=touched).values_list("series_id", flat=True)))
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
        return [row for part in chunked(parents)
                for row in qs.filter(in_reply_to__in=part).values(*LIGHT)
                if row["id"] not in new_ids]

    def _members(self, anchors: dict[str, None]) -> dict[str, list[dict]]:
        """Every stored cover/patch of each anchor's posting (walks down the threads)."""
        members: dict[str, list[dict]] = {a: [] for a in anchors}
        seen: set[str] = set()
        frontier = []
        stored_partial = self._stored_partial_members([a for a in anchors if a in self.partial_rows])
        for anchor in anchors:
            if anchor in self.partial_rows:  # no stored mail is the anchor: its patches are
                seeds = [*self.partial_rows[anchor], *stored_partial.get(anchor, ())]
            else:
                seeds = [self.lookup(anchor), *self.run_members.get(anchor, ())]
            for row in seeds:
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

    def _stored_partial_members(self, anchors: list[str]) -> dict[str, list[dict]]:
        """The stored patches already grouped under these partial anchors."""
        found: dict[str, list[dict]] = defaultdict(list)
        for part in chunked(anchors):
            for row in Message.objects.filter(revision__anchor__in=part, kind__in=POSTED).values(
                    *LIGHT, "revision__anchor"):
                anchor = row.pop("revision__anchor")
                self.lookup.rows.setdefault(row["msgid"], row)
                found[anchor].append(self.lookup.rows[row["msgid"]])
        return found

    def _plan(self, anchor: str, members: list[dict]) -> _Plan:
        cover = next((m for m in members if m["kind"] == Message.COVER), None)
        if cover is None:  # a thread root its patches' author wrote is their cover
            cover = next((m for m in members if m["msgid"] == anchor and m["kind"] not in POSTED), None)
        patches = sorted((m for m in members if m["kind"] == Message.PATCH),
                         key=lambda m: (m["number"] or 1, m["date"] or m["received"]))
        return _Plan(anchor, members, cover, patches)

    # -- revisions --

    def _write_revisions(self, plans: list[_Plan]) -> None:
        existing = {r.anchor: r for part in chunked(p.anchor for p in plans)
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
        bulk_create_with_ids(Series, series)
        for plan, s in zip(fresh, series):
            plan.rev.series_id = s.id
        bulk_create_with_ids(Revision, [p.rev for p in fresh])
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
        for part in chunked(stored):
            for msgid, name, email in Patch.objects.filter(message_id__in=part).values_list(
                    "message__msgid", "author_name", "author_email"):
                authors[msgid] = (name, email)
        return authors

    def _claim_msgids(self, plans: list[_Plan]) -> None:
        # A cover arriving after its patches renames the revision: the stale
        # row that held the first patch's msgid gives way.
        wanted = {p.rev.msgid: p.anchor for p in plans}
        for part in chunked(wanted):
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
        set_ids(Message, "id", ["revision"], moves)
        set_ids(Patch, "message", ["revision"], patch_moves)
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
        self.patch_ids.update(ids_by(Patch, "message_id", owner_patches))
        set_ids(Message, "id", ["revision"], [(r["id"], rid) for r, _, rid in owned])
        set_ids(Trailer, "message", ["revision", "patch"], [
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
        for part in chunked(stored):
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
        links = FamilyLinks()
        links.same_key(revs)
        links.stated_previous(revs)
        links.named_as_previous(revs)
        links.reply_parents(revs, self.lookup, self.rev_of_msgid)
        merge_series(links.merges())
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
    # Counted against the patches' own N when they state one: a cover saying "0/9" over
    # "v2 1/8".."8/8" is stale (patches win, as for the version).
    complete, missing = grouping.completeness(
        numbers, declared or first["total"] or (1 if not cover else expected))
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
    # A cover fetched from the all-lists archive has no list: the posting stays on its patches'.
    rev.mailing_list_id = first["mailing_list_id"] or next(
        (m["mailing_list_id"] for m in members if m["mailing_list_id"]), None)
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
