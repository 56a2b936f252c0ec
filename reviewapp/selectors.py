"""Reads: the plain dicts the CLI prints and the pages show."""
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from django.core.cache import cache
from django.core.exceptions import BadRequest
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import Http404
from django.utils.functional import cached_property

from untangle import review as review_rules

from . import params as params_
from .models import GraphSnapshot, MailingList, Message, Revision, ReviewQueueEntry, ReviewState


def _chunked(items: Iterable) -> Iterator[list]:
    # SQLite caps the parameters of one statement; PostgreSQL takes long lists.
    items = list(items)
    size = 20000 if connection.vendor == "postgresql" else 900
    for i in range(0, len(items), size):
        yield items[i:i + size]


def revision_of_msgid(msgid: str) -> Revision | None:
    """The revision a msgid names: a revision's own, or one of its mails' (with its series
    and list, which every page of it shows)."""
    return resolve_msgids([msgid], related=("series", "mailing_list")).get(msgid)


def resolve_msgids(msgids: list[str], related: tuple[str, ...] = ()) -> dict[str, Revision]:
    """Map msgids (a revision's own, or any of its mails') to revisions, in bulk, each
    loaded with the `related` rows it points at."""
    wanted = set(msgids)
    if not wanted:
        return {}
    revs = Revision.objects.select_related(*related)
    found = {r.msgid: r for part in _chunked(wanted) for r in revs.filter(msgid__in=part)}
    rest = wanted - set(found)
    found.update({r.anchor: r for part in _chunked(rest) for r in revs.filter(anchor__in=part)})
    rest = wanted - set(found)
    mails = Message.objects.exclude(revision=None).select_related("revision", *(f"revision__{r}" for r in related))
    for part in _chunked(rest):
        for row in mails.filter(msgid__in=part):
            found[row.msgid] = row.revision
    return found


def revision_dict(rev: Revision) -> dict:
    return {
        "msgid": rev.msgid,
        "subject": rev.title,
        "version": rev.version,
        "expected": rev.expected,
        "received": rev.received,
        "complete": rev.complete,
        "missing": list(rev.missing),
        "base_commit": rev.base_commit,
        "change_id": rev.change_id,
        "author": rev.author,
        "previous": rev.previous.msgid if rev.previous_id else None,
        "list": rev.mailing_list.name if rev.mailing_list_id else None,
    }


def revisions(ids=None) -> list[Revision]:
    qs = Revision.objects.select_related("previous", "mailing_list").live()
    if ids is not None:
        qs = qs.filter(id__in=ids)
    return list(qs.order_by("-date", "msgid"))


def revision_or_404(msgid: str) -> Revision:
    """The revision a page's msgid names (its own, a patch's or another mail's of it), else 404.
    Pages compare rev.msgid with msgid to redirect to the canonical URL."""
    rev = revision_of_msgid(msgid)
    if rev is None:
        raise Http404(f"no series known for <{msgid}>")
    return rev


@dataclass(frozen=True)
class StoredGraph:
    """The last graph the worker (or the CLI) stored for a revision, read as it is."""
    data: dict | None  # None: no graph computed yet
    computed: datetime | None
    changes: list
    pending: bool  # mail arrived after it was computed: a recompute is queued

    @property
    def stored(self) -> bool:
        return self.data is not None


def stored_graph(rev: Revision) -> StoredGraph:
    """Two queries at most; never computes (pages only read)."""
    snap = (GraphSnapshot.objects.filter(root=rev).order_by("-computed", "-id")
            .only("data", "changes", "computed").first())
    if snap is None:
        return StoredGraph(None, None, [], pending=True)
    members = [n["msgid"] for n in snap.data.get("nodes", []) if n.get("kind") == "revision"]
    newer_mail = Message.objects.filter(revision__msgid__in=members or [rev.msgid],
                                        received__gt=snap.computed).exists()
    return StoredGraph(snap.data, snap.computed, snap.changes, pending=newer_mail)


PAGE_SIZE = 50
LIST_FIELDS = ("id", "msgid", "title", "version", "rfc", "received", "expected", "complete", "missing",
               "author_name", "author_email", "date", "mailing_list__name")


