"""Where the review of one revision stands: trailers as `b4 am` would apply them,
trailers carried from the previous revision (or gone stale), review comments and
objections in the replies. Plain data in, typed results out; no Django.

The trailer rules follow b4 0.16 (`LoreMessage.find_trailers(followup=True)`,
`get_trailers(sloppy=False)` and the follow-up walk of `LoreMailbox.get_series`),
so the set we show for a patch is the set `b4 am` puts on it (docs/review.md
counts where the two still differ).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.utils import parseaddr

REVIEW_KINDS = ("Reviewed-by", "Acked-by", "Tested-by")
# Not trailers a reviewer gives in a reply (b4's "badtrailers", plus what only patches carry).
_NOT_FOLLOWUP = {"from", "author", "cc", "to", "date", "subject", "subscribe", "unsubscribe",
                 "base-commit", "change-id", "message-id"}
_IGNORED = {"phone", "mail", "email", "e-mail", "prerequisite-message-id"}
_HEADERS = {"subject", "date", "from"}
_LINKS = {"link", "buglink", "closes"}
_NON_PERSON = _LINKS | {"fixes", "subject", "date", "obsoleted-by", "change-id", "base-commit"}
_UTILITY = {"fixes", "link", "buglink", "closes", "obsoleted-by", "message-id", "change-id",
            "base-commit", "based-on"}
_LINE = re.compile(r"^\s*(\w\S+):\s+(\S.*)", re.I)
_PERSON = re.compile(r"\S+@\S+\.\S+")
_EXTINFO = re.compile(r"(.*\S+)(\s+#[^#]+)$")
_ANGLE = re.compile(r"^(.*?)\s*<([^>]+)>\s*$")
MAX_BODY = 256 * 1024  # a longer reply is read up to here: a reviewer's trailers come first


@dataclass(frozen=True)
class FoundTrailer:
    """One `Kind: value` line of a follow-up, as b4 reads it."""
    kind: str
    value: str
    name: str = ""
    email: str = ""
    person: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.kind.lower(), (self.email or self.value).lower()


def _canon(kind: str) -> str:
    return "-".join(p.capitalize() if i == 0 else p.lower() for i, p in enumerate(kind.split("-")))


def _trailer(kind: str, value: str) -> FoundTrailer:
    if kind.lower() in _UTILITY or "://" in value or not _PERSON.search(value):
        return FoundTrailer(_canon(kind), value.strip())
    value = re.sub(r"<mailto:[^>]+>", "", value)
    m = _ANGLE.match(value)
    name, addr = (m.group(1).strip(), m.group(2).strip()) if m else parseaddr(value)
    name = name.strip('"').strip()
    return FoundTrailer(_canon(kind), value.strip(), " ".join(name.split()), addr.lower(), True)


_LINES = re.compile(r"^[ \t\f\v]*(\w\S+):[ \t\f\v]+(\S.*?)\r?$", re.M | re.I)
# b4 joins a trailer wrapped over two lines; bounded to one line each (b4's own classes
# may span lines, which only matters for mails no one writes).
_WRAPPED_FIXES = re.compile(r"^(\S+:[ \t]+[\da-f]+[ \t]+\([^)\n]+)\n([^\n]+\))", re.M)
_WRAPPED_ADDRESS = re.compile(r"^(\S+:[ \t]+[^<\n]+)\n(<[^>\n]+>)$", re.M)


def followup_trailers(body: str) -> list[FoundTrailer]:
    """The trailers a follow-up mail gives (quoted lines and the signature never count)."""
    body = body[:MAX_BODY].split("\n-- \n", 1)[0].strip() + "\n"
    if "(" in body:
        body = _WRAPPED_FIXES.sub(r"\1 \2", body)
    if "\n<" in body:
        body = _WRAPPED_ADDRESS.sub(r"\1 \2", body)
    found: list[FoundTrailer] = []
    other_lines = False
    next_start = 0  # where the next line starts if every line so far was a trailer line
    for m in _LINES.finditer(body):
        if m.start() != next_start:
            other_lines = True
        next_start = m.end() + 1
        kind, value = m.groups()
        low = kind.lower()
        if low in _IGNORED or low in _NOT_FOLLOWUP or (other_lines and low in _HEADERS):
            continue
        if not low.isascii():
            continue
        if not _PERSON.search(value) and low not in _NON_PERSON:
            continue
        if "://" in value and re.search(r"https?://", value) and low not in _LINKS:
            continue
        if low == "fixes" and not re.search(r"^[0-9a-f]{6,}", value):
            continue
        if "#" in value and (ext := _EXTINFO.search(value)):
            value = ext.group(1)
        found.append(_trailer(kind, value))
    return found


def from_sender(trailer: FoundTrailer, from_name: str, from_email: str) -> bool:
    """b4's (non-sloppy) rule: a person's trailer counts when the sender gives it
    (same address, or the same name)."""
    if not trailer.person or not trailer.email:
        return True
    if same_address(trailer.email, from_email or ""):
        return True
    tname, hname = trailer.name.lower(), (from_name or "").lower()
    if tname == hname:
        return True
    if "," in hname:
        return all(hname.find(chunk.strip()) >= 0 for chunk in hname.split(","))
    return False


def same_address(a: str, b: str) -> bool:
    """b4's fuzzy address match: case, a +extension, and one more domain level
    (foo@linux.intel.com is foo@intel.com)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    if "@" not in a or "@" not in b:
        return False
    a, b = re.sub(r"\+[^@]+@", "@", a), re.sub(r"\+[^@]+@", "@", b)
    if a == b:
        return True
    (alocal, adomain), (blocal, bdomain) = a.split("@", 1), b.split("@", 1)
    if alocal != blocal:
        return False
    return abs(adomain.count(".") - bdomain.count(".")) == 1 and (
        adomain.endswith("." + bdomain) or bdomain.endswith("." + adomain))


