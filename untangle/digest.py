"""Email digests: compose the plain-text body, build the MIME message, send it.

Pure Python (no Django): the caller gathers subscriptions and revisions from
its store and passes them in as a DigestSubscription and DigestItems (with
their ApplyState, SuiteState, ReviewCounts, stale and missing dependencies);
compose() returns a ComposedDigest.  The "send exactly once" bookkeeping is
the caller's; this module supplies the pieces it needs: a Message-ID that is
the same for the same subscription and period (so a resend after a crash can
be recognised as a duplicate), and a SendError that says whether retrying can
help.

Body rules, as kernel lists expect: plain text, no HTML, every line at most
72 columns.  Prose is wrapped; links go on a line of their own.  The single
allowed exception is a URL that is longer than 72 columns by itself: it sits
alone, unindented, on its own line (breaking it would make it unclickable).
"""
from __future__ import annotations

import email.policy
import re
import smtplib
import socket
import ssl
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Literal, Mapping, Sequence
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime

from untangle import msgid as msgids

WIDTH = 72
TAG = "reviewapp"

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.I)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_SAFE_DOMAIN = re.compile(r"^[A-Za-z0-9.-]+$")
_REVIEW_TAGS = ("Reviewed-by", "Acked-by", "Tested-by", "Nacked-by")


# ---------------------------------------------------------------- inputs, output

Day = date | datetime | str | None  # str: an ISO date, shown as is when it does not parse


@dataclass(frozen=True)
class RevisionRef:
    """A revision named in a digest (a dependency in a chain)."""

    subject: str
    version: int | str | None
    msgid: str


@dataclass(frozen=True)
class ApplyState:
    """The latest finished apply of a revision's chain, and how it moved in the period."""

    status: str | None  # applied, conflict, failed
    changed: Literal["started applying", "stopped applying"] | None = None
    failed_patch: str | None = None  # subject (or msgid) of the patch that did not apply
    finished: datetime | None = None  # for the caller's activity test; not shown


@dataclass(frozen=True)
class SuiteState:
    status: str | None  # a SuiteRun verdict: pass, fail, timeout, crashed, error
    failed_tests: tuple[str, ...] = ()
    finished: datetime | None = None  # for the caller's activity test; not shown


_TAG_FIELDS = {"Reviewed-by": "reviewed_by", "Acked-by": "acked_by", "Tested-by": "tested_by",
               "Nacked-by": "nacked_by"}


@dataclass(frozen=True)
class ReviewCounts:
    """Distinct people per review tag."""

    reviewed_by: int = 0
    acked_by: int = 0
    tested_by: int = 0
    nacked_by: int = 0

    @classmethod
    def from_tags(cls, counts: Mapping[str, int]) -> "ReviewCounts":
        """{"Reviewed-by": 2, ...} -> ReviewCounts; other tags are not reviews here."""
        return cls(**{_TAG_FIELDS[tag]: n for tag, n in counts.items() if tag in _TAG_FIELDS})

    def of(self, tag: str) -> int:
        return getattr(self, _TAG_FIELDS[tag])


@dataclass(frozen=True)
class ReviewProgress:
    """Where the review of a revision stands (untangle.review), and what moved in the period."""

    state: str
    patches: int
    reviewed: int
    objections_open: int = 0
    new_trailers: int = 0  # review trailers given in the period
    new_objections: int = 0  # objections raised in the period, still open
    gone_stale: int = 0  # reviews this revision made stale (it changed the patch), when it is new


@dataclass(frozen=True)
class StaleDependency:
    """A dependency of the chain with a newer revision of its series."""

    revision: RevisionRef
    newer_version: int | str | None
    newer_date: Day = None
    newer_msgid: str = ""
    newer_seen: datetime | None = None  # when the newer one arrived here; not shown


@dataclass(frozen=True)
class MissingDependency:
    """A dependency named by message-id that could not be fetched."""

    msgid: str
    error: str = ""


@dataclass(frozen=True)
class PartialPosting:
    """A series only some patches of which reached the list (the rest went to other lists)."""

    received: int
    expected: int
    cover_msgid: str  # the absent thread root the patches answer


@dataclass(frozen=True)
class ConflictNote:
    """Another open series of the list this one does not merge with (reviewapp's in-flight)."""

    subject: str
    version: int | str | None
    msgid: str
    files: tuple[str, ...] = ()
    hunks: int = 0
    new_in_period: bool = False  # first seen in the digest's period