def series_page(params) -> dict:
    """One page of the series list, filtered by list, author, state, version, dates and
    subject words; four queries whatever the size of the archive (newest id, a count cached
    for COUNT_CACHE_S, the page of ids, its rows)."""
    qs = Revision.objects.live()
    f = {k: (params.get(k) or "").strip() for k in ("list", "author", "state", "version", "since", "until", "q")}
    # A malformed value is a 400 naming it (reviewapp.params), an unknown list too.
    if f["list"]:
        if not MailingList.objects.filter(name=f["list"]).exists():
            raise BadRequest(f"list: no mailing list named {f['list'][:100]!r}")
        qs = qs.filter(mailing_list__name=f["list"])
    if f["author"]:
        qs = qs.filter(Q(author_email__icontains=f["author"]) | Q(author_name__icontains=f["author"]))
    if params_.choice(params, "state", ("complete", "incomplete")):
        qs = qs.filter(complete=f["state"] == "complete")
    version = params_.number(params, "version", 10 ** 6)
    if version is not None:
        qs = qs.filter(version=version)
    # Whole UTC days as a range on the indexed column (a date cast would scan every row).
    since, until = params_.day(params, "since"), params_.day(params, "until")
    if since:
        qs = qs.filter(date__gte=datetime.combine(since, time.min, tzinfo=timezone.utc))
    if until:
        qs = qs.filter(date__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=timezone.utc))
    for word in f["q"].split()[:8]:
        qs = qs.filter(title__icontains=word[:100])
    # Page over ids (an index-only scan of revision_list_order, however deep the page),
    # then load those 50 rows: OFFSET over whole rows sorted 100,000 of them.
    ids_qs = qs.order_by("-date", "-id").values_list("id", flat=True)
    page = params_.page(_CountCachedPaginator(ids_qs, PAGE_SIZE, key=f), params)
    ids = list(page.object_list)
    rows = {r.id: r for r in Revision.objects.filter(id__in=ids).select_related("mailing_list").only(*LIST_FIELDS)}
    return {"page": page, "filters": f, "revisions": [rows[i] for i in ids if i in rows]}


COUNT_CACHE_S = 30


class _CountCachedPaginator(Paginator):
    """The list's total, remembered for COUNT_CACHE_S per filter set and newest revision id:
    counting 100,000 rows costs more than the rest of the page."""

    def __init__(self, *args, key: dict, **kw):
        super().__init__(*args, **kw)
        self._key = key

    @cached_property
    def count(self) -> int:
        newest = Revision.objects.order_by("-id").values_list("id", flat=True).first() or 0
        digest = hashlib.sha1(repr(sorted(self._key.items())).encode()).hexdigest()
        key = f"series-count:{newest}:{digest}"
        found = cache.get(key)
        if found is None:
            found = super().count
            cache.set(key, found, COUNT_CACHE_S)
        return found



# ---------------------------------------------------------------- review state

def _chain_entry(rev: Revision, state: ReviewState | None) -> dict:
    s = (state.data.get("summary") if state else None) or {}
    return {"msgid": rev.msgid, "title": rev.title, "version": rev.version,
            "state": state.state if state else "not computed", "patches": s.get("patches", 0),
            "reviewed": s.get("reviewed", 0), "carried": s.get("carried", 0), "stale": s.get("stale", 0),
            "objections_open": s.get("objections_open", 0), "objections": s.get("objections", []),
            "commenters": s.get("commenters", []), "waiting_on": s.get("waiting_on", []),
            "computed": state.computed.isoformat() if state else None}


def chain_revisions(rev: Revision) -> list[Revision]:
    """The revisions rev's stored graph says must be applied before it, in apply order."""
    snap = GraphSnapshot.objects.filter(root=rev).order_by("-computed", "-id").only("data").first()
    order = [m for m in ((snap.data or {}).get("order") or []) if m != rev.msgid] if snap else []
    found = resolve_msgids(order) if order else {}
    return [found[m] for m in order if m in found]


def review_of(rev: Revision) -> dict | None:
    """The stored review state of rev, with the state of every revision its chain needs
    (the stored graph's apply order). Three queries; never computes."""
    state = ReviewState.objects.filter(revision=rev).first()
    if state is None:
        return None
    snap = GraphSnapshot.objects.filter(root=rev).order_by("-computed", "-id").only("data").first()
    order = [m for m in ((snap.data or {}).get("order") or []) if m != rev.msgid] if snap else []
    needed = resolve_msgids(order) if order else {}
    states = {s.revision_id: s for s in ReviewState.objects.filter(revision_id__in=[r.id for r in needed.values()])}
    chain = [_chain_entry(needed[m], states.get(needed[m].id)) for m in order if m in needed]
    chain += [{"msgid": m, "state": "not stored"} for m in order if m not in needed]
    return {**state.data, "state": state.state, "computed": state.computed.isoformat(), "chain": chain}


REVIEW_PAGE_SIZE = 50


