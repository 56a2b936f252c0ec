"""Group mails into revisions and revisions into series (families).

Works on light summaries (dicts with msgid, kind, version, number, total,
in_reply_to, references, from_email, date, title) and a lookup function, so
the caller can back it with a dict or with the database.
"""
import re
from typing import Callable, Iterable

Lookup = Callable[[str], dict | None]
_MAX_WALK = 200


def _num(mail: dict) -> int:
    return mail["number"] if mail.get("number") is not None else 1


def _parent(mail: dict, lookup: Lookup) -> dict | None:
    """The nearest known ancestor: In-Reply-To, else the References, nearest first."""
    candidates = [mail.get("in_reply_to")] + list(reversed(mail.get("references") or []))
    for msgid in candidates:
        if msgid and msgid != mail["msgid"]:
            found = lookup(msgid)
            if found is not None:
                return found
    return None


def _same_posting(child: dict, parent: dict) -> bool:
    # Patches of one posting share version and total; their numbers grow down
    # the thread (deep or shallow threading, or a second send-email run whose
    # first patch replies to the last patch of the first run). A cover always
    # starts a posting, so a repost whose cover replies to v1 is a new revision.
    if parent["kind"] not in ("cover", "patch") or child["kind"] not in ("cover", "patch"):
        return False
    if (parent["version"], parent.get("total")) != (child["version"], child.get("total")):
        # A cover whose label differs from its patches' ("[PATCH v16 00/23]" over
        # "v17 01/24"): one send-email run, same sender, within minutes. A v2
        # posted in reply to v1 comes days later.
        return parent.get("number") == 0 and child.get("number") != 0 and _same_run(child, parent)
    if child.get("number") == 0:
        # The same cover again in reply to the first, from the same sender: the
        # whole run sent twice (one revision), not a repost.
        return parent.get("number") == 0 and parent.get("from_email") == child.get("from_email") \
            and normalize_title(parent.get("title") or "") == normalize_title(child.get("title") or "")
    return _num(parent) < _num(child) or (parent.get("number") == 0)


_RUN_SECONDS = 600


def _same_run(child: dict, parent: dict) -> bool:
    a, b = child.get("date"), parent.get("date")
    if not a or not b or child.get("from_email") != parent.get("from_email"):
        return False
    if isinstance(a, str) or isinstance(b, str):
        from datetime import datetime
        try:
            a, b = (datetime.fromisoformat(x) if isinstance(x, str) else x for x in (a, b))
        except ValueError:
            return False
    try:
        return abs((a - b).total_seconds()) <= _RUN_SECONDS
    except TypeError:  # naive against aware
        return False


def anchor_of(mail: dict, lookup: Lookup) -> str:
    """The msgid that names the revision a cover or patch belongs to."""
    current = mail
    for _ in range(_MAX_WALK):
        parent = _parent(current, lookup)
        if parent is None or not _same_posting(current, parent):
            return current["msgid"]
        current = parent
    return current["msgid"]


def owner_of_reply(mail: dict, lookup: Lookup) -> dict | None:
    """The cover or patch a reply (at any depth) is about."""
    current = mail
    seen = {mail["msgid"]}
    for _ in range(_MAX_WALK):
        parent = _parent(current, lookup)
        if parent is None or parent["msgid"] in seen:
            return None
        if parent["kind"] in ("cover", "patch"):
            return parent
        seen.add(parent["msgid"])
        current = parent
    return None


def completeness(numbers: Iterable[int], expected: int | None) -> tuple[bool, list[int]]:
    have = set(numbers)
    expected = expected or max(have, default=1)
    missing = [n for n in range(1, expected + 1) if n not in have]
    return not missing, missing


def normalize_title(title: str) -> str:
    title = re.sub(r"\s+", " ", title or "").strip().lower()
    return title.rstrip(" .")


def order_family(revisions: list[dict], explicit: dict[str, str]) -> dict[str, str | None]:
    """Previous revision of each revision in one family.

    revisions: [{"msgid", "version", "date"}]; explicit: msgid -> previous msgid
    stated by the mail itself ("Changes since v2 [4]"), which always wins.
    Otherwise the previous is the one before it by (version, date).
    """
    ordered = sorted(revisions, key=lambda r: (r["version"], r["date"] or "", r["msgid"]))
    known = {r["msgid"] for r in revisions}
    previous: dict[str, str | None] = {}
    for i, rev in enumerate(ordered):
        stated = explicit.get(rev["msgid"])
        if stated in known and stated != rev["msgid"]:
            previous[rev["msgid"]] = stated
        else:
            previous[rev["msgid"]] = ordered[i - 1]["msgid"] if i else None
    return previous
