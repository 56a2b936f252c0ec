"""Am-ready mbox text of a revision or an apply run's chain, from stored rows only."""
from ..models import Patch, Revision, Trailer
from untangle import ammbox


def _folded(patches: list[Patch]) -> dict[int, list[str]]:
    """Review trailers per patch: replies to the patch, and replies to the cover (for all)."""
    if not patches:
        return {}
    rev_ids = {p.revision_id for p in patches}
    own = {p.message_id for p in patches}
    rows = (Trailer.objects.filter(revision_id__in=rev_ids, kind__in=ammbox.FOLDED)
            .exclude(message_id__in=own).order_by("message__date", "id"))
    out: dict[int, list[str]] = {p.id: [] for p in patches}
    for t in rows:
        line = f"{t.kind}: {t.value}"
        targets = [t.patch_id] if t.patch_id else [p.id for p in patches if p.revision_id == t.revision_id]
        for pid in targets:
            if pid in out:
                out[pid].append(line)
    return out


def _am(p: Patch, trailers: list[str]) -> ammbox.AmPatch:
    return ammbox.AmPatch(msgid=p.message.msgid, subject=p.subject, author_name=p.author_name,
                          author_email=p.author_email, date=p.date, message=p.commit_message,
                          diff=p.diff, trailers=trailers)


def patches_in_order(revisions: list[Revision]) -> list[Patch]:
    out: list[Patch] = []
    for rev in revisions:
        out += list(Patch.objects.filter(revision=rev).select_related("message").order_by("number", "id"))
    return out


def mbox_of(revisions: list[Revision]) -> str:
    patches = patches_in_order(revisions)
    trailers = _folded(patches)
    return ammbox.mbox([_am(p, trailers[p.id]) for p in patches])
