"""Email digests: which periods are due, what goes in them, sending each once.

The text itself is untangle.digest's (pure); this module reads the database
into the typed items it wants (DigestItem and its parts) and keeps the "exactly once" bookkeeping in
Digest rows:

1. compose: a Digest row per (subscription, period_start) is created in state
   "composed", with its deterministic Message-ID, subject and body, BEFORE any
   SMTP traffic.  The unique constraint makes a second composer lose.  A
   composed digest is never recomposed: a resend carries the same bytes.
2. send: a worker claims a composed row with one conditional UPDATE that takes
   a lease (services/leases.py; sending_since records when), renewed by a
   heartbeat while it talks to the server.  A lease its sender stopped renewing
   may be taken over (its worker most likely died before the server accepted
   the mail); the reaper re-queues such a digest once, then fails it.
3. after the server accepted the mail the row is marked "sent" at once, in
   its own autocommit UPDATE.  A crash in the few milliseconds between the
   server's 250 and that UPDATE is the one window where a duplicate can
   happen; it carries the same Message-ID, so lists and clients can drop it.

Periods are calendar periods in UTC (daily: the previous day; weekly: the
previous ISO week, Monday to Sunday) and always start where the previous
digest of the subscription ended, so a worker that was down for days sends
one digest covering the gap instead of losing it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parseaddr

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone as djtz

from untangle import digest as pure

from . import leases
from ..models import (ApplyRun, Dependency, Digest, Message, PatchFile, Revision, ReviewState, Subscription,
                      SuiteRun, Trailer)

log = logging.getLogger("reviewapp.digests")

DAILY, WEEKLY = "daily", "weekly"
PERIODS = (DAILY, WEEKLY)
FAILED = "failed"  # Digest.state beside the model's composed/sent/empty
MAX_ATTEMPTS = getattr(settings, "DIGEST_MAX_ATTEMPTS", 10)
# Longer than any SMTP timeout: a claim this old belongs to a dead worker.
REVIEW_KINDS = ("Reviewed-by", "Acked-by", "Tested-by", "Nacked-by")
APPLY_DONE = (ApplyRun.APPLIED, ApplyRun.CONFLICT, ApplyRun.FAILED)
SUITE_DONE = SuiteRun.VERDICTS
UNSUBSCRIBE_SALT = "reviewapp.digests.unsubscribe"


# ---------------------------------------------------------------- periods

@dataclass(frozen=True)
class Period:
    start: datetime  # included
    end: datetime  # excluded
    first: bool  # the subscription's first digest: the state of all that is open

    @property
    def days(self):
        """(first day, last day), both included, as compose() wants them."""
        return self.start.date(), (self.end - timedelta(microseconds=1)).date()


def _utc(moment: datetime | None) -> datetime:
    moment = moment or djtz.now()
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def period_end(kind: str, now: datetime) -> datetime:
    """Start of the period in progress = end of the last complete one."""
    midnight = _utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == DAILY:
        return midnight
    return midnight - timedelta(days=midnight.weekday())  # back to Monday


def _length(kind: str) -> timedelta:
    return timedelta(days=1 if kind == DAILY else 7)


def _last_digest(sub: Subscription) -> Digest | None:
    return sub.digests.order_by("-period_end").first()


def _is_first(sub: Subscription) -> bool:
    # A digest that failed for good reached nobody: the next one starts over.
    return not sub.digests.filter(state__in=(Digest.COMPOSED, Digest.SENT)).exists()


def due_period(sub: Subscription, now: datetime | None = None) -> Period | None:
    """The period to compose for `sub` now, or None when it is not due."""
    end = period_end(sub.period, _utc(now))
    last = _last_digest(sub)
    if last is not None and last.period_end >= end:
        return None
    start = last.period_end if last is not None else end - _length(sub.period)
    if _is_first(sub):
        # The first digest is the state as of now; the next one starts here,
        # so what arrives later is reported once, as new.
        return Period(start, _utc(now), True)
    return Period(start, end, False)


def preview_period(sub: Subscription, now: datetime | None = None) -> Period:
    """The due period, or else the one in progress (up to now)."""
    now = _utc(now)
    due = due_period(sub, now)
    if due is not None:
        return due
    last = _last_digest(sub)
    return Period(last.period_end, now, _is_first(sub))


# ---------------------------------------------------------------- filters

def _list_q(names: list[str], field: str) -> Q:
    """'linux-mm' matches the list stored as linux-mm, linux-mm@kvack.org or
    linux-mm.kvack.org (List-Id form)."""
    q = Q(pk__in=[])
    for name in names:
        name = name.strip().lower()
        if name:
            q |= (Q(**{f"{field}__iexact": name}) | Q(**{f"{field}__istartswith": name + "@"})
                  | Q(**{f"{field}__istartswith": name + "."}))
    return q


def matching(sub: Subscription):
    """Revisions the subscription's filter selects: any criterion matches
    (lists OR trees OR paths OR watched); no criterion at all: everything."""
    if not (sub.lists or sub.trees or sub.paths or sub.watched):
        return Revision.objects.all()
    q = Q(pk__in=[])
    if sub.lists:
        q |= Q(pk__in=Revision.objects.filter(_list_q(sub.lists, "mailing_list__name")).values("pk"))
        q |= Q(pk__in=Message.objects.filter(_list_q(sub.lists, "mailing_list__name"))
               .exclude(revision=None).values("revision"))
        # Every list a mail went to (Cc included): linux-mm is often only in Cc.
        in_cc = Q(pk__in=[])
        for name in sub.lists:
            if name.strip():
                in_cc |= Q(lists__icontains=f'"{name.strip().lower()}@') | \
                    Q(lists__icontains=f'"{name.strip().lower()}"') | Q(lists__icontains=f'"{name.strip().lower()}.')
        q |= Q(pk__in=Message.objects.filter(in_cc).exclude(revision=None).values("revision"))
    if sub.trees:
        q |= Q(pk__in=ApplyRun.objects.filter(tree__name__in=sub.trees).values("root"))
    if sub.paths:
        path_q = Q(pk__in=[])
        for prefix in sub.paths:
            if prefix.strip():
                path_q |= Q(path__startswith=prefix.strip()) | Q(old_path__startswith=prefix.strip())
        q |= Q(pk__in=PatchFile.objects.filter(path_q).values("patch__revision"))
    if sub.watched:
        # A watched series stays watched through its later revisions.
        watched = Revision.objects.filter(Q(msgid__in=sub.watched) | Q(anchor__in=sub.watched))
        q |= Q(series__in=watched.values("series"))
    return Revision.objects.filter(q)


def _newer(rev: Revision) -> Revision | None:
    """The newest revision of rev's series when it is newer than rev."""
    newest = rev.series.revisions.order_by(
        "-version", F("date").desc(nulls_last=True), "-id").first()
    if newest is None or newest.pk == rev.pk or newest.version < rev.version:
        return None
    if newest.version == rev.version and (newest.date is None or rev.date is None
                                          or newest.date <= rev.date):
        return None
    return newest