# --- the thread -----------------------------------------------------------------

@dataclass(frozen=True)
class ThreadMail:
    msgid: str
    in_reply_to: str | None
    references: tuple[str, ...]
    kind: str  # patch, cover, reply, other (untangle.mail)
    from_name: str
    from_email: str
    date: datetime | None
    body: str
    subject: str = ""

    @property
    def is_reply(self) -> bool:
        return self.kind in ("reply", "other") and bool(self.in_reply_to or self.references)


@dataclass(frozen=True)
class Given:
    """A trailer given to a patch (or to the cover, for all patches)."""
    kind: str
    name: str
    email: str
    value: str
    from_msgid: str
    date: str = ""  # ISO
    via: str = "reply"  # own (the patch's commit message), reply (to the patch), cover (reply to the cover)
    carried_from: int | None = None  # the version it was given on, when carried
    stale: bool = False  # given on an earlier version; the patch changed since

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, stored: dict, **changes) -> "Given":
        """Back from a stored trailer (one without its raw value), with changes."""
        fields = {k: stored[k] for k in ("kind", "name", "email", "from_msgid") if k in stored}
        fields.update({k: stored[k] for k in ("date", "via", "carried_from", "stale") if k in stored})
        return cls(value=stored.get("value", ""), **{**fields, **changes})


def _parent(mail: ThreadMail, by_id: dict[str, ThreadMail]) -> ThreadMail | None:
    if mail.in_reply_to is None:
        for ref in mail.references:
            if ref != mail.msgid and ref in by_id:
                return by_id[ref]
        return None
    return by_id.get(mail.in_reply_to)


def attribute(mails: list[ThreadMail], limit: int = 200,
              parsed: dict[str, list[FoundTrailer]] | None = None) -> dict[str, list[Given]]:
    """Follow-up trailers per patch or cover msgid: each reply walks up its thread
    to the patch (or cover) it answers, taking the trailers of the replies it
    passes on the way, as b4 does."""
    by_id = {m.msgid: m for m in mails}
    if parsed is None:
        parsed = {m.msgid: followup_trailers(m.body) for m in mails if m.is_reply}
    out: dict[str, list[Given]] = {}
    for mail in sorted((m for m in mails if m.is_reply), key=_when):
        own = parsed[mail.msgid]
        if not own:
            continue
        parent = _parent(mail, by_id)
        if parent is None:
            continue
        taken = [(t, mail) for t in own if from_sender(t, mail.from_name, mail.from_email)]
        for _ in range(limit):
            if not parent.is_reply:
                out.setdefault(parent.msgid, []).extend(_given(t, m) for t, m in taken)
                break
            above = by_id.get(parent.in_reply_to) if parent.in_reply_to else None
            if above is None or above is parent:
                break
            taken += [(t, parent) for t in parsed.get(parent.msgid, [])]
            parent = above
    return out