def review_queue(params) -> dict:
    """One page of /review/: open revisions (the newest of their series, not merged), those
    waiting longest first, filtered by reviewer (expected per MAINTAINERS, commented, or
    reviewed an earlier revision), path (a file or directory) and list; `new=1` keeps the
    ones whose earlier revision the reviewer reviewed and this one not yet. Each filter is
    one index range of ReviewQueueEntry; filters combine as semi-joins. Four queries a page."""
    reviewer = (params.get("reviewer") or "").strip().lower()[:300]
    prefix = (params.get("path") or "").strip()[:300]
    list_name = (params.get("list") or "").strip()[:200]
    new_only = params_.flag(params, "new")
    if new_only and not reviewer:
        raise BadRequest("new: give reviewer=EMAIL too (new revisions since that person reviewed)")
    keys = []
    if reviewer:
        keys.append((ReviewQueueEntry.NEW if new_only else ReviewQueueEntry.PERSON, reviewer))
    path_key = review_rules.path_filter_key(prefix)
    if path_key:
        keys.append((ReviewQueueEntry.PATH, path_key))
    if list_name:
        found = MailingList.objects.filter(name=list_name).values_list("id", flat=True).first()
        if found is None:
            raise BadRequest(f"list: no mailing list named {list_name[:100]!r}")
        keys.append((ReviewQueueEntry.LIST, str(found)))
    if keys:
        (kind, value), rest = keys[0], keys[1:]
        qs = ReviewQueueEntry.objects.filter(kind=kind, key=value)
        for kind, value in rest:
            qs = qs.filter(revision_id__in=ReviewQueueEntry.objects.filter(kind=kind, key=value).values("revision_id"))
        ids_qs = qs.order_by("waiting_since", "revision_id").values_list("revision_id", flat=True)
    else:
        ids_qs = ReviewState.objects.filter(open=True).order_by("waiting_since", "id").values_list("revision_id",
                                                                                                 flat=True)
    key = {"reviewer": reviewer, "path": path_key, "list": list_name, "new": new_only, "q": "review"}
    page = params_.page(_CountCachedPaginator(ids_qs, REVIEW_PAGE_SIZE, key=key), params)
    ids = list(page.object_list)
    rows = {s.revision_id: s for s in ReviewState.objects.filter(revision_id__in=ids)
            .select_related("revision", "revision__mailing_list").defer("data", "files")}
    roles = {}
    if reviewer and ids:
        roles = dict(ReviewQueueEntry.objects.filter(kind=ReviewQueueEntry.PERSON, key=reviewer, revision_id__in=ids)
                     .values_list("revision_id", "roles"))
    states = [rows[i] for i in ids if i in rows]
    for s in states:
        s.reviewer_roles = [r for r in roles.get(s.revision_id, "").split(",") if r]
    return {"page": page, "states": states, "filters": {**key, "path": prefix}}


# ---------------------------------------------------------------- in flight (issue 21)

INFLIGHT_CONFLICTS_SHOWN = 500


def _conflict_entry(c, other: Revision) -> dict:
    return {"with": other.msgid, "title": other.title, "version": other.version, "ancestor": c.ancestor,
            "files": [{"path": f["path"], "kind": f["kind"], "hunk_count": f["hunk_count"]} for f in c.files],
            "file_count": c.file_count, "hunk_count": c.hunk_count, "id": c.id, "computed": c.computed}


def conflicts_of(rev: Revision) -> list[dict]:
    """The stored conflicts of one revision with the other open series of its list."""
    from .models import InflightConflict
    rows = (InflightConflict.objects.filter(Q(a=rev) | Q(b=rev)).select_related("a", "b")
            .order_by("id")[:INFLIGHT_CONFLICTS_SHOWN])
    return [_conflict_entry(c, c.b if c.a_id == rev.id else c.a) for c in rows]


def inflight_of(mlist: MailingList) -> dict | None:
    """A list's last in-flight computation: open series with their apply state, conflicts."""
    from .models import InflightConflict, InflightState
    state = InflightState.objects.filter(mailing_list=mlist).first()
    if state is None:
        return None
    conflicts = [{"a": c.a.msgid, "b": c.b.msgid, "a_title": c.a.title, "b_title": c.b.title,
                  "a_version": c.a.version, "b_version": c.b.version, "id": c.id,
                  "files": [{"path": f["path"], "hunk_count": f["hunk_count"]} for f in c.files],
                  "hunk_count": c.hunk_count}
                 for c in InflightConflict.objects.filter(mailing_list=mlist).select_related("a", "b")
                 .order_by("id")[:INFLIGHT_CONFLICTS_SHOWN]]
    return {"list": mlist.name, "tree": state.tree, "computed": state.computed, "open": state.open,
            "pairs_compared": state.pairs_compared, "pairs_left_out": state.pairs_left_out,
            "conflicts": conflicts, "integration": state.integration}
