"""Which posted revisions a tree's default branch already carries (by stable patch-id)."""
from datetime import timedelta

from untangle import gitrepo_read, gitrepo_repo

from ..models import Patch, Revision, Tree
from .trees import TreeError, ensure_mirror

# Commit dates follow posting dates; a day of slack covers clocks and time zones.
SLACK = timedelta(days=1)


def upstream_patch_ids(since) -> set[str]:
    found: set[str] = set()
    for tree in Tree.objects.filter(state="ready"):
        try:
            repo = ensure_mirror(tree)  # this host's copy (a cache)
        except TreeError:
            continue
        branch = gitrepo_repo.default_branch(repo)
        if branch:
            found |= gitrepo_read.patch_ids_since(repo, branch, since - SLACK if since else None)
    return found


def merged_revision_ids(revisions: list[Revision]) -> set[int]:
    """The revisions whose every patch is in a registered tree's default branch."""
    dated = [r.date for r in revisions if r.date]
    if not revisions or not Tree.objects.filter(state="ready").exists():
        return set()
    upstream = upstream_patch_ids(min(dated) if dated else None)
    by_rev: dict[int, list[str | None]] = {}
    for rev_id, pid in Patch.objects.filter(revision__in=revisions).values_list("revision_id", "patch_id"):
        by_rev.setdefault(rev_id, []).append(pid)
    return {rev_id for rev_id, pids in by_rev.items() if pids and all(p in upstream for p in pids)}
