"""Review state of revisions: computed from stored mail (untangle.review, untangle.replies)
and the MAINTAINERS of a tree (untangle.maintainers), stored as ReviewState rows with
ReviewPerson rows for the reviewer queues. The worker runs it when mail arrives
(after the graphs); pages and the API only read what it stored.

Batches read each kind of row once for all their revisions (patches, mails, own
trailers, files, previous and next revisions), so a whole archive costs a few
queries per hundred revisions.
"""
from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from untangle import gitrepo, grouping, maintainers as mt, replies as rp, review as rv, subject as subjects

from ..models import (ApplyRun, Message, Patch, PatchFile, Revision, ReviewPerson, ReviewQueueEntry,
                      ReviewState, Trailer, Tree)
from . import trees
from .ingest.bulk import chunked, insert_rows

log = logging.getLogger("reviewapp.review")

REVIEWED, PARTLY, OBJECTIONS, COMMENTED, WAITING = (
    "reviewed", "partly-reviewed", "objections", "commented", "waiting")
MAX_REPLIES = 2000  # mails of one revision read for its review; the rest are counted, not read


@dataclass
class _Inputs:
    """What one revision's review is computed from (read in bulk for a batch)."""
    rev: Revision
    patches: list[Patch] = field(default_factory=list)
    mails: list[rv.ThreadMail] = field(default_factory=list)
    own: dict[int, list[Trailer]] = field(default_factory=dict)  # patch message id -> its own trailers
    files: dict[int, list[str]] = field(default_factory=dict)  # patch id -> paths (old and new)
    previous: dict | None = None  # the previous revision's stored data
    next_sides: list[rv.PatchSide] | None = None  # the next revision's patches, when there is one
    truncated: int = 0


# ---------------------------------------------------------------- MAINTAINERS of a tree

_MAINTAINERS: "OrderedDict[tuple, mt.Maintainers]" = OrderedDict()


class _Trees:
    """Which tree's MAINTAINERS says who reviews a revision, read once for a batch: the
    tree asked for, else the one its latest applied chain went onto, else the tree named
    after its list, else REVIEWAPP_REVIEW_TREE."""

    def __init__(self, revs: list[Revision], tree: Tree | None) -> None:
        self.tree = tree
        self.ready = {t.name: t for t in Tree.objects.filter(state=Tree.State.READY)} if tree is None else {}
        self.runs: dict[int, ApplyRun] = {}
        self._heads: dict[int, tuple] = {}
        if tree is None and self.ready:
            for run in (ApplyRun.objects.filter(root_id__in=[r.id for r in revs], status=ApplyRun.APPLIED)
                        .select_related("tree").order_by("created", "id")):
                self.runs[run.root_id] = run  # the latest wins

    def of(self, rev: Revision) -> tuple[Tree | None, str]:
        if self.tree is not None:
            return self._head(self.tree)
        run = self.runs.get(rev.id)
        if run is not None and run.tree.state == Tree.State.READY and run.base:
            return run.tree, run.base
        names = [rev.mailing_list.name] if rev.mailing_list_id else []
        names += [settings.REVIEW_TREE] if settings.REVIEW_TREE else []
        found = next((self.ready[n] for n in names if n in self.ready), None)
        return self._head(found) if found is not None else (None, "")

    def _head(self, tree: Tree) -> tuple[Tree | None, str]:
        if tree.id not in self._heads:
            self._heads[tree.id] = _tree_head(tree)
        return self._heads[tree.id]


def _tree_head(tree: Tree) -> tuple[Tree | None, str]:
    if tree.state != Tree.State.READY:
        return None, ""
    try:
        repo = trees.ensure_mirror(tree)  # this host's copy (a cache)
    except trees.TreeError:
        return None, ""
    head = next((h for b in (tree.branches or []) if (h := gitrepo.resolve(repo, b))), None)
    return tree, head or gitrepo.resolve(repo, "HEAD") or ""


