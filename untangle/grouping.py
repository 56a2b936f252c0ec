"""Group mails into revisions and revisions into series (families).

Works on light summaries (dicts with msgid, kind, version, number, total,
in_reply_to, references, from_email, date, title) and a lookup function, so
the caller can back it with a dict or with the database.
"""
import re
from collections import defaultdict
from datetime import datetime, timezone
from typing import Callable, Iterable

from . import subject as subjects
from .deps import is_same_posting

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
    if parent["kind"] == "other" and child["kind"] == "patch":
        return adopts_as_cover(parent, child)
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


RUN_SECONDS = 600


def _is_root(mail: dict) -> bool:
    return not mail.get("in_reply_to") and not (mail.get("references") or [])


def adopts_as_cover(root: dict, patch: dict) -> bool:
    """A thread root with no "[PATCH 0/N]" ("arm64: bpf: ...", "[PATCH v2] tcp: ...")
    heads the patches its own sender sent in reply to it in the same run: it is
    their cover. A bug report answered with a patch by someone else is not."""
    return (root["kind"] == "other" and _is_root(root) and patch["kind"] == "patch"
            and patch.get("in_reply_to") == root["msgid"] and _same_run(patch, root))


def _seconds_apart(a, b) -> float | None:
    if not a or not b:
        return None
    try:
        return abs(_stamp(a) - _stamp(b))
    except ValueError:  # not a date
        return None


def _stamp(when) -> float:
    """Seconds since the epoch (a naive time is taken as UTC), for ordering."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _same_run(child: dict, parent: dict) -> bool:
    if child.get("from_email") != parent.get("from_email"):
        return False
    apart = _seconds_apart(child.get("date"), parent.get("date"))
    return apart is not None and apart <= RUN_SECONDS


def is_unthreaded(mail: dict) -> bool:
    return mail["kind"] in ("cover", "patch") and _is_root(mail) and (mail.get("total") or 0) >= 2 \
        and bool(mail.get("date"))


def _run_key(mail: dict) -> tuple:
    # Same sender, version, N and subject prefixes ("[PATCH MANUALSEL 5.4 1/4]"
    # and "[PATCH MANUALSEL 4.19 1/4]" sent a second apart are two postings).
    prefixes = tuple(sorted(p.upper() for p in subjects.parse(mail.get("subject") or "").prefixes))
    return mail.get("from_email"), mail["version"], mail.get("total"), prefixes


def unthreaded_runs(mails: Iterable[dict]) -> dict[str, str]:
    """msgid -> msgid of the run's head, for postings sent with no In-Reply-To or
    References that are one send-email run: same sender, version, N and
    prefixes, each within RUN_SECONDS of the one before, no number twice (a
    number seen again starts the next run). The head is the cover, else the
    lowest-numbered patch; runs of one mail are left out."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for mail in mails:
        if is_unthreaded(mail):
            groups[_run_key(mail)].append(mail)
    heads: dict[str, str] = {}

    def close(run: list[dict]) -> None:
        if len(run) > 1:
            head = min(run, key=lambda m: (m.get("number") if m.get("number") is not None else 1,
                                           _stamp(m["date"]), m["msgid"]))
            heads.update((m["msgid"], head["msgid"]) for m in run)

    for group in groups.values():
        group.sort(key=lambda m: (_stamp(m["date"]), m["msgid"]))
        run: list[dict] = []
        for mail in group:
            if run and _stamp(mail["date"]) - _stamp(run[-1]["date"]) <= RUN_SECONDS and \
                    mail.get("number") not in {m.get("number") for m in run}:
                run.append(mail)
            else:
                close(run)
                run = [mail]
        close(run)
    return heads


def anchor_of(mail: dict, lookup: Lookup, partial: bool = True) -> str:
    """The msgid that names the revision a cover or patch belongs to, or, for the
    patches of a series that reached this list only in part, their partial_anchor
    (partial=False: the mail the threading walk stops at, as before partial grouping)."""
    current = mail
    for _ in range(_MAX_WALK):
        parent = _parent(current, lookup)
        if parent is None or not _same_posting(current, parent):
            break
        current = parent
    return (partial and partial_anchor(current, lookup)) or current["msgid"]


PARTIAL = "#partial/"  # in an anchor: the posting's cover (the thread root named first) is not stored


def absent_root(mail: dict, lookup: Lookup) -> str | None:
    """The mail this one answers that is not stored and that its posting hangs from: of the
    absent mails after the newest stored one in its References (and In-Reply-To), the one
    its own send-email run sent (same msgid stem), else the oldest. None when it answers
    nothing, or when what it answers is stored."""
    chain = [m for m in (mail.get("references") or []) if m and m != mail["msgid"]]
    reply = mail.get("in_reply_to")
    if reply and reply != mail["msgid"]:
        chain = [m for m in chain if m != reply] + [reply]
    if not chain or lookup(chain[-1]) is not None:
        return None
    stored = [i for i, m in enumerate(chain) if lookup(m) is not None]
    absent = chain[stored[-1] + 1 if stored else 0:]
    # A v2 sent in reply to v1's cover, neither here: the cover of its own send-email run.
    own = [m for m in absent if is_same_posting(mail["msgid"], m)]
    return own[0] if own else absent[0]


def partial_anchor(mail: dict, lookup: Lookup) -> str | None:
    """A patch of an N-patch posting whose cover went to other lists (only the patches
    Cc'd here arrived): its revision is named by the absent thread root, the version, N
    and the sender, as patchwork groups such patches (a v7 patch sent into the thread of
    v8 is not part of v8). None for a mail that is not such a patch."""
    if mail.get("kind") != "patch" or (mail.get("total") or 0) < 2 or not mail.get("number"):
        return None
    root = absent_root(mail, lookup)
    if root is None or len(root) > 400:  # an anchor is at most 500 characters
        return None
    return f"{root}{PARTIAL}v{mail['version']}/{mail['total']}/{(mail.get('from_email') or '').lower()}"


def partial_root(anchor: str) -> str | None:
    """The absent thread root a partial anchor names (None for any other anchor)."""
    root, sep, _ = anchor.partition(PARTIAL)
    return root if sep else None


def owner_of_reply(mail: dict, lookup: Lookup,
                   adopted: Callable[[dict], bool] = lambda row: False) -> dict | None:
    """The cover or patch a reply (at any depth) is about; adopted(row) says
    whether a thread root of kind "other" is the cover of a posting."""
    current = mail
    seen = {mail["msgid"]}
    for _ in range(_MAX_WALK):
        parent = _parent(current, lookup)
        if parent is None or parent["msgid"] in seen:
            return None
        if parent["kind"] in ("cover", "patch") or (parent["kind"] == "other" and adopted(parent)):
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
