"""Msgids to revisions as light dicts (reads; the selectors hold the public ones)."""
from typing import Iterable

from ...models import Message, Revision
from .bulk import chunked


def resolve_light(msgids: Iterable[str]) -> dict[str, dict]:
    """resolve_msgids() as {msgid: {"id", "msgid", "series_id", "version", "date"}}:
    no model instances."""
    wanted = set(msgids)
    found: dict[str, dict] = {}
    cols = ("id", "msgid", "anchor", "series_id", "version", "date")
    for field_name in ("msgid", "anchor"):
        rest = wanted - set(found)
        for part in chunked(rest):
            for row in Revision.objects.filter(**{f"{field_name}__in": part}).order_by().values(*cols):
                found[row[field_name]] = row
    rest = wanted - set(found)
    for part in chunked(rest):
        for msgid, *values in (Message.objects.filter(msgid__in=part).exclude(revision=None)
                               .values_list("msgid", "revision_id", "revision__msgid",
                                            "revision__series_id", "revision__version",
                                            "revision__date")):
            found[msgid] = dict(zip(("id", "msgid", "series_id", "version", "date"), values))
    return found
