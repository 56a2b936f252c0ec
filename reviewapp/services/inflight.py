"""Series in flight together on one list: each open series applied with its chain onto the
list's tree, then every pair whose results change a common file merged in memory over
what they share (untangle.inflight picks the pairs, untangle.gitrepo_merge merges).

Open: the newest revision of each series of the list that is not merged into a tree,
posted within REVIEWAPP_INFLIGHT_DAYS. A pair that shares a prerequisite is merged over
the shared chain (their merge base: chain commits are deterministic, so both runs hold the
same commits for it), so the shared chain is never a conflict with itself; a series built
on another contains it and merges cleanly.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from untangle import gitrepo, inflight as pure

from ..models import ApplyRun, InflightConflict, InflightState, MailingList, Revision, Tree
from . import results, trees
from .apply import apply
from .review import open_ids

log = logging.getLogger("reviewapp.inflight")


class InflightError(ValueError):
    """The list or its tree is not known."""


@dataclass
class InflightResult:
    list_name: str
    tree: str
    open: list[dict] = field(default_factory=list)  # per open series: msgid, title, version, apply state
    conflicts: list[dict] = field(default_factory=list)
    compared: int = 0
    left_out: int = 0
    integration: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"list": self.list_name, "tree": self.tree, "open": self.open, "conflicts": self.conflicts,
                "pairs_compared": self.compared, "pairs_left_out": self.left_out,
                "integration": self.integration}


def open_revisions(mlist: MailingList, days: int | None = None) -> list[Revision]:
    """The list's open series (newest revision, not merged), posted in the last `days`."""
    days = settings.INFLIGHT_DAYS if days is None else days
    since = timezone.now() - timedelta(days=days)
    recent = list(Revision.objects.live().filter(mailing_list=mlist, date__gte=since)
                  .select_related("series").order_by("date", "id"))
    opened = open_ids(recent) if recent else set()
    return [r for r in recent if r.id in opened]


def tree_of(mlist: MailingList, name: str | None = None) -> Tree:
    """The tree a list's series are applied to: the one named, else the one named for the list."""
    wanted = name or mlist.name
    found = Tree.objects.filter(name=wanted).first()
    if found is None:
        raise InflightError(f"no tree named {wanted!r}: register the list's tree (manage.py tree add "
                            f"{mlist.name} URL) or give --tree")
    return found


def _still_valid_runs(revs: list[Revision], tree: Tree) -> dict[int, ApplyRun]:
    """The last run of each revision on the tree, where nothing it read changed since: no
    revision of its chain regrouped or given new patches (`updated`), no graph of the
    revision computed after the run (its chain may differ), no fetch of the tree. Three queries for the list, so
    an update after one new revision re-applies only what it touches."""
    from django.db.models import Max

    from ..models import GraphSnapshot
    last: dict[int, ApplyRun] = {}
    for run in (ApplyRun.objects.filter(root__in=revs, tree=tree, newest=False, given_base="",
                                        status__in=[ApplyRun.APPLIED, ApplyRun.CONFLICT, ApplyRun.FAILED])
                .order_by("root_id", "-created", "-id")):
        last.setdefault(run.root_id, run)
    graphs = dict(GraphSnapshot.objects.filter(root__in=list(last)).values("root").annotate(at=Max("computed"))
                  .values_list("root", "at"))
    chain_msgids = {m for run in last.values() for m in run.chain}
    updated = dict(Revision.objects.filter(msgid__in=chain_msgids).values_list("msgid", "updated"))
    valid = {}
    for rid, run in last.items():
        seen = [updated.get(m) for m in run.chain]
        if not run.chain or None in seen or max(seen) > run.created:
            continue
        # The run computes its graph itself: a newer one is one computed after it finished.
        if not run.finished or (graphs.get(rid) and graphs[rid] > run.finished) or \
                (tree.fetched and tree.fetched > run.created):
            continue
        valid[rid] = run
    return valid


