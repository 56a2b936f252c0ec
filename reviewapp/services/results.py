"""Results that cross hosts: a worker's chains reach every other host through the database.

Web and workers share only PostgreSQL and the broker (docs/deploy.md). Each host keeps its
own mirror of a tree (a cache, made on demand from the tree's source); a run's commits are
made on one host. After a run, the worker stores base..head as a git bundle (ChainBundle,
one per tree and head: commits are deterministic), and any host that wants the run's commits
and lacks them imports the bundle into its mirror, first fetching the mirror when it lacks
the base. Suite artifacts go to SuiteArtifact. Both are bounded by RESULT_MAX_BYTES.
"""
from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from untangle import gitrepo

from ..models import ApplyRun, ChainBundle, SuiteArtifact, SuiteRun, Tree
from . import trees

log = logging.getLogger("reviewapp.results")


class ResultMissing(LookupError):
    """A run's commits are on no host this one can reach: no bundle, or it does not import."""


def publish(tree: Tree, ref: str, base: str, head: str) -> ChainBundle | None:
    """Store a run's commits (ref, base..head in this host's mirror) for the other hosts,
    before the run is marked finished (what starts after it may run elsewhere). A head
    already published (the same chain applied before, anywhere) is not stored twice."""
    if not (head and base and ref) or head == base:
        return None
    done = ChainBundle.objects.filter(tree=tree, head=head).defer("data").first()
    if done is not None:
        return done
    try:
        data = gitrepo.export_bundle(trees.mirror_of(tree), ref, base, settings.RESULT_MAX_BYTES)
    except gitrepo.BundleError as exc:
        log.warning("%s of %s not published: %s", ref, tree.name, exc)
        return None
    try:
        with transaction.atomic():
            return ChainBundle.objects.create(tree=tree, head=head, base=base, data=data, size=len(data))
    except IntegrityError:  # another worker published the same head meanwhile
        return ChainBundle.objects.filter(tree=tree, head=head).defer("data").first()


def local_mirror(run: ApplyRun) -> Path:
    """This host's mirror of the run's tree, holding the run's commits: made from the
    tree's source when this host has none, the run's bundle imported when the commits
    were made elsewhere."""
    repo = trees.ensure_mirror(run.tree)
    if not run.head or gitrepo.resolve(repo, run.head) == run.head:
        return repo
    bundle = ChainBundle.objects.filter(tree_id=run.tree_id, head=run.head).first()
    if bundle is None:
        raise ResultMissing(f"the commits of run {run.id} ({run.head[:12]}) are not on this host "
                            "and no host published them")
    try:
        _import(run.tree, repo, bundle, run.ref or f"{gitrepo.CHAIN_REF_PREFIX}{run.id}")
    except gitrepo.BundleError as exc:
        raise ResultMissing(str(exc)) from exc
    return repo


def _import(tree: Tree, repo: Path, bundle: ChainBundle, ref: str) -> None:
    """Import, fetching this host's mirror first when it is older than the bundle's base."""
    try:
        head = gitrepo.import_bundle(repo, bytes(bundle.data), ref)
    except gitrepo.BundleError as exc:
        if not exc.missing_base:
            raise
        trees.catch_up(tree)
        head = gitrepo.import_bundle(repo, bytes(bundle.data), ref)
    log.info("imported %s (%d bytes) as %s", head[:12], bundle.size, ref)


def store_artifacts(suite_run: SuiteRun, folder: Path, names: tuple[str, ...]) -> list[str]:
    """Keep the suite's files in the database (any web host serves them); returns notes
    on the ones left out for size."""
    notes = []
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        size = path.stat().st_size
        if size > settings.RESULT_MAX_BYTES:
            notes.append(f"artifact {name}: {size} bytes, over the limit of {settings.RESULT_MAX_BYTES}; not kept")
            continue
        SuiteArtifact.objects.update_or_create(suite_run=suite_run, name=name,
                                               defaults={"data": path.read_bytes(), "size": size})
    return notes


def artifact_names(suite_run: SuiteRun) -> list[str]:
    return list(SuiteArtifact.objects.filter(suite_run=suite_run).order_by("name").values_list("name", flat=True))


def artifact(suite_run: SuiteRun, name: str) -> bytes | None:
    row = SuiteArtifact.objects.filter(suite_run=suite_run, name=name).first()
    return bytes(row.data) if row is not None else None


IMPORTED_MARK = "reviewapp-bundles"  # in a mirror: the last ChainBundle id this host took in
IMPORT_BATCH = 200


def import_published(tree: Tree) -> int:
    """Take every bundle published since this host last looked into its mirror, with the
    refs users fetch (each run's ref; a list's integration branch): what serving the
    mirror over git needs. Returns how many were imported."""
    from ..models import InflightState
    repo = trees.ensure_mirror(tree)
    mark = repo / IMPORTED_MARK
    try:
        last = int(mark.read_text().strip() or 0)
    except (OSError, ValueError):
        last = 0
    done = 0
    bundles = list(ChainBundle.objects.filter(tree=tree, id__gt=last).order_by("id")
                   .values_list("id", "head")[:IMPORT_BATCH])
    integration = {s.integration.get("head"): f"refs/heads/integration/{s.mailing_list.name}"
                   for s in InflightState.objects.filter(tree=tree.name).select_related("mailing_list")}
    for bundle_id, head in bundles:
        runs = [r for r in ApplyRun.objects.filter(tree=tree, head=head).only("id", "ref") if r.ref]
        refs = sorted({r.ref for r in runs} | ({integration[head]} if head in integration else set()))
        if not refs:
            continue
        present = gitrepo.resolve(repo, head) == head
        try:
            if not present:
                _import(tree, repo, ChainBundle.objects.get(id=bundle_id), refs[0])
                done += 1
            for ref in refs:
                gitrepo.pin(repo, ref, head)
        except gitrepo.BundleError as exc:
            log.warning("bundle %s for %s not imported: %s", bundle_id, tree.name, exc)
        mark.write_text(str(bundle_id))
    return done