def maintainers_of(tree: Tree, commit: str) -> mt.Maintainers | None:
    """The parsed MAINTAINERS at commit (kept per blob: parsing 6.1's takes ~0.5 s)."""
    repo = trees.mirror_of(tree)
    blob = gitrepo.blob_id(repo, commit, "MAINTAINERS")
    if blob is None:
        return None
    mailmap = gitrepo.blob_id(repo, commit, ".mailmap")
    key = (str(repo), blob, mailmap)
    if key not in _MAINTAINERS:
        text = gitrepo.read_file(repo, commit, "MAINTAINERS").decode("utf-8", "replace")
        mm = mt.Mailmap(gitrepo.read_file(repo, commit, ".mailmap").decode("utf-8", "replace")) if mailmap else None
        _MAINTAINERS[key] = mt.Maintainers(text, mm, gitrepo.directories(repo, commit))
        while len(_MAINTAINERS) > 4:
            _MAINTAINERS.popitem(last=False)
    _MAINTAINERS.move_to_end(key)
    return _MAINTAINERS[key]


def _file_text(tree: Tree, commit: str):
    def read(path: str) -> str | None:
        try:
            return gitrepo.read_file(trees.mirror_of(tree), commit, path)[:1 << 20].decode("utf-8", "replace")
        except (FileNotFoundError, KeyError):
            return None
    return read


# ---------------------------------------------------------------- reading a batch

def _load(revs: list[Revision]) -> list[_Inputs]:
    inputs = {r.id: _Inputs(r) for r in revs}
    ids = list(inputs)
    for part in chunked(ids):
        # Diffs and mail bodies are what weighs; only MAINTAINERS' K: patterns read them (_fill_diffs).
        for p in (Patch.objects.filter(revision_id__in=part).select_related("message")
                  .defer("diff", "commit_message", "message__body", "message__tags", "message__references",
                         "message__lists").order_by("number", "id")):
            inputs[p.revision_id].patches.append(p)
    patch_mids = {p.message_id: p for i in inputs.values() for p in i.patches}
    for part in chunked(list(patch_mids)):
        for t in Trailer.objects.filter(message_id__in=part).order_by("id"):
            inputs[patch_mids[t.message_id].revision_id].own.setdefault(t.message_id, []).append(t)
    by_patch = {p.id: p for p in patch_mids.values()}
    for part in chunked(list(by_patch)):
        for pid, path, old in PatchFile.objects.filter(patch_id__in=part).values_list("patch_id", "path", "old_path"):
            paths = inputs[by_patch[pid].revision_id].files.setdefault(pid, [])
            paths += [x for x in (old, path) if x and x != "/dev/null" and x not in paths]
    _load_mails(inputs)
    _load_neighbours(inputs)
    return list(inputs.values())


_MAIL_FIELDS = ("revision_id", "msgid", "in_reply_to", "references", "kind", "from_name", "from_email",
                "date", "body", "subject")


def _load_mails(inputs: dict[int, _Inputs]) -> None:
    for part in chunked(list(inputs)):
        rows = Message.objects.filter(revision_id__in=part).order_by("date", "id").values_list(*_MAIL_FIELDS)
        for rid, msgid, irt, refs, kind, name, email, date, body, subject in rows.iterator():
            i = inputs[rid]
            if len(i.mails) >= MAX_REPLIES:
                i.truncated += 1
                continue
            i.mails.append(rv.ThreadMail(msgid=msgid, in_reply_to=irt, references=tuple(refs or ()), kind=kind,
                                         from_name=name, from_email=email, date=date,
                                         body=body[:rv.MAX_BODY], subject=subject))


def _load_neighbours(inputs: dict[int, _Inputs]) -> None:
    prev_ids = {i.rev.previous_id for i in inputs.values() if i.rev.previous_id}
    stored = dict(ReviewState.objects.filter(revision_id__in=list(prev_ids)).values_list("revision_id", "data"))
    nexts: dict[int, int] = {}
    for rid, prev in (Revision.objects.live().filter(previous_id__in=list(inputs))
                      .order_by("version", "date", "id").values_list("id", "previous_id")):
        nexts.setdefault(prev, rid)
    next_patches: dict[int, list[rv.PatchSide]] = defaultdict(list)
    for part in chunked(list(set(nexts.values()))):
        for rid, mid, number, subject, pid in (Patch.objects.filter(revision_id__in=part)
                                               .values_list("revision_id", "message__msgid", "number", "subject", "patch_id")):
            next_patches[rid].append(rv.PatchSide(mid, number, _title(subject), pid))
    for i in inputs.values():
        i.previous = stored.get(i.rev.previous_id)
        if i.rev.id in nexts:
            i.next_sides = next_patches.get(nexts[i.rev.id], [])


def _title(subject: str) -> str:
    return subjects.parse(subject).title if subject else ""


