"""Reads: the plain dicts the CLI prints and the pages show."""
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import BadRequest
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import Http404

from . import params as params_
from .models import GraphSnapshot, MailingList, Message, Revision


def _chunked(items: Iterable) -> Iterator[list]:
    # SQLite caps the parameters of one statement; PostgreSQL takes long lists.
    items = list(items)
    size = 20000 if connection.vendor == "postgresql" else 900
    for i in range(0, len(items), size):
        yield items[i:i + size]


def revision_of_msgid(msgid: str) -> Revision | None:
    """The revision a msgid names: a revision's own, or one of its mails'."""
    return resolve_msgids([msgid]).get(msgid)


def resolve_msgids(msgids: list[str]) -> dict[str, Revision]:
    """Map msgids (a revision's own, or any of its mails') to revisions, in bulk."""
    wanted = set(msgids)
    if not wanted:
        return {}
    found = {r.msgid: r for part in _chunked(wanted) for r in Revision.objects.filter(msgid__in=part)}
    rest = wanted - set(found)
    found.update({r.anchor: r for part in _chunked(rest) for r in Revision.objects.filter(anchor__in=part)})
    rest = wanted - set(found)
    for part in _chunked(rest):
        for row in Message.objects.filter(msgid__in=part).exclude(revision=None).select_related("revision"):
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
    qs = Revision.objects.select_related("previous", "mailing_list").exclude(msgid__startswith="stale:")
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
    subject words; two queries whatever the size of the archive (a count and the page)."""
    qs = (Revision.objects.exclude(msgid__startswith="stale:").select_related("mailing_list")
          .only(*LIST_FIELDS))
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
    for key, op in (("since", "gte"), ("until", "lte")):
        day = params_.day(params, key)
        if day:
            qs = qs.filter(**{f"date__date__{op}": day})
    for word in f["q"].split()[:8]:
        qs = qs.filter(title__icontains=word[:100])
    page = params_.page(Paginator(qs.order_by("-date", "-id"), PAGE_SIZE), params)
    return {"page": page, "filters": f, "revisions": list(page.object_list)}

