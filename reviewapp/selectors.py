"""Reads: the plain dicts the CLI prints and the pages show."""
from django.http import Http404

from .models import Revision
from .services.ingest import revision_of_msgid


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