def open_revisions(qs):
    """Revisions not superseded by a newer one of their series, and not merged
    (every patch already on a registered tree's default branch)."""
    from .merged import merged_revision_ids
    current = [r for r in qs.select_related("series", "mailing_list") if _newer(r) is None]
    merged = merged_revision_ids(current)
    return [r for r in current if r.id not in merged]


# ---------------------------------------------------------------- items

def _seen(rev: Revision) -> datetime | None:
    """When we first learnt of the revision: its own mail's arrival here.
    Posting dates can be months old when a thread is fetched late."""
    return (Message.objects.filter(msgid=rev.msgid).values_list("received", flat=True).first()
            or rev.updated)


def _ref(rev: Revision) -> pure.RevisionRef:
    return pure.RevisionRef(subject=rev.title, version=rev.version, msgid=rev.msgid)


def _resolve(dep: Dependency) -> Revision | None:
    if dep.target_revision_id:
        return dep.target_revision
    if dep.target_type != "msgid":
        return None
    from ..selectors import resolve_msgids
    return resolve_msgids([dep.target]).get(dep.target)


def _chain_from_rows(rev: Revision) -> tuple[list[Revision], list[pure.MissingDependency]]:
    """Fallback while the graph service is absent: depends-on rows, deepest
    dependency first; unresolved targets are reported missing."""
    order: list[Revision] = []
    missing: list[pure.MissingDependency] = []
    seen = {rev.pk}
    seen_series = {rev.series_id}

    def visit(node: Revision, depth: int) -> None:
        if depth > max(1, settings.GRAPH_DEPTH):
            return
        for dep in node.dependencies.filter(kind=Dependency.DEPENDS_ON).order_by("id"):
            target = _resolve(dep)
            if target is None:
                if dep.target not in {m.msgid for m in missing}:
                    missing.append(pure.MissingDependency(
                        dep.target, dep.error or "not in the archive that was searched"))
                continue
            if target.pk in seen or target.series_id in seen_series:
                continue
            seen.add(target.pk)
            seen_series.add(target.series_id)
            visit(target, depth + 1)
            order.append(target)
    visit(rev, 1)
    return order, missing


