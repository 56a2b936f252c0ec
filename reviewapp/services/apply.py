"""Apply a dependency chain of revisions onto a tree.

The chain comes from the graph (apply order, root last); the base is chosen
by explicit rules whose every attempt is recorded; patches go to the git
layer (untangle.gitrepo_apply.apply_chain) which writes one commit per patch into
the mirror, in-process, without a worktree. The same base and the same
ordered patch-ids reuse an earlier successful result without touching git.
"""
import hashlib
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from untangle import gitrepo_apply, gitrepo_base, gitrepo_repo

from .. import dispatch

from ..models import ApplyRun, Message, Patch, PatchFile, Revision, Tree
from . import leases, results, trees
from .graph import GraphError, chain_for

log = logging.getLogger("reviewapp.apply")
FINISHED = (ApplyRun.APPLIED, ApplyRun.CONFLICT, ApplyRun.FAILED)
PROGRESS_EVERY_S = 0.1  # row updates during a run: live enough, cheap enough


class ApplyError(Exception):
    """The run cannot start (unknown revision, tree...)."""


# ------------------------------------------------------------------ chain

def chain_revisions(rev: Revision, newest: bool = False) -> list[Revision]:
    """Revisions in apply order, root last; raises GraphError if a dependency is missing."""
    return list(chain_for(rev, newest))


def patches_of(chain: list[Revision]) -> list[Patch]:
    """Only Patch rows (covers and replies never reach git), by number per revision."""
    out: list[Patch] = []
    for rev in chain:
        out += list(Patch.objects.filter(revision=rev).select_related("message")
                    .order_by("number", "id"))
    return out


def patch_dict(p: Patch) -> dict:
    return {"msgid": p.message.msgid, "author_name": p.author_name, "author_email": p.author_email,
            "date": p.date.isoformat() if p.date else None, "subject": p.subject,
            "message": p.commit_message, "diff": p.diff}


def _patch_key(p: Patch) -> str:
    # patch-id is null for a diff we could not parse: its text still identifies it.
    return p.patch_id or "text:" + hashlib.sha256(p.diff.encode("utf-8", "replace")).hexdigest()


def cache_key(base: str, patches: list[Patch]) -> str:
    h = hashlib.sha256(base.encode())
    for p in patches:
        h.update(b"\n" + _patch_key(p).encode())
    return h.hexdigest()


# ------------------------------------------------------------------ base

def preimage_blobs(patches: list[Patch]) -> list[tuple[str, str]]:
    """(path, pre-image blob) of the first patch in the chain touching each path;
    later patches' pre-images are earlier patches' results, not the base's."""
    files = PatchFile.objects.filter(patch__in=patches).order_by("id")
    by_patch: dict[int, list[PatchFile]] = {}
    for f in files:
        by_patch.setdefault(f.patch_id, []).append(f)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for p in patches:
        for f in by_patch.get(p.id, []):
            src = f.old_path or f.path
            if src in seen or f.path in seen:
                seen.update((src, f.path))
                continue
            seen.update((src, f.path))
            if f.old_blob:
                out.append((src, f.old_blob))
    return out


def choose_base(repo: Path, tree: Tree, chain: list[Revision], patches: list[Patch],
                given: str = "") -> dict:
    """{"sha", "rule", "attempts"}; sha None when nothing usable (given base unknown).

    Rules, first that works: --base ("given"); the root's base-commit, or the
    first chain member's when the root declares none ("base-commit"); another
    chain member's base-commit ("dependency"); a guess from the pre-image blobs
    ("guessed"); the default branch head ("branch-head", a guess too).
    """
    attempts: list[dict] = []
    if given:
        sha = gitrepo_repo.resolve(repo, given)
        attempts.append({"rule": "given", "rev": given, "sha": sha,
                         "reason": None if sha else f"{given} not found in tree {tree.name}"})
        return {"sha": sha, "rule": "given", "attempts": attempts}
    root = chain[-1]
    first = root if root.base_commit else chain[0]
    order = [(first, "base-commit")] + [(r, "dependency") for r in reversed(chain) if r.id != first.id]
    for rev, rule in order:
        if not rev.base_commit:
            attempts.append({"rule": rule, "revision": rev.msgid, "rev": None, "sha": None,
                             "reason": "no base-commit declared"})
            continue
        sha = gitrepo_repo.resolve(repo, rev.base_commit)
        attempts.append({"rule": rule, "revision": rev.msgid, "rev": rev.base_commit, "sha": sha,
                         "reason": None if sha else f"not in tree {tree.name}"})
        if sha:
            return {"sha": sha, "rule": rule, "attempts": attempts}
    return _guess_or_head(repo, tree, patches, attempts)