# ---------------------------------------------------------------- computing one

def compute(i: _Inputs, maint: mt.Maintainers | None, file_text=None, tree_name: str = "") -> dict:
    rev = i.rev
    by_msgid = {m.msgid: m for m in i.mails}
    cover_msgid = rev.cover.msgid if rev.cover_id and rev.cover else None
    parsed = {m.msgid: rv.followup_trailers(m.body) for m in i.mails if m.is_reply}
    given = rv.attribute(i.mails, parsed=parsed)
    cover_trailers = [_as_cover(t) for t in given.get(cover_msgid, [])] if cover_msgid else []
    sides = [rv.PatchSide(p.message.msgid, p.number, _title(p.subject), p.patch_id,
                          rv.dedup(given.get(p.message.msgid, []))) for p in i.patches]
    carried = _carried(i, sides)
    owners = _owners(i.mails, by_msgid)
    verdicts = _verdicts(i, owners, parsed)
    later_trailers = _trailer_givers(given)
    next_pairs = rv.counterparts(sides, i.next_sides) if i.next_sides is not None else {}
    changed_next = {old.msgid: not same for _new, (old, same) in next_pairs.items()}
    patches = []
    for p, side in zip(i.patches, sides):
        own = [_own(t, p) for t in i.own.get(p.message_id, []) if t.kind in rv.REVIEW_KINDS + ("Nacked-by",)]
        trailers = rv.dedup(own + side.trailers + cover_trailers + carried.get(side.msgid, []))
        comments = _comments(verdicts.get(side.msgid, []), i.mails, rev, p, changed_next.get(side.msgid),
                             i.next_sides is not None)
        objections = _objections(verdicts.get(side.msgid, []), i.next_sides is not None, later_trailers)
        expected = _expected(maint, i.files.get(p.id, []), p, file_text, trailers, comments)
        patches.append({"msgid": side.msgid, "number": p.number, "title": side.title,
                        "patch_id": p.patch_id, "trailers": [_trailer_json(t) for t in trailers],
                        "comments": comments, "objections": objections, "expected": expected})
    cover = {"msgid": cover_msgid, "trailers": [_trailer_json(t) for t in rv.dedup(cover_trailers)],
             "comments": _comments(verdicts.get(cover_msgid, []), i.mails, rev, None, None, False),
             "objections": _objections(verdicts.get(cover_msgid, []), i.next_sides is not None,
                                       later_trailers)} if cover_msgid else None
    data = {"msgid": rev.msgid, "version": rev.version, "tree": tree_name, "cover": cover,
            "patches": patches, "mails_not_read": i.truncated}
    data["summary"] = summarize(data)
    data["state"] = data["summary"]["state"]
    return data


def _as_cover(t: rv.Given) -> rv.Given:
    return rv.Given(**{**t.to_json(), "via": "cover"})


def _own(t: Trailer, p: Patch) -> rv.Given:
    return rv.Given(kind=t.kind, name=t.name, email=t.email, value=t.value, from_msgid=p.message.msgid,
                    date=p.date.isoformat() if p.date else "", via="own")


def _trailer_json(t: rv.Given) -> dict:
    return {k: v for k, v in t.to_json().items() if k != "value"}  # the stored shape keeps no raw value


def _carried(i: _Inputs, sides: list[rv.PatchSide]) -> dict[str, list[rv.Given]]:
    prev = i.previous
    if not prev:
        return {}
    old_sides = []
    for p in prev.get("patches", []):
        given = [rv.Given.from_json(t) for t in p["trailers"] if t["via"] != "own" and t["kind"] in rv.REVIEW_KINDS]
        # Trailers the previous revision carried keep counting; its cover's reach every patch.
        old_sides.append(rv.PatchSide(p["msgid"], p["number"], p.get("title", ""), p.get("patch_id"),
                                      [t for t in given if t.via != "cover" or t.carried_from is not None]))
    cover = [rv.Given.from_json(t, via="cover", carried_from=None, stale=False)
             for t in ((prev.get("cover") or {}).get("trailers") or []) if t["kind"] in rv.REVIEW_KINDS]
    return rv.carried(old_sides, prev.get("version") or max(i.rev.version - 1, 1), cover, sides)


