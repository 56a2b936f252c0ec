"""The dependency graph of one revision: what it is built on, with evidence.

graph_for(rev) gathers edges from the stored Dependency rows (covers,
replies), the formal tags inside its patches and the blob ids of its diffs,
maps every target to a revision (a patch's msgid means its whole revision;
change-id:vN, prerequisite-patch-id and Supersedes: too), follows depends-on
targets transitively (fetching what is not stored when asked), adds the newer
revisions of every member, and lets untangle.graph compute the apply order and
the problems. Every result is kept as a GraphSnapshot with what changed since
the previous one, so the page can say what new mail changed and when.

Output (the `graph --json` contract, plus extra keys):
  {"root", "nodes": [{"msgid", "subject", "version", "complete", "state", "newer", "role", ...}],
   "edges": [{"from", "to", "kind", "how", "evidence", "evidence_msgid", "used", ...}],
   "order", "newest_order", "problems": [{"kind", "detail", ...}],
   "unneeded": [{"msgid", "reason", "other", "link", "files", "shared"}] (untangle.graph.NotNeeded;
   reviewapp.wording words it), "ignored",
   "fetched", "snapshot": {"id", "computed", "changes"}}
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.db.models.functions import Substr

from untangle import deps, graph as g, lore

from ..models import Dependency, GraphSnapshot, Message, Patch, PatchFile, Revision, Series
from . import fetch as fetch_service
from .ingest.bulk import chunked
from ..selectors import resolve_msgids

log = logging.getLogger("reviewapp.graph")

# Roles shown on the page, most important first (a node keeps the first it gets).
ROLES = ("root", "dependency", "missing", "replaced", "newer", "previous", "related",
         "dependent", "mentioned", "base")
_CONTRACT_PROBLEMS = {"cycle", "missing", "superseded", "incomplete", "conflicting-base"}


# ---------------------------------------------------------------- batch memo
#
# A batch of graphs computed from stored mail only (recompute_affected,
# compute_missing) asks the same questions about the same revisions again and
# again: a family's members, their files, edges and newer revisions show up in
# every graph of the family. Inside a batch each answer is read once; nothing
# a graph reads changes while the batch runs (graphs only write snapshots), and
# a fetching graph never uses the memo.
_MEMO: contextvars.ContextVar[dict | None] = contextvars.ContextVar("graph_memo", default=None)


@contextlib.contextmanager
def _batch():
    token = _MEMO.set({}) if _MEMO.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _MEMO.reset(token)


def _memo(key: tuple, compute, fetching: bool = False):
    """compute() once per batch for key (a deep copy each time: callers may mutate it)."""
    memo = _MEMO.get()
    if memo is None or fetching:
        return compute()
    if key not in memo:
        memo[key] = compute()
    value = memo[key]
    return value if isinstance(value, (Revision, type(None), bool)) else g.copied(value)


class GraphError(Exception):
    """The chain cannot be built from what is stored (a dependency is missing)."""


@dataclass
class CollectedNode(g.Node):
    """A graph node as collected from the database: what untangle.graph needs, and more."""
    kind: str = "revision"  # revision | missing | base
    role: str = "mentioned"  # one of ROLES, the most important it got
    author: str = ""
    expected: int | None = None
    received: int | None = None
    revision_id: int | None = None
    target_type: str = "msgid"
    ref: str | None = None  # base: the ref it was named by


@dataclass
class GraphNode:
    """A node of the stored graph (the `graph --json` contract)."""
    msgid: str
    subject: str
    version: int | None
    complete: bool
    state: str  # ok | missing | superseded | incomplete
    newer: str | None
    newest: str | None
    role: str
    kind: str
    label: str
    date: str
    error: str
    author: str
    base: str | None
    received: int | None
    expected: int | None
    files: list[str]
    ref: str | None = None
    partial_root: str | None = None  # reached this list in part: the absent cover (thread root)


@dataclass
class Ignored:
    edge: g.Edge
    reason: str

    def to_json(self) -> dict:
        e = self.edge
        return {"from": e.source, "kind": e.kind, "referred": e.referred, "evidence": e.evidence,
                "reason": self.reason}


@dataclass
class _Collector:
    root: Revision
    fetch: bool
    nodes: dict[str, CollectedNode] = field(default_factory=dict)
    revs: dict[str, Revision] = field(default_factory=dict)
    edges: list[g.Edge] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    fetched: dict[str, str | None] = field(default_factory=dict)  # target -> error or None
    expanded: set[int] = field(default_factory=set)
    supersede_newer: dict[str, str] = field(default_factory=dict)

    # -- nodes -------------------------------------------------------------

    def add_revision(self, rev: Revision, role: str) -> bool:
        """Add a revision node; False if it was there already (its role may rise)."""
        if rev.msgid in self.nodes:
            self._raise_role(rev.msgid, role)
            return False
        self.revs[rev.msgid] = rev
        self.nodes[rev.msgid] = _revision_node(rev, role)
        return True

    def add_missing(self, target: str, role: str, error: str, target_type: str) -> None:
        if target in self.nodes:
            self._raise_role(target, role)
            return
        self.nodes[target] = CollectedNode(target, subject=target, complete=False, missing=True, error=error,
                                           kind="missing", target_type=target_type, role=role)

    def add_base(self, target: str, ref: str | None) -> None:
        if target not in self.nodes:
            self.nodes[target] = CollectedNode(target, subject=target, kind="base", ref=ref or "sha", role="base")

    def _raise_role(self, msgid: str, role: str) -> None:
        node = self.nodes[msgid]
        if ROLES.index(role) < ROLES.index(node.role):
            node.role = role

    def has_edge(self, a: str, b: str) -> bool:
        return any({e.source, e.target} == {a, b} for e in self.edges)


def _revision_node(rev: Revision, role: str) -> CollectedNode:
    files = _memo(("files", rev.id), lambda: sorted(set(
        PatchFile.objects.filter(patch__revision=rev).values_list("path", flat=True))))
    return CollectedNode(rev.msgid, subject=rev.title, version=rev.version, complete=rev.complete,
                         series=str(rev.series_id), date=rev.date.isoformat() if rev.date else "",
                         files=files or None, base=rev.base_commit, missing_patches=list(rev.missing),
                         expected=rev.expected, received=rev.received, author=rev.author,
                         revision_id=rev.id, role=role, partial_root=rev.partial_root)


# ---------------------------------------------------------------- edges of one revision

def _stored_edges(rev: Revision) -> list[dict]:
    """Dependency rows (cover and replies) plus tags written inside the patches."""
    return _memo(("stored-edges", rev.id), lambda: _read_stored_edges(rev))


def _read_stored_edges(rev: Revision) -> list[dict]:
    return _edges_from(Dependency.objects.filter(source=rev).order_by("id"),
                       Message.objects.filter(revision=rev, kind=Message.PATCH).order_by("number")
                       .values_list("msgid", "body"))


def _edges_from(rows, patches) -> list[dict]:
    """The stored edges of one revision from its Dependency rows (by id) and its patches (by number)."""
    out = [{"kind": d.kind, "target": d.target, "target_type": d.target_type, "how": d.how,
            "evidence": d.evidence, "evidence_msgid": d.evidence_msgid, "version": d.version,
            "extra": dict(d.extra or {})}
           for d in rows]
    # Ingest reads the cover (or first patch); Based-on:/Depends-on: may sit in any patch.
    # Only formal tags are taken from patches: their prose links are mostly "Link:" context.
    seen = {(e["kind"], e["target"]) for e in out}
    for msgid, body in patches:
        for e in deps.discover_text_edges(msgid, body):
            if e.how == "tag" and (e.kind, e.target) not in seen:
                seen.add((e.kind, e.target))
                out.append({"kind": e.kind, "target": e.target, "target_type": e.target_type,
                            "how": "tag", "evidence": e.evidence, "evidence_msgid": e.source_msgid,
                            "version": e.version, "extra": dict(e.extra)})
    return out


_BLOB_FIELDS = ("path", "old_blob", "new_blob", "patch__message__msgid")


def _blob_edges(rev: Revision) -> list[dict]:
    """Depends-on edges proved by pre-image blobs that another revision produces."""
    return _memo(("blob-edges", rev.id), lambda: _read_blob_edges(rev))


def _read_blob_edges(rev: Revision) -> list[dict]:
    # Only the columns the edges need: a patch's diff and its mail are as big as the
    # patch, and select_related would load them once per file (7.4 GB for one mail
    # changing 5,000 files).
    own = list(PatchFile.objects.filter(patch__revision=rev).select_related("patch__message")
               .only(*_BLOB_FIELDS).order_by("id"))
    olds = _old_prefixes(own)
    if not olds:
        return []
    cond = Q()
    for prefix in olds:  # a range, not a LIKE: served by the index on SQLite too
        cond |= Q(new_blob__gte=prefix, new_blob__lt=prefix + "g")
    producers = (PatchFile.objects.filter(cond).exclude(patch__revision=rev)
                 .exclude(patch__revision=None).exclude(patch__revision__series=rev.series_id)
                 .select_related("patch__message", "patch__revision")
                 .only(*_BLOB_FIELDS, "patch__revision__msgid").order_by("id"))
    return _blob_edges_from(rev, own, producers)


def _old_prefixes(own: list[PatchFile]) -> set[str]:
    return {f.old_blob.lower()[:7] for f in own if f.old_blob and f.old_blob.strip("0")}


def _blob_edges_from(rev: Revision, own: list[PatchFile], producers) -> list[dict]:
    """Blob edges of rev from its own files and the files of other series producing its pre-images."""
    by_rev: dict[str, dict] = {}
    for f in producers:
        r = f.patch.revision
        entry = by_rev.setdefault(r.msgid, {"msgid": r.msgid, "patches": {}})
        entry["patches"].setdefault(f.patch.message.msgid, []).append(
            {"path": f.path, "old": f.old_blob, "new": f.new_blob})
    target = {"msgid": rev.msgid, "patches": _patches_dict(own)}
    revisions = [target] + [{"msgid": m, "patches": [{"msgid": p, "files": fs} for p, fs in v["patches"].items()]}
                            for m, v in by_rev.items()]
    return [{"kind": e.kind, "target": e.target, "target_type": "msgid", "how": "blob",
             "evidence": e.evidence, "evidence_msgid": e.source_msgid, "version": None,
             "extra": dict(e.extra)} for e in deps.discover_blob_edges(revisions, rev.msgid)]


# What blob edges read of a file (not the patch's diff nor the mail's body).
_FILE_FIELDS = ("path", "old_blob", "new_blob", "patch__revision", "patch__message__msgid")


def _preload_blob_edges(memo: dict, revs: list[Revision]) -> None:
    """Blob edges of a chunk: its files, then every file producing one of their pre-images, in two queries."""
    own: dict[int, list[PatchFile]] = {r.id: [] for r in revs}
    for f in (PatchFile.objects.filter(patch__revision__in=list(own)).select_related("patch__message")
              .only(*_FILE_FIELDS).order_by("id")):
        own[f.patch.revision_id].append(f)
    olds = {r.id: _old_prefixes(own[r.id]) for r in revs}
    full = {r.id for r in revs if all(len(p) == 7 for p in olds[r.id])}  # shorter: read alone
    wanted = set().union(*(olds[i] for i in full))
    producers: dict[str, list[PatchFile]] = {}
    if wanted:
        for f in (PatchFile.objects.annotate(prefix=Substr("new_blob", 1, 7)).filter(prefix__in=wanted)
                  .exclude(patch__revision=None).select_related("patch__message", "patch__revision")
                  .only(*_FILE_FIELDS, "patch__revision__msgid", "patch__revision__series").order_by("id")):
            producers.setdefault(f.prefix, []).append(f)
    for r in revs:
        if r.id not in full:
            continue
        mine = [f for p in olds[r.id] for f in producers.get(p, [])
                if f.patch.revision_id != r.id and f.patch.revision.series_id != r.series_id]
        mine.sort(key=lambda f: f.id)
        memo[("blob-edges", r.id)] = _blob_edges_from(r, own[r.id], mine) if olds[r.id] else []


def _patches_dict(files: list[PatchFile]) -> list[dict]:
    patches: dict[str, list[dict]] = {}
    for f in files:
        patches.setdefault(f.patch.message.msgid, []).append(
            {"path": f.path, "old": f.old_blob, "new": f.new_blob})
    return [{"msgid": m, "files": fs} for m, fs in patches.items()]


def _settle_ambiguous(edges: list[dict]) -> None:
    """An ambiguous blob picks the candidate the author already named as a dependency."""
    named = {e["target"] for e in edges if e["kind"] == "depends-on" and e["how"] != "blob"}
    for e in edges:
        amb = e["extra"].get("ambiguous")
        if e["how"] == "blob" and amb and e["kind"] == "related" and e["target"] in named:
            e["kind"] = "depends-on"
            e["evidence"] += "; the author names this one as a dependency"


# ---------------------------------------------------------------- resolution

def _fetch(c: _Collector, target: str) -> str | None:
    """Fetch a thread once per graph; the error text, or None when it worked."""
    if target not in c.fetched:
        try:
            fetch_service.fetch_thread(target)
            c.fetched[target] = None
        except lore.FetchError as exc:
            c.fetched[target] = str(exc)
        except ValueError as exc:  # not a usable message-id
            c.fetched[target] = str(exc)
        if c.fetched[target] is None:
            _fetch_thread_root(c, target)
    return c.fetched[target]


def _fetch_thread_root(c: _Collector, msgid: str) -> None:
    """A link to patch 4 brings only patch 4 and its replies: fetch the posting it hangs from."""
    row = Message.objects.filter(msgid=msgid).values("references", "in_reply_to").first()
    if not row:
        return
    root = (row["references"] or [None])[0] or row["in_reply_to"]
    if root and root not in c.fetched and not Message.objects.filter(msgid=root).exists():
        _fetch(c, root)


def _by_change_id(change_id: str, version: int | None) -> Revision | None:
    """The revision (vN, else the newest) of the series b4's change-id names. Two index
    reads, not one OR across the series join, which neither database serves by index."""
    series = list(Series.objects.filter(change_id=change_id).values_list("id", flat=True)[:50])
    qs = Revision.objects.filter(Q(change_id=change_id) | Q(series_id__in=series)) if series else \
        Revision.objects.filter(change_id=change_id)
    qs = qs.live()
    if version is not None:
        return qs.filter(version=version).order_by("-date", "-id").first()
    return qs.order_by("-version", "-date", "-id").first()


_HEX = re.compile(r"[0-9a-f]+")


def _by_patch_id(patch_id: str) -> Revision | None:
    """The newest stored revision with a patch of this patch-id. Stored ids are full (40
    lowercase hex); a shortened one is a range of them. Both are index ranges on either
    database: a LIKE 'abc%' is not (SQLite's LIKE ignores case, so it scans every patch)."""
    wanted = patch_id.strip().lower()[:40]
    if not _HEX.fullmatch(wanted) or len(wanted) < 7:
        return None
    found = Patch.objects.filter(patch_id=wanted) if len(wanted) == 40 else \
        Patch.objects.filter(patch_id__gte=wanted, patch_id__lt=wanted + "g")  # "g": after every hex digit
    patch = found.exclude(revision=None).select_related("revision").order_by("-date", "-id").first()
    return patch.revision if patch else None


def _resolve(c: _Collector, e: dict, may_fetch: bool) -> tuple[Revision | None, str]:
    """The revision an edge points at, or (None, why it is missing)."""
    ttype, target = e["target_type"], e["target"]
    if ttype == "change-id":
        rev = _memo(("change-id", target, e.get("version")), lambda: _by_change_id(target, e.get("version")))
        return rev, "" if rev else (f"no revision with change-id {target}"
                                    + (f" v{e['version']}" if e.get("version") else "") + " is stored"
                                    + ("; lore cannot be searched by change-id" if may_fetch else ""))
    if ttype == "patch-id":
        rev = _memo(("patch-id", target), lambda: _by_patch_id(target), may_fetch)
        if rev or not may_fetch:
            return rev, "" if rev else f"no stored patch has patch-id {target[:12]}"
        try:
            found = lore.search_patchid(target, settings.LORE_URL, limits=fetch_service.limits())
        except (lore.FetchError, ValueError) as exc:
            return None, f"searching patch-id {target[:12]} failed: {exc}"
        for mid in found[:3]:
            _fetch(c, mid)
        rev = _by_patch_id(target)
        return rev, "" if rev else f"no patch with patch-id {target[:12]} in {settings.LORE_URL}"
    rev = _memo(("msgid", target), lambda: resolve_msgids([target]).get(target), may_fetch)
    if rev or not may_fetch:
        return rev, "" if rev else "not stored (run with --fetch to get it)"
    error = _fetch(c, target)
    rev = resolve_msgids([target]).get(target)
    if rev is None and error is None:
        error = "fetched, but the thread has no patch or cover letter for it"
    return rev, "" if rev else error


def _target_key(e: dict) -> str:
    if e["target_type"] == "change-id" and e.get("version"):
        return f"{e['target']}:v{e['version']}"
    return e["target"]


_ROLE_OF_KIND = {"depends-on": "dependency", "previous-revision": "previous", "supersedes": "previous",
                 "related": "related"}


def _expand(c: _Collector, rev: Revision, may_fetch: bool, full: bool) -> list[Revision]:
    """Add the edges of one revision; return the new depends-on targets to expand next.

    full (the root): every reference becomes a node, missing ones too. For the
    dependencies only what shapes the chain does (depends-on, supersedes,
    bases); their mentions are drawn when the target is stored, so a deep
    chain does not drown in links to old postings.
    """
    c.expanded.add(rev.id)
    raw = _stored_edges(rev)
    raw += _blob_edges(rev)
    _settle_ambiguous(raw)
    nxt = []
    for e in raw:
        edge = g.Edge(rev.msgid, "", kind=e["kind"], how=e["how"], evidence=e["evidence"],
                      evidence_msgid=e["evidence_msgid"], target_type=e["target_type"],
                      version=e.get("version"), extra=e["extra"], referred=_target_key(e))
        if e["target_type"] == "commit":
            c.add_base(e["target"], e["extra"].get("ref"))
            c.edges.append(replace(edge, target=e["target"]))
            continue
        role = _ROLE_OF_KIND.get(e["kind"], "mentioned")
        chain_edge = e["kind"] in ("depends-on", "supersedes")
        target, why = _resolve(c, e, may_fetch and (full or chain_edge))
        if target is None and not (full or chain_edge):
            continue
        if target is not None and target.id == rev.id:
            c.ignored.append(Ignored(replace(edge, target=rev.msgid), "it names the revision itself"))
            continue
        if target is None:
            key = _target_key(e)
            c.add_missing(key, role if e["kind"] == "depends-on" else "mentioned", why, e["target_type"])
            c.edges.append(replace(edge, target=key))
            continue
        new = c.add_revision(target, role)
        c.edges.append(replace(edge, target=target.msgid))
        if e["kind"] == "supersedes":
            c.supersede_newer.setdefault(target.msgid, rev.msgid)
        if e["kind"] == "depends-on" and (new or target.id not in c.expanded):
            nxt.append(target)
    return nxt


# ---------------------------------------------------------------- newer revisions and neighbours

def _newer_of(rev: Revision) -> Revision | None:
    """Next revision: stated by Supersedes: (anyone's), else the family's next version."""
    return _memo(("newer", rev.id), lambda: _read_newer_of(rev))


def _read_newer_of(rev: Revision) -> Revision | None:
    names = [rev.msgid, rev.anchor] + _memo(("msgids", rev.id),
                                            lambda: list(rev.messages.values_list("msgid", flat=True)))
    stated = (Dependency.objects.filter(kind=Dependency.SUPERSEDES, target__in=names)
              .exclude(source=rev).exclude(source__msgid__startswith=Revision.STALE_PREFIX)
              .select_related("source").order_by("source__date").first())
    if stated is not None:
        return stated.source
    nexts = list(rev.next_revisions.live().order_by("version", "date"))
    if nexts:
        return nexts[0]
    later = (Revision.objects.filter(series_id=rev.series_id, version__gt=rev.version)
             .live().order_by("version", "date").first())
    return later


def _first_by_date(revs: list[Revision], *keys: str) -> Revision | None:
    """The first of revs ordered by keys then date (nulls last, as PostgreSQL orders them)."""
    if not revs:
        return None
    return min(revs, key=lambda r: tuple(getattr(r, k) for k in keys)
               + (r.date is None, r.date.timestamp() if r.date else 0))


_PRELOAD_CHUNK = 1000


def _preload(revs: list[Revision]) -> None:
    """Fill the batch memo for these revisions in a few queries per chunk.

    Files, stored edges and the next revision of each: what every graph of the
    batch would otherwise read one revision at a time.
    """
    memo = _MEMO.get()
    if memo is None:
        return
    for start in range(0, len(revs), _PRELOAD_CHUNK):
        _preload_chunk(memo, revs[start:start + _PRELOAD_CHUNK])


def _preload_chunk(memo: dict, revs: list[Revision]) -> None:
    ids = [r.id for r in revs]
    files: dict[int, set[str]] = {i: set() for i in ids}
    for rid, path in PatchFile.objects.filter(patch__revision__in=ids).values_list("patch__revision_id", "path"):
        files[rid].add(path)
    rows: dict[int, list[Dependency]] = {i: [] for i in ids}
    for d in Dependency.objects.filter(source__in=ids).order_by("id"):
        rows[d.source_id].append(d)
    patches: dict[int, list[tuple]] = {i: [] for i in ids}
    msgids: dict[int, list[str]] = {i: [] for i in ids}
    for rid, msgid in Message.objects.filter(revision__in=ids).values_list("revision_id", "msgid"):
        msgids[rid].append(msgid)
    for rid, msgid, body in (Message.objects.filter(revision__in=ids, kind=Message.PATCH)
                             .values_list("revision_id", "msgid", "body").order_by("number").iterator()):
        patches[rid].append((msgid, body))
    names = {r.id: {r.msgid, r.anchor, *msgids[r.id]} for r in revs}
    _preload_newer(memo, revs, names)
    _preload_blob_edges(memo, revs)
    owner = {m: r.id for r in revs for m in names[r.id]}
    dependents: dict[int, list[Dependency]] = {r.id: [] for r in revs}
    for part in chunked(sorted(owner)):
        for d in _dependents_query(part):
            dependents[owner[d.target]].append(d)
    for r in revs:
        memo[("dependents", r.id)] = dependents[r.id]
        memo[("deps", r.id)] = rows[r.id]
        memo[("files", r.id)] = sorted(files[r.id])
        memo[("stored-edges", r.id)] = _edges_from(rows[r.id], patches.pop(r.id))
        memo[("msgids", r.id)] = msgids[r.id]
    _preload_patch_ids(memo, [e["target"] for r in revs for e in memo[("stored-edges", r.id)]
                              if e["target_type"] == "patch-id"])


def _preload_newer(memo: dict, revs: list[Revision], names: dict[int, set[str]]) -> None:
    """The next revision of each (as _read_newer_of finds it), in three queries."""
    stated: dict[str, list[Revision]] = {}
    for part in chunked(sorted(set().union(*names.values()))):
        for d in (Dependency.objects.filter(kind=Dependency.SUPERSEDES, target__in=part)
                  .exclude(source__msgid__startswith=Revision.STALE_PREFIX).select_related("source")):
            stated.setdefault(d.target, []).append(d.source)
    nexts: dict[int, list[Revision]] = {}
    for n in Revision.objects.filter(previous_id__in=[r.id for r in revs]).live():
        nexts.setdefault(n.previous_id, []).append(n)
    family: dict[int, list[Revision]] = {}
    for f in Revision.objects.filter(series_id__in={r.series_id for r in revs}).live():
        family.setdefault(f.series_id, []).append(f)
    for r in revs:
        claimed = {s.id: s for m in names[r.id] for s in stated.get(m, []) if s.id != r.id}
        memo[("newer", r.id)] = (
            _first_by_date(list(claimed.values())) or _first_by_date(nexts.get(r.id, []), "version")
            or _first_by_date([f for f in family.get(r.series_id, []) if f.version > r.version], "version"))


def _newer_of_all(revs: list[Revision]) -> None:
    """Before a graph asks each of its revisions for the next one: those the batch has not
    read yet, read together."""
    memo = _MEMO.get()
    if memo is None:
        return
    todo = [r for r in revs if ("newer", r.id) not in memo]
    if len(todo) < 2:
        return
    msgids: dict[int, list[str]] = {r.id: [] for r in todo}
    for rid, msgid in Message.objects.filter(revision__in=[r.id for r in todo]).values_list("revision_id", "msgid"):
        msgids[rid].append(msgid)
    for r in todo:
        memo.setdefault(("msgids", r.id), msgids[r.id])
    _preload_newer(memo, todo, {r.id: {r.msgid, r.anchor, *msgids[r.id]} for r in todo})


def _preload_patch_ids(memo: dict, targets: list[str]) -> None:
    """The revisions that full patch-ids name (b4's prerequisite-patch-id), one query a chunk."""
    wanted = {t for t in targets if len(t) == 40 and _HEX.fullmatch(t) and ("patch-id", t) not in memo}
    found: dict[str, Revision] = {}
    for part in chunked(sorted(wanted)):
        for p in (Patch.objects.filter(patch_id__in=part).exclude(revision=None).select_related("revision")
                  .order_by("-date", "-id")):
            found.setdefault(p.patch_id, p.revision)
    for t in wanted:
        memo[("patch-id", t)] = found.get(t)


def _add_newer(c: _Collector) -> list[g.Edge]:
    """Every revision node learns its next revision; the newest ones join the graph.

    Returns the family edges (newer -> older) to draw where no mail states one;
    the caller adds them after the stored edges, which win.
    """
    family: list[g.Edge] = []
    todo = [m for m, n in c.nodes.items() if n.kind == "revision"]
    _newer_of_all([c.revs[m] for m in todo if m not in c.supersede_newer and m in c.revs])
    while todo:
        msgid = todo.pop()
        rev = c.revs[msgid]
        newer = c.revs.get(c.supersede_newer.get(msgid, "")) or _newer_of(rev)
        if newer is None or newer.id == rev.id:
            continue
        c.nodes[msgid].newer = newer.msgid
        if c.add_revision(newer, "newer"):
            todo.append(newer.msgid)
        family.append(_family_edge(rev, newer))
    prev = c.root.previous
    if prev is not None and prev.msgid not in c.nodes:
        c.add_revision(prev, "previous")
        c.nodes[prev.msgid].newer = c.root.msgid
        family.append(_family_edge(prev, c.root))
    return family


def _family_edge(old: Revision, newer: Revision) -> g.Edge:
    same = bool(old.change_id and old.change_id == newer.change_id)
    how = "tag" if same else "reply" if _replies_to(newer, old) else "prose"
    return g.Edge(newer.msgid, old.msgid, kind="previous-revision", how=how,
                  evidence=_family_evidence(old, newer, same), evidence_msgid=newer.msgid,
                  version=old.version, extra={"inferred": True}, referred=old.msgid)


def _dependency_edge(d: Dependency, source: str, target: str) -> g.Edge:
    return g.Edge(source, target, kind=d.kind, how=d.how, evidence=d.evidence, evidence_msgid=d.evidence_msgid,
                  version=d.version, extra=dict(d.extra or {}), referred=d.target)


def _replies_to(newer: Revision, old: Revision) -> bool:
    return _memo(("replies-to", newer.id, old.id), lambda: _read_replies_to(newer, old))


def _read_replies_to(newer: Revision, old: Revision) -> bool:
    first = Message.objects.filter(msgid=newer.anchor).values_list("in_reply_to", flat=True).first()
    return bool(first) and Message.objects.filter(msgid=first, revision=old).exists()


def _family_evidence(old: Revision, newer: Revision, same_change_id: bool) -> str:
    if same_change_id:
        return f"change-id: {old.change_id} (same on v{old.version} and v{newer.version})"
    return (f"same series: \"{newer.title}\" v{newer.version} by {newer.author_email} "
            f"follows v{old.version} (posted {newer.date:%Y-%m-%d})" if newer.date else
            f"same series: v{newer.version} follows v{old.version}")


def _add_dependents(c: _Collector) -> None:
    """Revisions that point at the root or its dependencies: the in-flight neighbours."""
    members = [c.revs[m] for m, n in c.nodes.items()
               if n.kind == "revision" and n.role in ("root", "dependency")]
    if not members:
        return
    names = {m: r for r in members for m in [r.msgid, r.anchor]}
    for r in members:
        for msgid in _memo(("msgids", r.id), lambda r=r: list(r.messages.values_list("msgid", flat=True))):
            names[msgid] = r
    family = {r.series_id for r in members}
    ids = {r.id for r in members}
    found: dict[int, Dependency] = {}
    for r in members:
        for d in _dependents_of(r, [m for m, owner in names.items() if owner is r]):
            if d.source_id not in ids and d.source.series_id not in family and d.target in names:
                found[d.id] = d
    for d in sorted(found.values(), key=lambda d: d.id):
        target = names[d.target]
        c.add_revision(d.source, "dependent" if d.kind == "depends-on" else "mentioned")
        c.edges.append(_dependency_edge(d, d.source.msgid, target.msgid))


def _dependents_query(targets):
    return (Dependency.objects.filter(target__in=list(targets), target_type="msgid")
            .exclude(source__msgid__startswith=Revision.STALE_PREFIX).select_related("source"))


def _dependents_of(rev: Revision, names: list[str]) -> list[Dependency]:
    """Stored edges that name one of rev's mails (read once per batch: _preload_chunk).
    Shared, not copied: callers only read them."""
    memo = _MEMO.get()
    if memo is not None and ("dependents", rev.id) in memo:
        return memo[("dependents", rev.id)]
    rows = list(_dependents_query(names))
    if memo is not None:
        memo[("dependents", rev.id)] = rows
    return rows


def _connect_known(c: _Collector) -> None:
    """Edges between revisions already drawn (e.g. v8 -> v7 "Changes since"), no new nodes."""
    expanded = {r.msgid for r in c.revs.values() if r.id in c.expanded}
    others = [r for m, r in c.revs.items() if m not in expanded]
    if not others:
        return
    drawn = {(e.source, e.target, e.kind) for e in c.edges}
    sources = {r.id: r.msgid for r in others}
    rows = [d for d in _dependency_rows(others) if d.target_type == "msgid"]
    targets = _resolve_many([d.target for d in rows])
    for d in rows:
        t = targets.get(d.target)
        source = sources[d.source_id]
        if t is None or t.msgid not in c.nodes or t.id == d.source_id:
            continue
        if (source, t.msgid, d.kind) in drawn or c.has_edge(source, t.msgid):
            continue
        drawn.add((source, t.msgid, d.kind))
        c.edges.append(_dependency_edge(d, source, t.msgid))


def _dependency_rows(revs: list[Revision]) -> list[Dependency]:
    """The Dependency rows these revisions are the source of, by id (kept for the batch; read-only)."""
    memo = _MEMO.get()
    if memo is None:
        return list(Dependency.objects.filter(source__in=revs).order_by("id"))
    unknown = [r.id for r in revs if ("deps", r.id) not in memo]
    if unknown:
        got: dict[int, list[Dependency]] = {i: [] for i in unknown}
        for d in Dependency.objects.filter(source__in=unknown).order_by("id"):
            got[d.source_id].append(d)
        memo.update({("deps", i): rows for i, rows in got.items()})
    return sorted((d for r in revs for d in memo[("deps", r.id)]), key=lambda d: d.id)


def _resolve_many(msgids: list[str]) -> dict[str, Revision]:
    """resolve_msgids, with the batch's answers kept (None for a msgid no revision has)."""
    memo = _MEMO.get()
    if memo is None:
        return resolve_msgids(msgids)
    unknown = [m for m in set(msgids) if ("msgid", m) not in memo]
    found = resolve_msgids(unknown) if unknown else {}
    memo.update({("msgid", m): found.get(m) for m in unknown})
    return {m: memo[("msgid", m)] for m in set(msgids) if memo[("msgid", m)] is not None}


# ---------------------------------------------------------------- assembling

def _collect(rev: Revision, fetch: bool, depth: int) -> _Collector:
    c = _Collector(root=rev, fetch=fetch)
    c.add_revision(rev, "root")
    frontier, level = [rev], 0
    while frontier and level <= depth:
        nxt: list[Revision] = []
        for r in frontier:
            if r.id not in c.expanded:
                nxt += _expand(c, r, fetch and level < depth, full=r.id == rev.id)
        frontier, level = nxt, level + 1
    family = _add_newer(c)
    _add_dependents(c)
    _connect_known(c)
    for e in family:  # only where no mail links the two revisions already
        if not c.has_edge(e.source, e.target):
            c.edges.append(e)
    return c


def _root_last(root: str, built: g.Graph, nodes: dict[str, CollectedNode]) -> None:
    """In a cycle through the root, the edge into the root is the one ignored.

    The reviewer asked for the root's chain: whatever claims to need the root
    cannot come after it, so the root stays last (the contract's promise).
    """
    order = built.order
    if not order or order[-1] == root or root not in order:
        return
    order.remove(root)
    order.append(root)
    chain = set(order)
    for e in built.edges:
        if e.kind != "depends-on" or e.source not in chain or e.source == e.target:
            continue
        into_root = (e.redirected_to or e.target) == root
        if e.broken_cycle and not into_root:
            e.broken_cycle, e.used = False, True
        elif into_root:
            e.broken_cycle, e.used = True, False
    cycle_problems = [p for p in built.problems if p.kind == g.ProblemKind.CYCLE.value]
    for p, cycle in zip(cycle_problems, built.cycles):
        into = next((e for e in cycle if e.target == root), None)
        if into is None:
            continue
        path = " -> ".join([g.label(e.source, nodes) for e in cycle] + [g.label(cycle[-1].target, nodes)])
        p.detail = (f"dependency cycle {path}; ignored '{g.label(into.source, nodes)} depends on "
                    f"{g.label(root, nodes)}' ({into.how}) so that {g.label(root, nodes)}, "
                    "the series asked about, comes last")


def _state(node: CollectedNode) -> str:
    if node.kind == "base":
        return "ok"
    if node.missing:
        return "missing"
    if node.newer:
        return "superseded"
    return "ok" if node.complete else "incomplete"


def _problems(built: g.Graph) -> list[dict]:
    out = []
    for p in built.problems:
        if p.kind not in _CONTRACT_PROBLEMS:  # "two-revisions" is a kind of superseded
            p = replace(p, subkind=p.kind, kind=g.ProblemKind.SUPERSEDED.value)
        out.append(p.to_json())
    return out


def _graph_node(m: str, built: g.Graph, c: _Collector, order: list[str]) -> GraphNode:
    mine = c.nodes[m]
    built_role = built.roles[m]
    role = built_role if built_role in ("root", "dependency", "missing", "replaced") else mine.role
    if role == "missing" and m not in order and mine.role != "dependency":
        role = mine.role
    return GraphNode(msgid=m, subject=mine.subject, version=mine.version, complete=bool(mine.complete),
                     state=_state(mine), newer=mine.newer, newest=built.newest.get(m), role=role,
                     kind=mine.kind, label=g.label(m, c.nodes) if mine.kind == "revision" else m,
                     date=mine.date or "", error=mine.error, author=mine.author, base=mine.base,
                     received=mine.received, expected=mine.expected, files=mine.files or [],
                     ref=mine.ref if mine.kind == "base" else None,
                     partial_root=mine.partial_root if mine.kind == "revision" else None)


_EDGE_FIELDS = ("from", "to", "kind", "how", "evidence", "evidence_msgid", "target_type", "referred",
                "version", "used", "broken_cycle", "extra")


def _assemble(c: _Collector) -> dict:
    root = c.root.msgid
    built = g.build(root, c.nodes, c.edges)
    _root_last(root, built, c.nodes)
    order = built.order
    newest = g.newest_chain(built, c.nodes)
    candidates = [m for m, n in c.nodes.items()
                  if n.kind == "revision" and m not in order and n.role in ("related", "dependent", "mentioned")
                  and n.series != c.nodes[root].series]
    nodes = [g.plain(_graph_node(m, built, c, order)) for m in sorted(c.nodes)]
    edges = [{k: v for k, v in e.to_json().items() if k in _EDGE_FIELDS} for e in built.edges]
    return {"root": root, "nodes": nodes, "edges": edges, "order": order,
            "newest_order": newest if newest != order else order,
            "newest_differs": newest != order,
            "problems": _problems(built), "cycles": [[e.to_json() for e in cycle] for cycle in built.cycles],
            "unneeded": [n.to_json() for n in g.not_needed(root, c.nodes, c.edges, candidates, order)],
            "ignored": [i.to_json() for i in c.ignored],
            "fetched": [{"msgid": m, "error": err} for m, err in c.fetched.items()]}


# ---------------------------------------------------------------- snapshots

def _edge_key(e: dict) -> tuple:
    return (e["from"], e["to"], e["kind"], e["how"])


def _changes(old: dict | None, new: dict) -> list[dict]:
    """What differs between two graphs, in plain words (empty for the first one)."""
    if old is None:
        return []
    names = {n["msgid"]: n["label"] for n in old["nodes"]}
    names.update({n["msgid"]: n["label"] for n in new["nodes"]})
    out = []
    old_nodes = {n["msgid"]: n for n in old["nodes"]}
    new_nodes = {n["msgid"]: n for n in new["nodes"]}
    for m in sorted(set(new_nodes) - set(old_nodes)):
        out.append({"what": "node-added", "msgid": m, "detail": f"{names[m]} appeared ({new_nodes[m]['role']})"})
    for m in sorted(set(old_nodes) - set(new_nodes)):
        out.append({"what": "node-removed", "msgid": m, "detail": f"{names[m]} is no longer in the graph"})
    for m in sorted(set(old_nodes) & set(new_nodes)):
        a, b = old_nodes[m], new_nodes[m]
        if b.get("newer") and b.get("newer") != a.get("newer"):
            out.append({"what": "newer", "msgid": m, "newer": b["newer"],
                        "detail": f"a newer revision of {names[m]} appeared: {names.get(b['newer'], b['newer'])}"})
        if a["state"] != b["state"]:
            out.append({"what": "state", "msgid": m,
                        "detail": f"{names[m]} went from {a['state']} to {b['state']}"})
    old_edges = {_edge_key(e): e for e in old["edges"]}
    new_edges = {_edge_key(e): e for e in new["edges"]}
    for k in sorted(set(new_edges) - set(old_edges)):
        e = new_edges[k]
        out.append({"what": "edge-added", "edge": list(k), "evidence_msgid": e["evidence_msgid"],
                    "detail": f"{names.get(k[0], k[0])} {k[2]} {names.get(k[1], k[1])} ({k[3]}): "
                              f"{e['evidence'].splitlines()[0] if e['evidence'] else ''}"})
    for k in sorted(set(old_edges) - set(new_edges)):
        out.append({"what": "edge-removed", "edge": list(k),
                    "detail": f"{names.get(k[0], k[0])} {k[2]} {names.get(k[1], k[1])} ({k[3]}) is gone"})
    if old["order"] != new["order"]:
        out.append({"what": "order", "detail": "apply order is now: "
                    + " -> ".join(names.get(m, m) for m in new["order"])})
    return out


def _comparable(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("snapshot", "fetched")}


def _store(rev: Revision, data: dict) -> GraphSnapshot:
    """A new snapshot when the graph differs from the last one, else the last one."""
    # Inside a chunk's transaction (_graphs_in_chunks) no savepoint: two round trips saved a
    # graph, and an error ends the chunk anyway.
    with transaction.atomic(savepoint=False):
        last = GraphSnapshot.objects.select_for_update().filter(root=rev).order_by("-computed", "-id").first()
        if last is not None and _comparable(last.data) == _comparable(data):
            return last
        return GraphSnapshot.objects.create(root=rev, data=_comparable(data),
                                            changes=_changes(last.data if last else None, data))


# ---------------------------------------------------------------- public API

def graph_for(rev: Revision, fetch: bool = False, depth: int | None = None) -> dict:
    """The graph of ``rev`` (see the module docstring), stored as a snapshot."""
    depth = settings.GRAPH_DEPTH if depth is None else depth
    if fetch:  # fetched mail changes what the memo knows: read everything afresh
        token = _MEMO.set(None)
        try:
            c = _collect(rev, fetch, depth)
        finally:
            _MEMO.reset(token)
    else:
        c = _collect(rev, fetch, depth)
    data = _assemble(c)
    snap = _store(rev, data)
    data["snapshot"] = {"id": snap.id, "computed": snap.computed.isoformat(), "changes": snap.changes}
    return data


def chain_for(rev: Revision, newest: bool = False) -> list[Revision]:
    """Revisions to apply, dependencies first and ``rev`` last.

    newest=True replaces every dependency by its newest stored revision.
    Raises GraphError when a dependency is not stored.
    """
    data = graph_for(rev)
    missing = [n for n in data["nodes"] if n["role"] == "missing"]
    if missing:
        raise GraphError("; ".join(p["detail"] for p in data["problems"] if p["kind"] == "missing")
                         or f"missing dependencies: {', '.join(n['msgid'] for n in missing)}")
    order = data["newest_order"] if newest else data["order"]
    found = {r.msgid: r for r in Revision.objects.filter(msgid__in=order)}
    lost = [m for m in order if m not in found]
    if lost:
        raise GraphError(f"revisions vanished while building the chain: {', '.join(lost)}")
    return [found[m] for m in order]


def latest_snapshot(rev: Revision) -> GraphSnapshot | None:
    return GraphSnapshot.objects.filter(root=rev).order_by("-computed", "-id").first()


def affected_roots(revision_ids) -> list[int]:
    """Roots whose last graph includes these revisions, their families or what they name."""
    revs = list(Revision.objects.filter(id__in=list(revision_ids)))
    if not revs:
        return []
    names = {r.msgid for r in revs}
    names |= set(Revision.objects.filter(series_id__in={r.series_id for r in revs}).values_list("msgid", flat=True))
    names |= set(Dependency.objects.filter(source__in=revs).values_list("target", flat=True))
    names |= set(Message.objects.filter(revision__in=revs).values_list("msgid", flat=True))
    roots = set(GraphSnapshot.objects.filter(root__in=revs).values_list("root_id", flat=True).distinct())
    last_ids = GraphSnapshot.objects.values("root_id").annotate(last=Max("id")).values_list("last", flat=True)
    for snap in GraphSnapshot.objects.filter(id__in=list(last_ids)).only("root_id", "data").iterator():
        data = snap.data or {}
        members = {n["msgid"] for n in data.get("nodes", [])} | {e.get("referred") for e in data.get("edges", [])}
        if members & names:
            roots.add(snap.root_id)
    return sorted(roots)


def recompute_affected(revision_ids) -> list[int]:
    """Recompute (from stored mail only) every graph the given revisions may change."""
    done = []
    with _batch():
        roots = list(Revision.objects.filter(id__in=affected_roots(revision_ids)))
        _preload([r for r in roots if ("newer", r.id) not in (_MEMO.get() or {})])
        done += _graphs_in_chunks(roots)
    return done


STORE_CHUNK = 100  # graphs stored per transaction: one commit (a WAL flush on PostgreSQL) each


def _graphs_in_chunks(revs: list[Revision]) -> list[int]:
    done = []
    for start in range(0, len(revs), STORE_CHUNK):
        with transaction.atomic():
            for rev in revs[start:start + STORE_CHUNK]:
                graph_for(rev)
                done.append(rev.id)
    return done


def revisions_without_graph(limit: int) -> list[int]:
    return list(Revision.objects.filter(graphs__isnull=True).order_by("id").values_list("id", flat=True)[:limit])


def compute_missing(revision_ids) -> list[int]:
    """First graphs for revisions that have none yet (pages only show stored graphs)."""
    done = []
    with _batch():
        revs = list(Revision.objects.filter(id__in=list(revision_ids)).exclude(graphs__isnull=False))
        _preload([r for r in revs if ("newer", r.id) not in (_MEMO.get() or {})])
        done += _graphs_in_chunks(revs)
    return done


def recompute_after_import(revision_ids) -> list[int]:
    """What follows an import: the graphs it may change, then first graphs of the new revisions.

    One batch, so the second half reuses what the first one read.
    """
    with _batch():
        done = recompute_affected(revision_ids)
        done += compute_missing(revision_ids)
    return done