def compute(list_name: str, tree_name: str | None = None, days: int | None = None) -> InflightResult:
    """Apply every open series of the list and store the conflicts between them."""
    mlist = MailingList.objects.filter(name=list_name).first()
    if mlist is None:
        raise InflightError(f"no mailing list named {list_name!r}")
    tree = tree_of(mlist, tree_name)
    repo = trees.ensure_mirror(tree)
    result = InflightResult(mlist.name, tree.name)
    applied: dict[str, ApplyRun] = {}
    revs = {}
    opened = open_revisions(mlist, days)
    earlier = _still_valid_runs(opened, tree)
    for rev in opened:
        run = earlier.get(rev.id) or apply(rev, tree)
        revs[rev.msgid] = rev
        result.open.append({"msgid": rev.msgid, "title": rev.title, "version": rev.version,
                            "apply": run.status, "run": run.id, "error": run.error[:300]})
        if run.status == ApplyRun.APPLIED and run.head:
            results.local_mirror(run)  # its commits may have been made on another host
            applied[rev.msgid] = run
    last = InflightState.objects.filter(mailing_list=mlist, tree=tree.name).first()
    known = _Known.of(last, mlist)
    changed = {f"{run.base}..{run.head}": known.changed.get(f"{run.base}..{run.head}")
               or gitrepo.changed_paths(repo, run.base, run.head) for run in applied.values()}
    files = {m: set(changed[f"{run.base}..{run.head}"]) for m, run in applied.items()}
    pairs = pure.candidate_pairs(files)
    result.compared, result.left_out = len(pairs.pairs), pairs.left_out
    rows, clean = [], []
    for a, b in pairs.pairs:
        # Stored and shown older revision first: its side is "ours" in every hunk.
        first, second = sorted([(revs[a], applied[a]), (revs[b], applied[b])], key=lambda x: x[0].id)
        ours, theirs = first[1], second[1]
        pair = f"{ours.head}:{theirs.head}"
        if pair in known.clean:
            clean.append(pair)
            continue
        ancestor, files_json, file_count, hunk_count = known.conflicts.get(pair) or _merge(repo, ours, theirs)
        if files_json is None:
            clean.append(pair)
            continue
        rows.append(InflightConflict(mailing_list=mlist, a=first[0], b=second[0], a_run=first[1], b_run=second[1],
                                     ancestor=ancestor, files=files_json, file_count=file_count,
                                     hunk_count=hunk_count))
        result.conflicts.append({"a": first[0].msgid, "b": second[0].msgid, "ancestor": ancestor,
                                 "files": files_json, "hunk_count": hunk_count})
    result.integration, stacked = _integration(repo, mlist, revs, applied, result)
    seen = {(a, b): at for a, b, at in InflightConflict.objects.filter(mailing_list=mlist)
            .values_list("a_id", "b_id", "first_seen")}
    for row in rows:
        row.first_seen = seen.get((row.a_id, row.b_id), row.first_seen)
    with transaction.atomic():
        InflightConflict.objects.filter(mailing_list=mlist).delete()
        InflightConflict.objects.bulk_create(rows)
        if stacked is not None:
            run = _integration_run(repo, mlist, tree, result.integration, stacked)
            result.integration["run"] = run.id
        InflightState.objects.update_or_create(mailing_list=mlist, defaults={
            "tree": tree.name, "open": result.open, "pairs_compared": result.compared,
            "pairs_left_out": result.left_out, "integration": result.integration,
            "changed": changed, "clean_pairs": clean})
    log.info("in flight on %s: %d open, %d pairs compared, %d conflicts", mlist.name, len(result.open),
             result.compared, len(rows))
    return result


@dataclass
class _Known:
    """What the last computation found that still holds: merges and diffs depend only on
    the commits, so a pair of heads merged before merges the same way again."""
    changed: dict[str, list[str]]
    clean: set[str]
    conflicts: dict[str, tuple]

    @classmethod
    def of(cls, state: InflightState | None, mlist: MailingList) -> "_Known":
        if state is None:
            return cls({}, set(), {})
        conflicts = {f"{c.a_run.head}:{c.b_run.head}": (c.ancestor, c.files, c.file_count, c.hunk_count)
                     for c in InflightConflict.objects.filter(mailing_list=mlist).select_related("a_run", "b_run")}
        return cls(state.changed or {}, set(state.clean_pairs or []), conflicts)


def _merge(repo, ours: ApplyRun, theirs: ApplyRun) -> tuple:
    """(ancestor, files with hunks or None when clean, file count, hunk count)."""
    ancestor = gitrepo.merge_base(repo, ours.head, theirs.head) or ours.base
    check = gitrepo.merge_check(repo, ancestor, ours.head, theirs.head)
    if check.clean:
        return ancestor, None, 0, 0
    files_json = [{"path": f.path, "kind": f.kind, "hunk_count": f.hunk_count,
                   "hunks": [{"ours": h.ours, "theirs": h.theirs, "truncated": h.truncated} for h in f.hunks]}
                  for f in check.files]
    return ancestor, files_json, check.file_count, check.hunk_count