def _owners(mails: list[rv.ThreadMail], by_msgid: dict) -> dict[str, str]:
    """reply msgid -> the patch or cover it is about: ingest's own walk (grouping.owner_of_reply),
    which is how the reply came to be this revision's."""
    rows = {m.msgid: {"msgid": m.msgid, "kind": m.kind, "in_reply_to": m.in_reply_to,
                      "references": list(m.references)} for m in by_msgid.values()}
    out = {}
    for m in mails:
        if m.is_reply and (owner := grouping.owner_of_reply(rows[m.msgid], rows.get, _is_root)) is not None:
            out[m.msgid] = owner["msgid"]
    return out


def _is_root(row: dict) -> bool:
    return not row["in_reply_to"] and not row["references"]


def _verdicts(i: _Inputs, owners: dict[str, str], parsed: dict) -> dict[str, list[tuple[rv.ThreadMail, rp.Verdict]]]:
    author = {p.message.msgid: (p.author_email or i.rev.author_email) for p in i.patches}
    out: dict[str, list] = defaultdict(list)
    for m in i.mails:
        owner = owners.get(m.msgid)
        if owner is None:
            continue
        v = rp.classify(m.body, m.from_email, author.get(owner, i.rev.author_email), parsed.get(m.msgid))
        out[owner].append((m, v))
    return out


def _trailer_givers(given: dict[str, list[rv.Given]]) -> dict[str, str]:
    """email -> the date of the latest review trailer that person gave in this revision's thread."""
    out: dict[str, str] = {}
    for ts in given.values():
        for t in ts:
            if t.kind in rv.REVIEW_KINDS and t.email:
                out[t.email] = max(out.get(t.email, ""), t.date)
    return out


def _comments(verdicts, mails, rev: Revision, patch: Patch | None, changed_next, has_next) -> list[dict]:
    people: dict[str, dict] = {}
    for m, v in verdicts:
        if v.kind != rp.COMMENT:
            continue
        who = people.setdefault(m.from_email.lower(), {"name": m.from_name, "email": m.from_email.lower(),
                                                      "mails": 0, "msgids": [], "reason": v.reason})
        who["mails"] += 1
        who["msgids"].append(m.msgid)
    authors = {(rev.author_email or "").lower(), ((patch.author_email if patch else "") or "").lower()} - {""}
    for who in people.values():
        asked = set(who["msgids"])
        who["answered"] = any(m.in_reply_to in asked and m.from_email.lower() in authors for m in mails)
        who["changed_in_next"] = changed_next if has_next else None
    return list(people.values())


def _objections(verdicts, has_next: bool, later_trailers: dict[str, str]) -> list[dict]:
    out = []
    for m, v in verdicts:
        if v.kind != rp.OBJECTION:
            continue
        date = m.date.isoformat() if m.date else ""
        answered_by_trailer = later_trailers.get(m.from_email.lower(), "") > date
        closed = "a later revision exists" if has_next else (
            "the reporter gave a review trailer since" if answered_by_trailer else "")
        out.append({"msgid": m.msgid, "name": m.from_name, "email": m.from_email.lower(), "date": date,
                    "reason": v.reason, "open": not closed, "closed_because": closed})
    return out


def _expected(maint, paths, p: Patch, file_text, trailers, comments) -> list[dict]:
    if maint is None or not paths:
        return []
    spoken = {t.email for t in trailers if t.via != "own"} | {c["email"] for c in comments}
    found = maint.expected(paths, lambda: mt.patch_keyword_lines(p.diff, p.commit_message), file_text)
    return [{"name": e.name, "email": e.email, "role": e.role, "section": e.section,
             "spoken": e.email.lower() in spoken} for e in found]


def summarize(data: dict) -> dict:
    patches = data["patches"]
    n = len(patches)
    fresh = [p for p in patches if any(t["kind"] in ("Reviewed-by", "Acked-by") and not t["stale"]
                                       for t in p["trailers"])]
    carried = sum(1 for p in patches for t in p["trailers"] if t["carried_from"] is not None and not t["stale"])
    stale_only = [p for p in patches if p not in fresh and any(t["stale"] for t in p["trailers"])]
    objections = [o for p in patches for o in p["objections"]]
    objections += [o for o in ((data.get("cover") or {}).get("objections") or [])]
    open_objections = {o["msgid"]: o for o in objections if o["open"]}
    commenters = sorted({c["email"] for p in patches for c in p["comments"]} |
                        {c["email"] for c in ((data.get("cover") or {}).get("comments") or [])})
    waiting = sorted({e["email"] for p in patches for e in p["expected"] if not e["spoken"] and e["role"] != mt.LIST})
    if open_objections:
        state = OBJECTIONS
    elif n and len(fresh) == n:
        state = REVIEWED
    elif fresh:
        state = PARTLY
    elif commenters:
        state = COMMENTED
    else:
        state = WAITING
    return {"state": state, "patches": n, "reviewed": len(fresh), "carried": carried, "stale": len(stale_only),
            "objections_open": len(open_objections), "objections": list(open_objections.values()),
            "commenters": commenters, "waiting_on": waiting}