def _graph_for():
    try:
        from .graph import graph_for
    except ImportError:
        return None
    return graph_for


def chain_of(rev: Revision) -> tuple[list[Revision], list[pure.MissingDependency]]:
    """(dependencies in apply order without rev itself, the missing ones)."""
    graph_for = _graph_for()
    if graph_for is None:
        return _chain_from_rows(rev)
    graph = graph_for(rev)
    from ..selectors import resolve_msgids
    order = [m for m in graph.get("order", []) if m != rev.msgid]
    found = resolve_msgids(order)
    chain = [found[m] for m in order if m in found and found[m].pk != rev.pk]
    missing = [pure.MissingDependency(n["msgid"], n.get("error") or "could not be fetched")
               for n in graph.get("nodes", []) if n.get("role") == "missing"]
    return chain, missing


def _stale(chain: list[Revision]) -> list[pure.StaleDependency]:
    out = []
    for dep in chain:
        newer = _newer(dep)
        if newer is not None:
            out.append(pure.StaleDependency(_ref(dep), newer_version=newer.version,
                                            newer_date=newer.date, newer_msgid=newer.msgid,
                                            newer_seen=_seen(newer)))
    return out


def _runs(rev: Revision, sub: Subscription):
    runs = ApplyRun.objects.filter(root=rev, status__in=APPLY_DONE)
    return runs.filter(tree__name__in=sub.trees) if sub.trees else runs


def _finished(qs, before: datetime):
    return (qs.filter(Q(finished__lt=before) | Q(finished=None, created__lt=before))
            .order_by("-finished", "-created", "-id").first())


def _failed_patch(run: ApplyRun) -> str | None:
    failed = run.failed or {}
    if isinstance(failed, dict):
        value = failed.get("subject") or failed.get("patch") or failed.get("msgid")
        return str(value) if value else None
    return None


def _apply(rev: Revision, sub: Subscription,
           period: Period) -> tuple[pure.ApplyState | None, ApplyRun | None]:
    runs = _runs(rev, sub)
    latest = _finished(runs, period.end)
    if latest is None:
        return None, None
    before = _finished(runs, period.start)
    changed = None
    was, now = before.status if before else None, latest.status
    if not period.first and latest != before:
        if now == ApplyRun.APPLIED and was != ApplyRun.APPLIED:
            changed = "started applying"
        elif now != ApplyRun.APPLIED and was == ApplyRun.APPLIED:
            changed = "stopped applying"
    applied = _finished(runs.filter(status=ApplyRun.APPLIED), period.end)
    info = pure.ApplyState(status=now, changed=changed, failed_patch=_failed_patch(latest),
                           finished=latest.finished or latest.created)
    return info, applied


def _suite(rev: Revision, sub: Subscription, period: Period) -> pure.SuiteState | None:
    runs = SuiteRun.objects.filter(apply_run__root=rev, status__in=SUITE_DONE)
    if sub.trees:
        runs = runs.filter(apply_run__tree__name__in=sub.trees)
    run = _finished(runs, period.end)
    if run is None:
        return None
    failed = [t.get("name") for t in run.tests or []
              if isinstance(t, dict) and t.get("result") not in ("ok", "pass", "skip", None)]
    return pure.SuiteState(status=run.status, failed_tests=tuple(f for f in failed if f),
                           finished=run.finished or run.created)


def _review_trailers(rev: Revision):
    trailers = Trailer.objects.filter(kind__in=REVIEW_KINDS).filter(
        Q(revision=rev) | Q(patch__revision=rev) | Q(message_id=rev.cover_id))
    # Authors sometimes carry their own tags along; they are not reviews.
    return trailers.exclude(email__iexact=rev.author_email) if rev.author_email else trailers


def _reviews(rev: Revision, until: datetime) -> pure.ReviewCounts:
    """Distinct people per tag: four Reviewed-by from one person on four
    patches is one reviewer."""
    people: dict[str, set] = {}
    for kind, email, name in (_review_trailers(rev).filter(message__received__lt=until)
                              .values_list("kind", "email", "name")):
        people.setdefault(kind, set()).add((email or name).lower())
    return pure.ReviewCounts.from_tags({kind: len(who) for kind, who in people.items()})