INTEGRATION_REF = "refs/heads/integration/{list}"


def _integration(repo, mlist: MailingList, revs: dict[str, Revision], applied: dict[str, ApplyRun],
                 result: InflightResult) -> dict:
    """One branch of every open series that fits: stacked in dependency order, then by date,
    each left out whole when it conflicts with what is stacked already (and said why)."""
    branch = gitrepo.default_branch(repo)
    base = gitrepo.resolve(repo, branch) if branch else None
    if base is None:
        return {"error": "the tree has no branch to stack on"}, None
    order = pure.stack_order([(m, revs[m].date.isoformat() if revs[m].date else "", list(applied[m].chain))
                              for m in applied])
    ref = INTEGRATION_REF.format(list=mlist.name)
    stack = gitrepo.stack_chains(repo, base, [(m, applied[m].base, applied[m].head) for m in order], ref=ref)
    pairs = {frozenset((c["a"], c["b"])) for c in result.conflicts}
    stacked = [s.name for s in stack.included]
    skipped = []
    for s in stack.skipped:
        alone = [m for m in stacked if frozenset((m, s.name)) in pairs]
        skipped.append({"msgid": s.name, "title": f"{revs[s.name].title} v{revs[s.name].version}",
                        "with_titles": [f"{revs[m].title} v{revs[m].version}" for m in alone],
                        "files": s.files, "with": alone, "reason": (
            "conflicts with what is stacked" if alone else
            "conflicts with what is stacked together (with no one stacked series alone)")})
    skipped += [{"msgid": o["msgid"], "title": f"{o['title']} v{o['version']}", "with_titles": [],
                 "files": [], "with": [], "reason": f"does not apply alone: {o['apply']}"}
                for o in result.open if o["msgid"] not in applied]
    summary = {"ref": ref, "branch": branch, "base": stack.base, "head": stack.head,
               "included": [{"msgid": s.name, "commits": len(s.commits)} for s in stack.included],
               "skipped": skipped}
    return summary, _stacked_commits(stack, applied)


def _stacked_commits(stack, applied: dict[str, ApplyRun]) -> tuple[list[str], list[dict]]:
    """The integration branch as a chain: revision msgids in stacking order, and each
    replayed commit with the patch mail it came from (what provenance reads)."""
    patch_of = {e["commit"]: e["msgid"] for run in applied.values() for e in run.applied}
    chain, entries = [], []
    for s in stack.included:
        chain += [m for m in applied[s.name].chain if m not in chain]
        entries += [{"msgid": patch_of.get(src, ""), "commit": c} for c, src in zip(s.commits, s.sources)]
    return chain, entries


KEEP_INTEGRATION_RUNS = 20  # older ones go, unless a suite ran on them


def _integration_run(repo, mlist: MailingList, tree: Tree, summary: dict, stacked) -> ApplyRun:
    """The integration branch as a browsable run (/tree/<id>/, per-line provenance, suites):
    one per head, so a recomputation that stacks the same commits keeps its permalinks."""
    chain, entries = stacked
    run = (ApplyRun.objects.filter(integration_of=mlist, tree=tree, head=summary["head"], base=summary["base"])
           .order_by("-id").first())
    if run is None:
        now = timezone.now()
        run = ApplyRun.objects.create(
            tree=tree, integration_of=mlist, status=ApplyRun.APPLIED, chain=chain, base=summary["base"],
            base_rule="integration", head=summary["head"], applied=entries, progress=len(entries),
            total=len(entries), finished=now)
        # Its own ref: the branch moves on, the run's commits stay reachable and fetchable.
        run.ref = gitrepo.pin(repo, str(run.id), run.head)
        run.save(update_fields=["ref"])
        results.publish(tree, run.ref, run.base, run.head)
    old = (ApplyRun.objects.filter(integration_of=mlist).exclude(id=run.id).filter(suite_runs__isnull=True)
           .order_by("-id").values_list("id", flat=True)[KEEP_INTEGRATION_RUNS - 1:])
    ApplyRun.objects.filter(id__in=list(old)).delete()
    return run