def _guess_or_head(repo: Path, tree: Tree, patches: list[Patch], attempts: list[dict]) -> dict:
    blobs = preimage_blobs(patches)
    default = gitrepo_repo.default_branch(repo)
    branches = list(tree.branches) or ([default] if default else [])
    if blobs:
        g = gitrepo_base.guess_base(repo, blobs, branches)
        for a in g.attempts:
            reason = None if a.reason == "match" else a.reason
            attempts.append({"rule": "guessed", "branch": a.branch, "rev": a.rev,
                             "sha": a.rev if reason is None else None, "reason": reason})
        if g.sha:
            return {"sha": g.sha, "rule": "guessed", "attempts": attempts}
        bp = g.best_partial
        note = f"; best partial {bp.rev[:12]} matched {bp.matched}/{bp.total}" if bp else ""
        attempts.append({"rule": "guessed", "rev": None, "sha": None,
                         "reason": f"no commit on {', '.join(branches) or 'any branch'} has all "
                                   f"{len(blobs)} pre-image blobs{note}"})
    else:
        attempts.append({"rule": "guessed", "rev": None, "sha": None,
                         "reason": "the patches carry no pre-image blob ids"})
    sha = gitrepo_repo.resolve(repo, default) if default else None
    attempts.append({"rule": "branch-head", "rev": default, "sha": sha,
                     "reason": None if sha else "the tree has no branches"})
    return {"sha": sha, "rule": "branch-head", "attempts": attempts}


def _earlier_base(run: ApplyRun, tree: Tree, chain_ids: list[str], patch_ids: list[str]) -> ApplyRun | None:
    """A successful run of the same chain on the unchanged tree: its base choice holds.

    This keeps a re-apply free of git work (a guess walks history)."""
    qs = ApplyRun.objects.filter(tree=tree, status=ApplyRun.APPLIED, given_base=run.given_base)
    if tree.fetched:
        qs = qs.filter(created__gte=tree.fetched)
    for old in qs.exclude(id=run.id).order_by("-created")[:20]:
        if old.chain == chain_ids and [a["msgid"] for a in old.applied] == patch_ids:
            return old
    return None


# ------------------------------------------------------------------ runs

def request_apply(rev: Revision, tree: Tree, base: str | None = None, newest: bool = False,
                  user=None) -> ApplyRun:
    """A queued run; the worker picks it up once this transaction commits."""
    run = ApplyRun.objects.create(tree=tree, root=rev, newest=newest, given_base=(base or "").strip(),
                                  status=ApplyRun.QUEUED,
                                  requested_by=user if getattr(user, "is_authenticated", False) else None)
    dispatch.apply_run(run.id)
    return run


def claim(run_id: int) -> bool:
    return ApplyRun.objects.filter(
        leases.claimable("status", [ApplyRun.QUEUED], ApplyRun.RUNNING), id=run_id).update(
        status=ApplyRun.RUNNING, **leases.lease_fields()) == 1


def apply(rev: Revision, tree: Tree, base: str | None = None, newest: bool = False, user=None,
          progress: Callable[[int, int], None] | None = None) -> ApplyRun:
    """Apply rev's chain onto tree now (in this process); returns the finished run."""
    run = ApplyRun.objects.create(tree=tree, root=rev, newest=newest, given_base=(base or "").strip(),
                                  status=ApplyRun.RUNNING, **leases.lease_fields(),
                                  requested_by=user if getattr(user, "is_authenticated", False) else None)
    return execute(run, progress)


def execute(run: ApplyRun, progress: Callable[[int, int], None] | None = None) -> ApplyRun:
    """Do a claimed (RUNNING) run; any error ends it as failed, never left running."""
    try:
        with leases.heartbeat(ApplyRun, run.id):
            _execute(run, progress)
    except Exception as exc:
        log.exception("apply run %s failed", run.id)
        _finish(run, status=ApplyRun.FAILED, error=f"{type(exc).__name__}: {exc}",
                failed={"msgid": None, "error": str(exc), "files": []})
    run.refresh_from_db()
    return run


def _fail(run: ApplyRun, error: str, **fields) -> None:
    _finish(run, status=ApplyRun.FAILED, error=error,
            failed={"msgid": None, "error": error, "files": []}, **fields)


def _unchanged_earlier(run: ApplyRun) -> ApplyRun | None:
    """The last successful run of the same request, if nothing it read has changed since.

    The chain and base are functions of the stored mail and the tree: no mail
    stored, no revision regrouped and no fetch since that run started means the
    same chain, base and patch-ids, so the same cache key, without recomputing
    the graph (which alone costs about the whole 50 ms budget).
    """
    earlier = (ApplyRun.objects.filter(root_id=run.root_id, tree_id=run.tree_id, newest=run.newest,
                                       given_base=run.given_base, status=ApplyRun.APPLIED)
               .exclude(id=run.id).order_by("-created").first())
    if earlier is None:
        return None
    changed = Message.objects.aggregate(m=Max("received"))["m"], \
        Revision.objects.aggregate(m=Max("updated"))["m"], run.tree.fetched
    return earlier if all(t is None or t < earlier.created for t in changed) else None


def _reuse(run: ApplyRun, hit: ApplyRun, **fields) -> None:
    _finish(run, status=ApplyRun.APPLIED, cached=True, cache_key=hit.cache_key, head=hit.head,
            tree_sha=hit.tree_sha, ref=hit.ref, applied=hit.applied, failed=None, error="",
            progress=hit.total, **fields)