# ---------------------------------------------------------------- storing

def recompute(revision_ids, tree: Tree | None = None) -> list[int]:
    """Review state of these revisions and of their next revisions (what they carry
    may change), oldest version first so a revision finds its previous one stored."""
    ids = set(revision_ids)
    # The next revisions carry what these give; the previous ones stop being the open one.
    ids |= set(Revision.objects.filter(previous_id__in=list(ids)).values_list("id", flat=True))
    ids |= set(Revision.objects.filter(id__in=list(ids), previous__isnull=False).values_list("previous_id", flat=True))
    revs = list(Revision.objects.live().filter(id__in=list(ids)).select_related("cover", "mailing_list")
                .order_by("version", "date", "id"))
    done = []
    for version in sorted({r.version for r in revs}):
        batch = [r for r in revs if r.version == version]
        for part in chunked(batch, 200):
            done += _store_batch(part, tree)
    return done


def open_ids(revs: list[Revision]) -> set[int]:
    """The revisions that are the newest of their series and not merged into a tree."""
    newest: dict[int, tuple] = {}
    for sid, rid, version, date in (Revision.objects.live().filter(series_id__in={r.series_id for r in revs})
                                    .values_list("series_id", "id", "version", "date")):
        key = (version, date.isoformat() if date else "", rid)
        if sid not in newest or key > newest[sid]:
            newest[sid] = key
    latest = {r.id for r in revs if newest.get(r.series_id, (0, "", None))[2] == r.id}
    from .merged import merged_revision_ids
    return latest - merged_revision_ids([r for r in revs if r.id in latest])


def _store_batch(revs: list[Revision], tree: Tree | None) -> list[int]:
    inputs = _load(revs)
    opened = open_ids(revs)
    trees = _Trees(revs, tree)
    found = [(i, *_maintainers(trees, i.rev)) for i in inputs]
    _fill_diffs([p for i, maint, _t, _c in found if maint is not None for p in i.patches])
    states, people = [], []
    for i, maint, t, commit in found:
        data = compute(i, maint, _file_text(t, commit) if maint else None, t.name if maint else "")
        s = data["summary"]
        states.append({"revision_id": i.rev.id, "state": s["state"], "patches": s["patches"],
                       "reviewed": s["reviewed"], "stale": s["stale"], "objections_open": s["objections_open"],
                       "tree": data["tree"], "data": data, "open": i.rev.id in opened,
                       "waiting_since": i.rev.date, "series_id": i.rev.series_id, "version": i.rev.version,
                       "mailing_list_id": i.rev.mailing_list_id, "files": _files_column(i)})
        people += _people(i.rev, data)
    with transaction.atomic():
        ids = [r.id for r in revs]
        ReviewState.objects.filter(revision_id__in=ids).delete()
        ReviewPerson.objects.filter(revision_id__in=ids).delete()
        ReviewQueueEntry.objects.filter(revision_id__in=ids).delete()
        copy = connection.vendor == "postgresql"  # COPY: bulk_create's arrays of big JSON cost seconds
        insert_rows(ReviewState, states, copy)
        insert_rows(ReviewPerson, people, copy)
        # After this batch's people are stored: an open revision's earlier reviewers are read back.
        insert_rows(ReviewQueueEntry, _queue_entries([i for i in inputs if i.rev.id in opened], people), copy)
    return [r.id for r in revs]