def _when(m: ThreadMail) -> tuple:
    return (m.date.isoformat() if m.date else "", m.msgid)


def _given(t: FoundTrailer, mail: ThreadMail, via: str = "reply") -> Given:
    return Given(kind=t.kind, name=t.name, email=t.email, value=t.value, from_msgid=mail.msgid,
                 date=mail.date.isoformat() if mail.date else "", via=via)


def dedup(trailers: list[Given]) -> list[Given]:
    """One trailer per (kind, person): the first one given (own, then direct, then carried)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for t in trailers:
        key = (t.kind.lower(), (t.email or t.value).lower())
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


# --- carrying reviews across revisions -----------------------------------------

@dataclass
class PatchSide:
    """What carry-over needs of one patch of a revision."""
    msgid: str
    number: int
    title: str
    patch_id: str | None
    trailers: list[Given] = field(default_factory=list)  # given on that revision (own excluded)


def _norm_title(title: str) -> str:
    return re.sub(r"\s+", " ", (title or "").strip().lower()).rstrip(" .")


def counterparts(previous: list[PatchSide], current: list[PatchSide]) -> dict[str, tuple[PatchSide, bool]]:
    """current msgid -> (its patch in the previous revision, unchanged?). Unchanged
    means the same patch-id (wherever it moved); a changed patch is paired by title,
    else by number."""
    by_pid = {p.patch_id: p for p in previous if p.patch_id}
    out: dict[str, tuple[PatchSide, bool]] = {}
    for p in current:
        if p.patch_id and p.patch_id in by_pid:
            out[p.msgid] = (by_pid[p.patch_id], True)
    # An old patch that an unchanged one took is nobody's changed counterpart.
    used = {old.msgid for old, _ in out.values()}
    rest = [p for p in previous if p.msgid not in used]
    by_title = {_norm_title(p.title): p for p in rest}
    by_number = {p.number: p for p in rest}
    for p in current:
        if p.msgid in out:
            continue
        old = by_title.get(_norm_title(p.title)) or by_number.get(p.number)
        if old is not None and old.msgid not in used:
            used.add(old.msgid)
            out[p.msgid] = (old, False)
    return out


def carried(previous: list[PatchSide], previous_version: int, previous_cover: list[Given],
            current: list[PatchSide]) -> dict[str, list[Given]]:
    """Trailers of the previous revision each current patch keeps: carried when the
    patch is unchanged, stale when it changed. The previous cover's trailers count
    for every patch that has a counterpart."""
    pairs = counterparts(previous, current)
    out: dict[str, list[Given]] = {}
    for p in current:
        if p.msgid not in pairs:
            continue
        old, same = pairs[p.msgid]
        kept = [_carry(t, previous_version, same, "reply") for t in old.trailers]
        kept += [_carry(t, previous_version, same, "cover") for t in previous_cover]
        out[p.msgid] = kept
    return out


def _carry(t: Given, version: int, same: bool, via: str) -> Given:
    # A trailer carried twice (v1 -> v2 -> v3) names the version it was given on.
    origin = t.carried_from if t.carried_from is not None else version
    return Given(kind=t.kind, name=t.name, email=t.email, value=t.value, from_msgid=t.from_msgid,
                 date=t.date, via=via if t.via != "own" else "reply", carried_from=origin,
                 stale=t.stale or not same)


def path_keys(paths, limit: int) -> list[str]:
    """What a queue's path filter matches for a revision changing these files: every file and
    every directory above it, as `git log -- PATH` reads a path ("mm" and "mm/" match
    mm/userfaultfd.c, "mm/user" does not). Directories first (fewer, and what people filter
    on), shallow before deep, then files; at most `limit`."""
    files = {p.strip("/") for p in paths if p and p.strip("/")}
    dirs = {f.rsplit("/", i)[0] for f in files for i in range(1, f.count("/") + 1)}
    ordered = sorted(dirs, key=lambda d: (d.count("/"), d)) + sorted(files - dirs)
    return ordered[:limit]


def path_filter_key(prefix: str) -> str:
    """A queue's ?path= value as the key path_keys stores: no leading or trailing slashes,
    no empty or "." components."""
    parts = [p for p in prefix.strip().split("/") if p and p != "."]
    return "/".join(parts)