def _progress(rev: Revision, period) -> pure.ReviewProgress | None:
    """The stored review state (services/review.py), and what of it falls in the period."""
    state = ReviewState.objects.filter(revision=rev).only("state", "patches", "reviewed", "objections_open",
                                                          "data").first()
    if state is None:
        return None
    def within(value: str) -> bool:
        return bool(value) and _in(_moment(value), period)
    patches = state.data.get("patches", [])
    given = {(t["kind"], t["email"]) for p in patches for t in p["trailers"]
             if t["via"] != "own" and t["carried_from"] is None and within(t.get("date", ""))}
    objections = {o["msgid"] for p in patches for o in p["objections"] if o["open"] and within(o["date"])}
    objections |= {o["msgid"] for o in ((state.data.get("cover") or {}).get("objections") or [])
                   if o["open"] and within(o["date"])}
    stale = sum(1 for p in patches for t in p["trailers"] if t["stale"]) if _in(rev.date, period) else 0
    return pure.ReviewProgress(state=state.state, patches=state.patches, reviewed=state.reviewed,
                               objections_open=state.objections_open, new_trailers=len(given),
                               new_objections=len(objections), gone_stale=stale)


def _moment(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _in(moment: datetime | None, period: Period) -> bool:
    return moment is not None and period.start <= moment < period.end


def build_item(rev: Revision, sub: Subscription, period: Period) -> pure.DigestItem:
    """One revision as untangle.digest.compose wants it."""
    chain, missing = chain_of(rev)
    apply, applied_run = _apply(rev, sub, period)
    base = settings.BASE_URL.rstrip("/")
    return pure.DigestItem(
        subject=rev.title, version=rev.version, msgid=rev.msgid,
        author=rev.author_name or rev.author_email, date=rev.date,
        list=rev.mailing_list.name if rev.mailing_list_id else "",
        new_in_period=_in(_seen(rev), period) and not period.first,
        chain=tuple(_ref(d) for d in chain),
        apply=apply, suite=_suite(rev, sub, period), stale=tuple(_stale(chain)),
        missing=tuple(missing), reviews=_reviews(rev, period.end), progress=_progress(rev, period),
        url=f"{base}/s/{rev.pk}",
        partial=pure.PartialPosting(rev.received, rev.expected, rev.partial_root) if rev.partial_root else None,
        conflicts=_conflicts(rev, period),
        tree_url=f"{base}/tree/{applied_run.pk}/" if applied_run else None)


def _active(rev: Revision, item: pure.DigestItem, period: Period) -> bool:
    """Whether anything about the revision happened in a later digest's period:
    it arrived, reviews came in, its apply or suite finished or changed, or a
    dependency got a newer revision."""
    apply, suite = item.apply, item.suite
    reviews_moved = _review_trailers(rev).filter(message__received__gte=period.start,
                                                 message__received__lt=period.end).exists()
    return (item.new_in_period or reviews_moved or bool(apply and apply.changed)
            or bool(suite and _in(suite.finished, period))
            or bool(apply and _in(apply.finished, period))
            or any(_in(s.newer_seen, period) for s in item.stale))


def items_for(sub: Subscription, period: Period) -> list[pure.DigestItem]:
    """First digest: everything open that matches.  Later: the open matching
    revisions with activity in the period (new, apply or suite results,
    reviews, a dependency superseded)."""
    revs = [r for r in open_revisions(matching(sub)) if _seen(r) is None or _seen(r) < period.end]
    revs.sort(key=lambda r: (r.date or period.start, r.pk))
    if not period.first:
        # Chains are the costly part: only revisions that may have news get one.
        # Without any mail arriving in the period no dependency can go stale.
        arrivals = Message.objects.filter(received__gte=period.start, received__lt=period.end,
                                          kind__in=(Message.COVER, Message.PATCH)).exists()
        revs = [r for r in revs if arrivals or _maybe_active(r, sub, period)]
    if period.first:
        return [build_item(r, sub, period) for r in revs]
    items = [(r, build_item(r, sub, period)) for r in revs]
    return [item for r, item in items if _active(r, item, period)]


def _maybe_active(rev: Revision, sub: Subscription, period: Period) -> bool:
    """Cheap test for activity other than a dependency going stale."""
    runs = _runs(rev, sub).filter(finished__gte=period.start, finished__lt=period.end)
    suites = SuiteRun.objects.filter(apply_run__root=rev, finished__gte=period.start,
                                     finished__lt=period.end)
    return (_in(_seen(rev), period) or runs.exists() or suites.exists()
            or _review_trailers(rev).filter(message__received__gte=period.start,
                                            message__received__lt=period.end).exists())


# ---------------------------------------------------------------- compose

def _signer() -> signing.Signer:
    # No timestamp: the same subscription always gets the same link, so a
    # resent digest is byte-identical and old digests' links keep working.
    return signing.Signer(salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(sub: Subscription) -> str:
    return _signer().sign_object({"s": sub.pk, "a": sub.address}, compress=True)


def subscription_from_token(token: str) -> Subscription | None:
    """The subscription a signed token names, or None when it was tampered
    with or names a subscription (or address) that no longer exists."""
    try:
        data = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    return Subscription.objects.filter(pk=data.get("s"), address=data.get("a")).first()


def unsubscribe_url(sub: Subscription) -> str:
    return f"{settings.BASE_URL.rstrip('/')}/digests/unsubscribe/{unsubscribe_token(sub)}/"


def _subscription(sub: Subscription) -> pure.DigestSubscription:
    return pure.DigestSubscription(
        name=sub.name or sub.address.split("@")[0], address=sub.address, period=sub.period,
        lists=tuple(sub.lists or ()), paths=tuple(sub.paths or ()), unsubscribe_url=unsubscribe_url(sub))


def compose_text(sub: Subscription, period: Period, now: datetime | None = None) -> pure.ComposedDigest:
    """The digest of one period, nothing stored."""
    return pure.compose(_subscription(sub), items_for(sub, period), period.days, period.first,
                        settings.BASE_URL, _utc(now))


def _domain() -> str:
    address = parseaddr(settings.DIGEST_FROM)[1]
    return address.rpartition("@")[2] or "localhost"


def _previous_message_id(sub: Subscription, before: datetime) -> str:
    prev = (sub.digests.filter(state__in=(Digest.SENT, Digest.COMPOSED), period_start__lt=before)
            .order_by("-period_start").first())
    return prev.message_id if prev else ""


def compose_due(sub: Subscription, now: datetime | None = None) -> Digest | None:
    """Store the due digest of `sub` (state composed, or empty when there is
    nothing and DIGEST_SKIP_EMPTY).  None when not due or another worker
    composed it first."""
    now = _utc(now)
    period = due_period(sub, now)
    if period is None:
        return None
    text = compose_text(sub, period, now)
    skip = text.empty and settings.DIGEST_SKIP_EMPTY
    try:
        with transaction.atomic():
            return Digest.objects.create(
                subscription=sub, period_start=period.start, period_end=period.end,
                message_id=pure.make_message_id(sub.pk, period.start, _domain()),
                in_reply_to=_previous_message_id(sub, period.start),
                subject=text.subject, body=text.body,
                state=Digest.EMPTY if skip else Digest.COMPOSED)
    except IntegrityError:
        log.info("digest of subscription %s for %s composed elsewhere", sub.pk, period.start)
        return None


def compose_all_due(now: datetime | None = None) -> list[Digest]:
    out = []
    for sub in Subscription.objects.filter(active=True).order_by("pk"):
        digest = compose_due(sub, now)
        if digest is not None:
            out.append(digest)
    return out


# ---------------------------------------------------------------- send

def claim(digest_id: int, now: datetime | None = None) -> bool:
    """Take a composed digest for sending; True for exactly one claimant.

    The claim is a lease (services/leases.py) its sender renews while it talks to
    the server; a sender that died stops renewing it, and once it expired the next
    run (or the reaper) takes the digest over."""
    now = _utc(now)
    return Digest.objects.filter(leases.unleased_or_expired(), pk=digest_id, state=Digest.COMPOSED).update(
        sending_since=now, attempts=F("attempts") + 1, **leases.lease_fields()) == 1


def requeue(digest_id: int) -> None:
    """The reaper freed a digest whose sender died: send what is composed again."""
    from .. import dispatch
    dispatch.send_due_digests()  # sent after commit


def message_for(digest: Digest):
    sub = digest.subscription
    text = pure.ComposedDigest(digest.subject, digest.body, unsubscribe_url=unsubscribe_url(sub))
    # The Date is the period's close, not the wall clock: a resend is the same mail.
    return pure.build_message(text, settings.DIGEST_FROM, sub.address, digest.message_id,
                              digest.in_reply_to or None, digest.period_end,
                              one_click_unsubscribe=True)


def send_one(digest_id: int, now: datetime | None = None, smtp: dict | None = None) -> str:
    """Claim, send and record one digest.  Returns its state afterwards, or
    "busy" when another worker holds it."""
    now = _utc(now)
    if not claim(digest_id, now):
        return "busy"
    digest = Digest.objects.select_related("subscription").get(pk=digest_id)
    try:
        with leases.heartbeat(Digest, digest_id):
            pure.send(message_for(digest), smtp or settings.SMTP)
    except pure.SendError as exc:
        return _record_failure(digest, exc)
    # Right after the server's 250, before anything else: the duplicate window.
    Digest.objects.filter(pk=digest_id).update(state=Digest.SENT, sent=djtz.now(),
                                               sending_since=None, error="")
    log.info("digest %s sent to %s", digest.message_id, digest.subscription.address)
    return Digest.SENT


def _record_failure(digest: Digest, exc: pure.SendError) -> str:
    final = not exc.temporary or digest.attempts >= MAX_ATTEMPTS
    state = FAILED if final else Digest.COMPOSED
    Digest.objects.filter(pk=digest.pk).update(state=state, error=str(exc)[:2000], sending_since=None)
    log.warning("digest %s: %s (attempt %s, %s)", digest.message_id, exc, digest.attempts,
                "giving up" if final else "will retry")
    return state


def send_pending(now: datetime | None = None, smtp: dict | None = None) -> list[tuple[Digest, str]]:
    """Send every composed digest, oldest period first."""
    out = []
    for digest in (Digest.objects.filter(state=Digest.COMPOSED, subscription__active=True)
                   .order_by("period_start", "pk")):
        state = send_one(digest.pk, now, smtp)
        out.append((Digest.objects.get(pk=digest.pk), state))
    return out


def send_due(now: datetime | None = None, smtp: dict | None = None) -> list[tuple[Digest, str]]:
    """What beat runs hourly: compose what is due, then send what is composed
    (including digests left composed by a crash or a temporary refusal)."""
    compose_all_due(now)
    return send_pending(now, smtp)


# ---------------------------------------------------------------- preview, subscriptions

def preview(sub: Subscription, now: datetime | None = None) -> dict:
    """The next digest as it would go out now: a composed, unsent one is sent
    as stored; otherwise it is composed for the due (or running) period."""
    pending = sub.digests.filter(state=Digest.COMPOSED).order_by("period_start").first()
    if pending is not None:
        return {"subject": pending.subject, "body": pending.body, "stored": True,
                "message_id": pending.message_id, "empty": False}
    period = preview_period(sub, now)
    text = compose_text(sub, period, now)
    return {**text.to_json(), "stored": False,
            "message_id": pure.make_message_id(sub.pk, period.start, _domain())}


def clean_prefixes(values) -> list[str]:
    return [v.strip() for v in values or [] if v and v.strip()]


def subscribe(address: str, period: str = WEEKLY, lists=(), paths=(), trees=(), watched=(),
              name: str = "") -> Subscription:
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    if "@" not in parseaddr(address)[1]:
        raise ValueError(f"{address!r} is not a mail address")
    lists = clean_prefixes(lists)
    if not name:
        name = lists[0].split("@")[0] if lists else address.split("@")[0]
    return Subscription.objects.create(address=address.strip(), name=name, period=period,
                                       lists=lists, paths=clean_prefixes(paths),
                                       trees=clean_prefixes(trees), watched=clean_prefixes(watched))


def _conflicts(rev: Revision, period: Period) -> tuple:
    """The open series rev does not merge with, each marked new when first seen in the period."""
    from ..models import InflightConflict
    from django.db.models import Q
    notes = []
    for c in InflightConflict.objects.filter(Q(a=rev) | Q(b=rev)).select_related("a", "b").order_by("id")[:20]:
        other = c.b if c.a_id == rev.id else c.a
        notes.append(pure.ConflictNote(other.title, other.version, other.msgid,
                                       tuple(f["path"] for f in c.files), c.hunk_count,
                                       new_in_period=_in(c.first_seen, period)))
    return tuple(notes)