def _queue_entries(inputs: list[_Inputs], people: list[dict]) -> list[dict]:
    """The reviewer queues' rows of the open revisions among these (ReviewQueueEntry)."""
    earlier = _earlier_reviewers([i.rev for i in inputs])
    roles: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for p in people:
        roles[p["revision_id"]][p["email"]].add(p["role"])
    rows = []
    for i in inputs:
        rev = i.rev

        def row(kind, key, role_names=""):
            rows.append({"revision_id": rev.id, "kind": kind, "key": key[:300], "waiting_since": rev.date,
                         "roles": role_names[:60]})
        here = roles.get(rev.id, {})
        before = earlier.get((rev.series_id, rev.version), set())
        for email in sorted(set(here) | before):
            row(ReviewQueueEntry.PERSON, email, ",".join(sorted(here.get(email, ()))))
            if email in before and ReviewPerson.REVIEWED not in here.get(email, ()):
                row(ReviewQueueEntry.NEW, email)
        paths = {path for paths in i.files.values() for path in paths}
        for key in rv.path_keys(paths, ReviewQueueEntry.PATH_KEYS_KEPT):
            row(ReviewQueueEntry.PATH, key)
        if rev.mailing_list_id:
            row(ReviewQueueEntry.LIST, str(rev.mailing_list_id))
    # Keys cut to the column's width may meet: keep the first of each.
    seen, unique = set(), []
    for r in rows:
        if (r["revision_id"], r["kind"], r["key"]) not in seen:
            seen.add((r["revision_id"], r["kind"], r["key"]))
            unique.append(r)
    return unique


def _earlier_reviewers(revs: list[Revision]) -> dict[tuple[int, int], set[str]]:
    """(series, version) -> who reviewed an earlier revision of that series."""
    found: dict[tuple[int, int], set[str]] = defaultdict(set)
    versions: dict[int, set[int]] = defaultdict(set)
    for r in revs:
        versions[r.series_id].add(r.version)
    for part in chunked(sorted(versions)):
        for sid, version, email in (ReviewPerson.objects.filter(series_id__in=part, role=ReviewPerson.REVIEWED)
                                    .values_list("series_id", "version", "email")):
            for v in versions[sid]:
                if version < v:
                    found[(sid, v)].add(email)
    return found


def _files_column(i: _Inputs) -> str:
    paths = sorted({path for paths in i.files.values() for path in paths})[:ReviewState.FILES_KEPT]
    return "".join("\n" + p for p in paths)


def _maintainers(trees: "_Trees", rev: Revision) -> tuple[mt.Maintainers | None, Tree | None, str]:
    t, commit = trees.of(rev)
    if t is None or not commit:
        return None, None, ""
    try:
        return maintainers_of(t, commit), t, commit
    except (KeyError, ValueError, OSError) as exc:
        log.warning("MAINTAINERS of %s at %s unreadable: %s", t.name, commit, exc)
        return None, None, ""


def _fill_diffs(patches: list[Patch]) -> None:
    by_id = {p.id: p for p in patches}
    for part in chunked(list(by_id)):
        for pid, diff, message in Patch.objects.filter(id__in=part).values_list("id", "diff", "commit_message"):
            by_id[pid].diff, by_id[pid].commit_message = diff, message


def _people(rev: Revision, data: dict) -> list[dict]:
    seen: dict[tuple[str, str], dict] = {}

    def add(email, name, role):
        email = (email or "").lower()[:300]
        if email and (email, role) not in seen:
            seen[(email, role)] = {"revision_id": rev.id, "series_id": rev.series_id, "version": rev.version,
                                   "email": email, "role": role, "name": (name or "")[:300]}
    for p in data["patches"]:
        for t in p["trailers"]:
            # Reviewed this revision: a trailer given on it (carried ones were given on another).
            if t["via"] != "own" and t["kind"] in rv.REVIEW_KINDS and t["carried_from"] is None:
                add(t["email"], t["name"], ReviewPerson.REVIEWED)
        for c in p["comments"]:
            add(c["email"], c["name"], ReviewPerson.COMMENTED)
        for e in p["expected"]:
            if e["role"] != mt.LIST:
                add(e["email"], e["name"], ReviewPerson.EXPECTED)
    for c in ((data.get("cover") or {}).get("comments") or []):
        add(c["email"], c["name"], ReviewPerson.COMMENTED)
    return list(seen.values())


def recompute_missing(limit: int = 500) -> list[int]:
    """Beat's sweep: review state for revisions that have none (a send lost to a broker outage)."""
    ids = list(Revision.objects.live().filter(review__isnull=True).order_by("id").values_list("id", flat=True)[:limit])
    return recompute(ids) if ids else []