def _execute(run: ApplyRun, progress) -> None:
    tree = run.tree
    earlier = _unchanged_earlier(run)
    if earlier:
        return _reuse(run, earlier, chain=earlier.chain, base=earlier.base, base_rule=earlier.base_rule,
                      base_attempts=earlier.base_attempts, total=earlier.total)
    try:
        chain = chain_revisions(run.root, run.newest)
    except GraphError as exc:
        return _fail(run, f"cannot build the chain: {exc}")
    chain_ids = [r.msgid for r in chain]
    incomplete = [r for r in chain if not r.complete]
    if incomplete:
        r = incomplete[0]
        why = f"patches {r.missing} are missing"
        if r.partial_root:
            why = (f"only {r.received} of its {r.expected} patches reached this list (the cover "
                   f"<{r.partial_root}> and patches {r.missing} went to other lists); fetch the whole thread")
        return _fail(run, f"<{r.msgid}> v{r.version} is incomplete: {why}", chain=chain_ids)
    patches = patches_of(chain)
    patch_ids = [p.message.msgid for p in patches]
    earlier = _earlier_base(run, tree, chain_ids, patch_ids)
    if earlier:
        choice = {"sha": earlier.base, "rule": earlier.base_rule, "attempts": earlier.base_attempts}
    else:
        repo = trees.ensure_mirror(tree)
        choice = choose_base(repo, tree, chain, patches, run.given_base)
    fields = {"chain": chain_ids, "base": choice["sha"] or "", "base_rule": choice["rule"],
              "base_attempts": choice["attempts"], "total": len(patches)}
    if not choice["sha"]:
        return _fail(run, f"base {run.given_base or '(none)'} not found in tree {tree.name}", **fields)
    key = cache_key(choice["sha"], patches)
    hit = (ApplyRun.objects.filter(tree=tree, cache_key=key, status=ApplyRun.APPLIED)
           .exclude(id=run.id).order_by("created").first())
    if hit:
        return _reuse(run, hit, **fields)
    ApplyRun.objects.filter(id=run.id).update(cache_key=key, **fields)
    result = gitrepo_apply.apply_chain(trees.ensure_mirror(tree), choice["sha"], [patch_dict(p) for p in patches],
                                 ref=str(run.id), progress=_progress_writer(run, progress),
                                 max_binary=settings.BINARY_PATCH_MAX_BYTES)
    failed = asdict(result.failed) if result.failed else None  # stored as JSON on the run
    results.publish(tree, result.ref or "", choice["sha"], result.head or "")
    _finish(run, status=result.status, cache_key=key, head=result.head or "",
            tree_sha=result.tree or "", ref=result.ref or "",
            applied=[{"msgid": a.msgid, "commit": a.commit} for a in result.applied],
            failed=_describe_failure(failed, patches, chain),
            progress=len(result.applied), error=result.failed.error if result.failed else "", **fields)


def _progress_writer(run: ApplyRun, also: Callable[[int, int], None] | None):
    last = [0.0]

    def write(k: int, n: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or k == n:
            last[0] = now
            ApplyRun.objects.filter(id=run.id).update(progress=k, total=n)
        if also:
            also(k, n)
    return write


def _describe_failure(failed: dict | None, patches: list[Patch], chain: list[Revision]) -> dict | None:
    """Add which revision (and which number) the failing and blamed patches belong to."""
    if not failed:
        return None
    where = {p.message.msgid: p for p in patches}
    revs = {r.id: r for r in chain}
    out = dict(failed)
    p = where.get(failed.get("msgid"))
    if p is not None:
        r = revs[p.revision_id]
        out.update(revision=r.msgid, revision_title=r.title, version=r.version, number=p.number,
                   subject=p.subject, position=patches.index(p) + 1)
    touched = []
    for t in failed.get("last_touched") or []:
        t = dict(t)
        bp = where.get(t.get("by"))
        if bp is not None:
            t.update(revision=revs[bp.revision_id].msgid, number=bp.number, subject=bp.subject)
        touched.append(t)
    out["last_touched"] = touched
    return out


def _finish(run: ApplyRun, **fields) -> None:
    ApplyRun.objects.filter(id=run.id).update(finished=timezone.now(), **fields)


# ------------------------------------------------------------------ output

def run_dict(run: ApplyRun) -> dict:
    """The CLI contract (issue 4 point 8), nothing more."""
    failed = None
    if run.failed:
        failed = {"msgid": run.failed.get("msgid"), "error": run.failed.get("error") or run.error,
                  "files": list(run.failed.get("files") or [])}
    return {"status": run.status, "base": run.base or None, "base_rule": run.base_rule or None,
            "head": run.head or None, "tree": run.tree_sha or None, "ref": run.ref or None,
            "applied": [{"msgid": a["msgid"], "commit": a["commit"]} for a in run.applied],
            "failed": failed, "cached": run.cached}


def fetch_command(run: ApplyRun, base_url: str) -> str | None:
    if not run.ref:
        return None
    return f"git fetch {base_url.rstrip('/')}/git/{run.tree.name}.git {run.ref}"
