"""Families: which series of a batch are one (union-find over stated links,
change-ids, titles, replies), merging them, and each revision's previous one."""
from collections import defaultdict
from itertools import chain

from untangle import grouping

from ...models import Dependency, Message, Revision, Series
from .bulk import chunked, set_ids
from .lookups import resolve_light


class FamilyLinks:
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
        for part in chunked(by_change):
            for cid, sid in (Revision.objects.filter(change_id__in=part).order_by()
                             .values_list("change_id", "series_id").distinct()):
                by_change[cid].append(sid)
        titles = {t for _, t in by_title}
        for part in chunked(titles):
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
        stated = [(src, target) for part in chunked(series) for src, target in
                  Dependency.objects.filter(source_id__in=part, kind=Dependency.PREVIOUS,
                                            target_type="msgid").values_list("source_id", "target")]
        found = resolve_light([t for _, t in stated])
        for src, target in stated:
            if target in found and found[target]["id"] != src:
                self.link(series[src], found[target]["series_id"])

    def named_as_previous(self, revs: list[Revision]) -> None:
        # A later revision that arrived first and named one of these as its previous.
        owner: dict[str, int] = {}
        for part in chunked(r.id for r in revs):
            owner.update(Message.objects.filter(revision_id__in=part).values_list("msgid", "revision_id"))
        owner.update({r.msgid: r.id for r in revs})
        series = {r.id: r.series_id for r in revs}
        for part in chunked(owner):
            for target, src, sid in Dependency.objects.filter(
                    kind=Dependency.PREVIOUS, target__in=part).values_list(
                    "target", "source_id", "source__series_id"):
                if src != owner[target]:
                    self.link(series[owner[target]], sid)

    def reply_parents(self, revs: list[Revision], lookup, placed: dict[str, int]) -> None:
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
        for part in chunked(missing):
            known.update((i, (v, s)) for i, v, s in Revision.objects.filter(id__in=part)
                         .values_list("id", "version", "series_id"))
        for rev in revs:
            version, sid = known.get(parent_rev.get(rev.id), (None, None))
            if sid is not None and version <= rev.version:
                self.link(rev.series_id, sid)


def merge_series(merges: list[tuple[int, set[int]]]) -> None:
    """Fold each group's series into its kept one: a handful of statements for
    all the batch's merges (one per merge cost ~7 and dominated big imports)."""
    if not merges:
        return
    into = {d: keep for keep, drop in merges for d in drop}
    moves = [(rid, into[sid]) for part in chunked(into)
             for rid, sid in Revision.objects.filter(series_id__in=part).values_list("id", "series_id")]
    set_ids(Revision, "id", ["series"], moves)
    everyone = set(into) | {keep for keep, _ in merges}
    change_ids = {i: c for part in chunked(everyone)
                  for i, c in Series.objects.filter(id__in=part).values_list("id", "change_id")}
    for keep, drop in merges:
        if not change_ids.get(keep):
            inherited = next((change_ids[s] for s in sorted(drop) if change_ids.get(s)), None)
            if inherited:
                Series.objects.filter(id=keep).update(change_id=inherited)
    for part in chunked(into):
        Series.objects.filter(id__in=part).delete()


def order_series(series_id: int) -> None:
    """Set each revision's previous one, and the series title from the newest."""
    order_many({series_id})


def _newest_stated(stated: list[tuple[str, str, int]]) -> dict[str, str]:
    """source msgid -> msgid of the revision of its family it names as previous.
    stated: (source msgid, target msgid, source series id). A cover that lists
    all its earlier versions ("v7: <link>, v6: <link>, ...") means the newest."""
    targets = resolve_light(t for _, t, _ in stated)
    best: dict[str, tuple] = {}
    for source, target, series_id in stated:
        found = targets.get(target)
        if found is None or found["msgid"] == source or found["series_id"] != series_id:
            continue
        key = (found["version"], found["date"].isoformat() if found["date"] else "", found["msgid"])
        if source not in best or key > best[source][0]:
            best[source] = (key, found)
    return {source: found["msgid"] for source, (_, found) in best.items()}


def order_many(series_ids: set[int]) -> None:
    if not series_ids:
        return
    ids = list(series_ids)
    revs = [r for part in chunked(ids) for r in Revision.objects.filter(series_id__in=part)
            .order_by().values("id", "msgid", "version", "date", "previous_id", "title", "series_id")]
    stated = [row for part in chunked(ids) for row in Dependency.objects.filter(
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
    set_ids(Revision, "id", ["previous"], changes)
    for sid, title in Series.objects.filter(id__in=list(titles)).values_list("id", "title"):
        if title != titles[sid]:
            Series.objects.filter(id=sid).update(title=titles[sid])