@dataclass(frozen=True)
class DigestItem:
    """One revision reported in a digest."""

    subject: str
    version: int | str | None
    msgid: str
    author: str = ""
    date: Day = None
    list: str = ""
    url: str = ""  # the series page
    tree_url: str | None = None  # the applied tree, when one exists
    new_in_period: bool = False
    chain: tuple[RevisionRef, ...] = ()  # dependencies in apply order
    apply: ApplyState | None = None
    suite: SuiteState | None = None
    stale: tuple[StaleDependency, ...] = ()
    missing: tuple[MissingDependency, ...] = ()
    reviews: ReviewCounts = ReviewCounts()
    progress: ReviewProgress | None = None
    partial: PartialPosting | None = None
    conflicts: tuple[ConflictNote, ...] = ()


@dataclass(frozen=True)
class DigestSubscription:
    name: str
    address: str = ""
    period: str = ""  # daily, weekly
    lists: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    unsubscribe_url: str | None = None


@dataclass(frozen=True)
class ComposedDigest:
    subject: str
    body: str
    empty: bool = False  # nothing to report: the caller may skip sending
    unsubscribe_url: str | None = None

    def to_json(self) -> dict:
        return {"subject": self.subject, "body": self.body, "empty": self.empty,
                "unsubscribe_url": self.unsubscribe_url}


class SendError(Exception):
    """Sending failed.  `temporary` is True when a later retry may succeed
    (4xx replies, connection problems); False for 5xx and configuration
    errors, where retrying the same message is pointless."""

    def __init__(self, message: str, *, temporary: bool, code: int | None = None):
        super().__init__(message)
        self.temporary = temporary
        self.code = code


# ---------------------------------------------------------------- columns

def width(text: str) -> int:
    """Display columns of `text`: East Asian wide characters take two,
    combining marks none (len() would miscount both)."""
    cols = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        cols += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return cols


def _split_to_width(word: str, room: int) -> list[str]:
    """Hard-split a word that cannot fit on any line (not a URL)."""
    pieces, cur = [], ""
    for ch in word:
        if cur and width(cur + ch) > room:
            pieces.append(cur)
            cur = ""
        cur += ch
    return pieces + ([cur] if cur else [])


def wrap(text: str, indent: str = "", subsequent: str | None = None) -> list[str]:
    """Greedy word wrap to WIDTH display columns.  Whitespace in `text` is
    collapsed (subjects from mail headers may carry folding)."""
    subsequent = indent if subsequent is None else subsequent
    lines: list[str] = []
    cur, prefix = "", indent
    for word in text.split():
        if _URL.match(word) and width(prefix + word) > WIDTH:
            # A URL is never broken: it goes alone, at column 0 if need be.
            if cur:
                lines.append(prefix + cur)
                prefix = subsequent
            lines.extend(_link_alone(word, prefix))
            cur, prefix = "", subsequent
            continue
        candidate = f"{cur} {word}" if cur else word
        if width(prefix + candidate) <= WIDTH:
            cur = candidate
            continue
        if cur:
            lines.append(prefix + cur)
            prefix = subsequent
        room = WIDTH - width(prefix)
        pieces = _split_to_width(word, room) if width(word) > room else [word]
        for piece in pieces[:-1]:
            lines.append(prefix + piece)
        cur = pieces[-1]
    if cur or not lines:
        lines.append(prefix + cur)
    return lines


def _link_alone(url: str, indent: str) -> list[str]:
    if width(indent + url) <= WIDTH:
        return [indent + url]
    # Unindented; if even that is > WIDTH it is the one allowed exception.
    return [url]


def link(label: str, url: str, indent: str) -> list[str]:
    """`label url` on one line if it fits, otherwise the label on one line
    and the URL alone below it."""
    one = f"{indent}{label} {url}"
    if width(one) <= WIDTH:
        return [one]
    return wrap(label, indent) + _link_alone(url, indent)


def lore_url(msgid: str, base: str = msgids.DEFAULT_LORE) -> str:
    return msgids.lore_url(msgid, base)


# ---------------------------------------------------------------- wording

