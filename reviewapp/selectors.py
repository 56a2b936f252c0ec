"""Reads: the plain dicts the CLI prints and the pages show."""
from collections.abc import Iterable, Iterator

from django.db import connection
from django.http import Http404

from .models import Message, Revision


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