def _day(value) -> str:
    """YYYY-MM-DD of a date, datetime or ISO string ("" when unknown)."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text).date().isoformat()
    except ValueError:
        return text


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value).strip()).date()


def period_label(start, end) -> str:
    """Short range for subjects: 2026-11-23..29, 2026-11-30..12-06,
    2026-12-28..2027-01-03, or a single day."""
    a, b = _as_date(start), _as_date(end)
    if a == b:
        return a.isoformat()
    if a.year != b.year:
        return f"{a.isoformat()}..{b.isoformat()}"
    if a.month != b.month:
        return f"{a.isoformat()}..{b:%m-%d}"
    return f"{a.isoformat()}..{b:%d}"


def _span_words(start, end) -> str:
    a, b = _as_date(start), _as_date(end)
    if a == b:
        return f"on {a.isoformat()}"
    return f"between {a.isoformat()} and {b.isoformat()}"


def _version(value) -> str:
    if value in (None, ""):
        return ""
    text = str(value).strip()
    return f"v{text}" if text[:1].isdigit() else text


def _name(rev: DigestItem | RevisionRef) -> str:
    """'"KVM: guest_memfd: support for uffd minor" v3' (quoted so the
    version is not read as part of the title)."""
    subject = " ".join(str(rev.subject or rev.msgid or "?").split())
    version = _version(rev.version)
    return f'"{subject}" {version}'.rstrip()


def _apply_words(apply: ApplyState | None, show_state: bool) -> str | None:
    """Changes always; the standing state only when `show_state` (first
    digest, or a revision new in the period)."""
    if apply is None:
        return None  # never applied: nothing to say
    status, changed, patch = apply.status, apply.changed, apply.failed_patch
    reason = {"conflict": f"conflict in {patch}" if patch else "conflict",
              "failed": f"{patch} failed to apply" if patch else "git am failed"
              }.get(status)
    if changed == "started applying":
        return "started applying, chain included."
    if changed == "stopped applying":
        return f"stopped applying: {reason or 'see the series page'}."
    if not show_state:
        return None
    if status == "applied":
        return "applies cleanly, chain included."
    return f"does not apply: {reason}." if reason else None


_SUITE = {
    "pass": "selftests pass.",
    "fail": "selftests FAIL",
    "timeout": "selftests timed out",
    "crashed": "the test kernel crashed",
    "error": "the test run could not be completed (infrastructure error,"
             " not necessarily the series).",
}


def _suite_words(suite: SuiteState | None) -> str | None:
    status = suite.status if suite is not None else None
    if not status:
        return None
    text = _SUITE.get(status, f"selftests: {status}.")
    failed = [str(t) for t in suite.failed_tests]
    if status in ("fail", "timeout", "crashed"):
        text += f": {', '.join(failed)}." if failed else "."
    return text


def _conflict_words(conflicts: Sequence[ConflictNote], first: bool) -> str:
    shown = [c for c in conflicts if first or c.new_in_period]
    if not shown:
        return ""
    parts = []
    for c in shown:
        where = ", ".join(c.files[:3]) + (f" and {len(c.files) - 3} more files" if len(c.files) > 3 else "")
        parts.append(f'"{c.subject}" v{c.version} ({where}; {c.hunks} hunk{"s" if c.hunks != 1 else ""})')
    return "does not merge with " + "; ".join(parts) + "."


def _review_words(reviews: ReviewCounts, progress: ReviewProgress | None = None) -> str:
    parts = [f"{tag}: {reviews.of(tag)}" for tag in _REVIEW_TAGS if reviews.of(tag)]
    text = ", ".join(parts) + "." if parts else "no review tags yet."
    if progress is None:
        return text
    text += f" {progress.state}: {progress.reviewed} of {progress.patches} patches reviewed"
    if progress.objections_open:
        text += f", {_count(progress.objections_open, 'open objection', 'open objections')}"
    moved = [_count(n, one, many) for n, one, many in (
        (progress.new_trailers, "new review trailer", "new review trailers"),
        (progress.new_objections, "new objection", "new objections"),
        (progress.gone_stale, "review gone stale", "reviews gone stale")) if n]
    return text + (f"; since the last digest: {', '.join(moved)}." if moved else ".")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _stale_words(item: DigestItem, dep: StaleDependency) -> str:
    newer = _version(dep.newer_version) or "a newer revision"
    when = _day(dep.newer_date)
    posted = f"{newer} was posted on {when}" if when else f"{newer} was posted"
    return f"{_name(item)} is built on {_name(dep.revision)}; {posted}."


def _missing_words(item: DigestItem, dep: MissingDependency) -> str:
    error = " ".join(str(dep.error or "unknown error").split())
    return (f"{_name(item)} depends on a mail that could not be fetched:"
            f" {error.rstrip('.')}.")


# ---------------------------------------------------------------- sections

Numbered = Sequence[tuple[int, DigestItem]]


def _entry_head(number: int, item: DigestItem) -> list[str]:
    return wrap(f"[{number}] {_name(item)}", "", "    ")


def _new_section(numbered: Numbered, first: bool) -> list[str]:
    lines = []
    for n, item in numbered:
        if not (first or item.new_in_period):
            continue
        lines += _entry_head(n, item)
        byline = ", ".join(x for x in (
            " ".join(str(item.author or "").split()),
            _day(item.date),
            str(item.list or "")) if x)
        if byline:
            lines += wrap(byline, "    ")
        if item.partial:
            p = item.partial
            lines += wrap(f"partial: {p.received} of {p.expected} patches reached this list; the cover "
                          f"<{p.cover_msgid}> and the others went to other lists.", "    ")
        chain = item.chain
        if chain:
            lines += wrap("built on, in apply order:", "    ")
            for i, dep in enumerate(chain, 1):
                lines += wrap(f"{i}. {_name(dep)}", "      ", "         ")
        else:
            lines += wrap("applies on its own (no in-flight dependencies).", "    ")
    return lines


def _simple_section(numbered: Numbered, words) -> list[str]:
    lines = []
    for n, item in numbered:
        text = words(item)
        if text:
            lines += _entry_head(n, item) + wrap(text, "    ")
    return lines


def _deps_section(numbered: Numbered, lore: str) -> list[str]:
    lines = []
    for n, item in numbered:
        for dep in item.stale:
            lines += wrap(f"[{n}] {_stale_words(item, dep)}", "", "    ")
            if dep.newer_msgid:
                lines += link("newer:", lore_url(dep.newer_msgid, lore), "    ")
        for gone in item.missing:
            lines += wrap(f"[{n}] {_missing_words(item, gone)}", "", "    ")
            if gone.msgid:
                lines += link("wanted:", lore_url(gone.msgid, lore), "    ")
    return lines


def _links_section(numbered: Numbered, lore: str) -> list[str]:
    lines = []
    for n, item in numbered:
        lines += _entry_head(n, item)
        if item.url:
            lines += link("series:", item.url, "  ")
        if item.tree_url:
            lines += link("tree:  ", item.tree_url, "  ")
        if item.msgid:
            lines += link("lore:  ", lore_url(item.msgid, lore), "  ")
    return lines


def _section(title: str, lines: list[str]) -> list[str]:
    if not lines:
        return []
    return ["", title, "-" * width(title), ""] + lines


def _intro(sub: DigestSubscription, items: Sequence[DigestItem], period, first: bool,
           now: datetime) -> list[str]:
    name = sub.name or "this subscription"
    if first:
        when = _as_utc(now).strftime("%Y-%m-%d %H:%M UTC")
        text = (f"This is your first {name} digest: the state of everything"
                f" still open that matches, as of {when}.")
    else:
        text = (f"What changed on {name} {_span_words(*period)}"
                f" ({sub.period or 'periodic'} digest).")
    lines = wrap(text)
    scope = []
    if sub.lists:
        scope.append("lists " + ", ".join(sub.lists))
    if sub.paths:
        scope.append("paths " + ", ".join(sub.paths))
    if scope:
        lines += wrap("Matching " + "; ".join(scope) + ".")
    new = sum(1 for i in items if i.new_in_period)
    count = f"{len(items)} series revision{'s' if len(items) != 1 else ''}"
    lines += [""] + wrap(f"{count}, {new} new in this period." if not first
                         else f"{count} open.")
    return lines


def _footer(sub: DigestSubscription, base_url: str) -> list[str]:
    # "-- " (with the space) is the signature separator mail readers know.
    period = (sub.period or "").capitalize()
    lines = ["", "-- "]
    lines += wrap(f"{period} {sub.name or ''} digest from {TAG} for"
                  f" {sub.address or 'you'}.")
    lines += _link_alone(base_url.rstrip("/") + "/", "")
    if sub.unsubscribe_url:
        lines += wrap("Unsubscribe with one click, no login needed:")
        lines += _link_alone(sub.unsubscribe_url, "")
    return lines


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def compose(subscription: DigestSubscription, items: Sequence[DigestItem], period, first: bool,
            base_url: str, now: datetime, lore: str = msgids.DEFAULT_LORE) -> ComposedDigest:
    """Compose one digest.

    `period` is (start, end), both days included.  On the first digest
    `items` is everything open that matches; later, the revisions with
    activity in the period (all given items are reported, in the given
    order).  When there is nothing to report the body is one line and
    `empty` is True so the caller can skip sending.
    """
    name = subscription.name or "subscription"
    subject = f"[{TAG}] {name} digest, {period_label(*period)}"
    unsubscribe = subscription.unsubscribe_url
    if not items:
        if first:
            body = f"Nothing open on {name} matches as of {_day(now)}."
        else:
            body = f"Nothing new on {name} {_span_words(*period)}."
        return ComposedDigest(subject, body + "\n", empty=True, unsubscribe_url=unsubscribe)
    numbered = list(enumerate(items, 1))
    lines = ["Hello,", ""] + _intro(subscription, items, period, first, now)
    lines += _section("Open series and revisions" if first else "New series and revisions",
                      _new_section(numbered, first))
    lines += _section("Apply state" if first else "Apply changes", _simple_section(
        numbered, lambda i: _apply_words(i.apply, first or i.new_in_period)))
    lines += _section("Selftest results", _simple_section(
        numbered, lambda i: _suite_words(i.suite)))
    lines += _section("Stale or missing dependencies", _deps_section(numbered, lore))
    lines += _section("Conflicts in flight" if first else "New conflicts since the last digest",
                      _simple_section(numbered, lambda i: _conflict_words(i.conflicts, first)))
    lines += _section("Review state", _simple_section(
        numbered, lambda i: _review_words(i.reviews, i.progress)))
    lines += _section("Links", _links_section(numbered, lore))
    lines += _footer(subscription, base_url)
    return ComposedDigest(subject, "\n".join(lines) + "\n", unsubscribe_url=unsubscribe)


# ---------------------------------------------------------------- message

def make_message_id(subscription_id, period_start, domain: str) -> str:
    """Same subscription and period start -> same Message-ID, so a digest
    re-sent after a crash is recognisable as the same mail."""
    sid, dom = str(subscription_id), str(domain)
    if not _SAFE_ID.match(sid):
        # Rewriting unusual characters could make two ids collide: refuse.
        raise ValueError(f"subscription id {sid!r} is not usable in a Message-ID")
    if not _SAFE_DOMAIN.match(dom):
        raise ValueError(f"domain {dom!r} is not usable in a Message-ID")
    return f"<{TAG}-digest.{sid}.{_as_date(period_start):%Y%m%d}@{dom}>"


class _TokenHeader(UnstructuredHeader):
    """In-Reply-To, References, List-Unsubscribe: fold only between tokens
    (ids, <urls>), never RFC 2047-encode.  The stdlib treats these as
    unstructured text and turns a long id or URL into an encoded-word,
    which breaks threading and unsubscribe links.  A single token longer
    than the fold width stays whole (legal up to 998 octets)."""

    def fold(self, *, policy):
        lines, cur, tokens_on_line = [], f"{self.name}:", 0
        for token in str(self).split():
            if len(cur) + 1 + len(token) > policy.max_line_length and tokens_on_line:
                lines.append(cur)
                cur, tokens_on_line = "", 0
            cur += " " + token
            tokens_on_line += 1
        lines.append(cur)
        return policy.linesep.join(lines) + policy.linesep


def _policy():
    registry = HeaderRegistry()
    for name in ("in-reply-to", "references", "list-unsubscribe"):
        registry.map_to_type(name, _TokenHeader)
    return email.policy.SMTP.clone(header_factory=registry)


def build_message(digest: ComposedDigest, from_addr: str, to_addr: str, message_id: str,
                  in_reply_to: str | None, date: datetime, *,
                  one_click_unsubscribe: bool = False) -> EmailMessage:
    """A text/plain UTF-8 message ready for smtplib.  ASCII bodies go as
    7bit; others as quoted-printable, which survives relays that do not
    speak 8BITMIME.  Non-ASCII headers are RFC 2047-encoded by the policy.
    Set one_click_unsubscribe only if the unsubscribe URL accepts a POST
    (RFC 8058)."""
    msg = EmailMessage(policy=_policy())
    msg["Message-ID"] = msgids.bracketed(message_id)
    msg["Date"] = format_datetime(date if date.tzinfo else date.replace(tzinfo=timezone.utc))
    msg["From"] = from_addr
    msg["To"] = to_addr
    msg["Subject"] = digest.subject
    if in_reply_to:
        # Each digest answers the previous one of its subscription: readers
        # show a subscription's digests as one thread.
        msg["In-Reply-To"] = msgids.bracketed(in_reply_to)
        msg["References"] = msgids.bracketed(in_reply_to)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"  # no out-of-office replies
    unsubscribe = digest.unsubscribe_url
    if unsubscribe:
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        if one_click_unsubscribe:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    body = digest.body
    cte = "7bit" if body.isascii() else "quoted-printable"
    msg.set_content(body, subtype="plain", charset="utf-8", cte=cte)
    return msg


# ---------------------------------------------------------------- sending

def _temporary(code: int | None) -> bool:
    # 4xx: try again later.  5xx: the server will say the same next time.
    return code is None or not 500 <= code < 600


def _reply_error(what: str, code: int, text) -> SendError:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    kind = "temporary" if _temporary(code) else "permanent"
    return SendError(f"{what}: {kind} refusal {code} {text}".strip(),
                     temporary=_temporary(code), code=code)


def _connect(smtp: dict) -> smtplib.SMTP:
    host, port = smtp["host"], int(smtp.get("port") or (465 if smtp.get("ssl") else 25))
    timeout = float(smtp.get("timeout") or 30)
    if smtp.get("ssl"):
        return smtplib.SMTP_SSL(host, port, timeout=timeout,
                                context=ssl.create_default_context())
    conn = smtplib.SMTP(host, port, timeout=timeout)
    if smtp.get("starttls"):
        conn.ehlo()
        conn.starttls(context=ssl.create_default_context())
        conn.ehlo()
    return conn


def send(message: EmailMessage, smtp: dict) -> None:
    """Send `message` over SMTP.  smtp = {host, port, user, password,
    starttls, ssl, timeout, [envelope_from]}.  Raises SendError; its
    `temporary` flag tells the caller whether to retry later."""
    where = f"{smtp.get('host')}:{smtp.get('port')}"
    conn = None
    try:
        conn = _connect(smtp)
        if smtp.get("user"):
            conn.login(smtp["user"], smtp.get("password") or "")
        refused = conn.send_message(message, from_addr=smtp.get("envelope_from"))
        if refused:
            # Delivered to some recipients but not these: not retryable as
            # a whole without duplicating the accepted copies.
            raise SendError(f"{where} refused recipients {sorted(refused)}",
                            temporary=False)
    except SendError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        temporary = all(_temporary(c) for c in codes)
        detail = "; ".join(f"{r}: {c} {m.decode('utf-8', 'replace') if isinstance(m, bytes) else m}"
                           for r, (c, m) in exc.recipients.items())
        raise SendError(f"{where} refused the recipient ({detail})",
                        temporary=temporary, code=codes[0] if codes else None) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise _reply_error(f"{where} rejected the login", exc.smtp_code, exc.smtp_error) from exc
    except smtplib.SMTPSenderRefused as exc:
        raise _reply_error(f"{where} refused the sender {exc.sender}",
                           exc.smtp_code, exc.smtp_error) from exc
    except smtplib.SMTPResponseException as exc:
        raise _reply_error(f"{where} refused the message", exc.smtp_code, exc.smtp_error) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(f"{where}: {exc} (check the starttls/ssl settings)",
                        temporary=False) from exc
    except ssl.SSLCertVerificationError as exc:
        raise SendError(f"{where}: TLS certificate rejected: {exc}", temporary=False) from exc
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        # Disconnects, refused connections, timeouts, DNS hiccups.
        raise SendError(f"could not talk to {where}: {exc!r}", temporary=True) from exc
    finally:
        _quit(conn)


def _quit(conn) -> None:
    # After DATA was accepted the mail is sent; a failing QUIT changes nothing.
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()
