"""The demo story: fixtures/demo's mail threads and kernel-like tree, loaded idempotently."""
from pathlib import Path

from django.conf import settings

from fixtures.demo.build import build_tree

from ..models import Tree
from . import trees
from .ingest import IngestResult, ingest

DEMO = Path(settings.BASE_DIR) / "fixtures" / "demo"
TREE_NAME = "demo"
# The chains the demo shows applied and booted: uffd minor v3 (passes), the same on the
# newest mapping revision, and the fast path on top of it (breaks minor-shmem).
DEMO_CHAINS = [("20250404132740.18342-1-kalyazin@amazon.com", False),
               ("20250404132740.18342-1-kalyazin@amazon.com", True),
               ("20250410063119.40211-1-lena.brandt@example.org", False)]


def mail_files() -> list[Path]:
    return sorted((DEMO / "mail").glob("*.mbox"))


def load(runs: bool = True) -> dict:
    from untangle.mbox import messages_from_path
    result = IngestResult()
    for path in mail_files():
        part = ingest(messages_from_path(path))
        result.revisions |= part.revisions
        result.stored += part.stored
    tree = _register_tree()
    queued = _queue_demo_runs(tree) if runs else []
    return {"stored": result.stored, "revisions": sorted(result.revisions), "tree": tree.name,
            "queued_applies": queued}


def _queue_demo_runs(tree: Tree) -> list[int]:
    """Queue the demo's applies once; the worker applies them and then boots their suites."""
    from ..models import ApplyRun, Revision
    from .apply import request_apply
    queued = []
    for msgid, newest in DEMO_CHAINS:
        rev = Revision.objects.filter(msgid=msgid).first()
        if rev and not ApplyRun.objects.filter(root=rev, tree=tree, newest=newest).exists():
            queued.append(request_apply(rev, tree, newest=newest).id)
    return queued


def _register_tree() -> Tree:
    # The published tree is built once under the data dir; its shas are fixed by the builder.
    source = Path(settings.DATA_DIR) / "demo-src" / "linux"
    if not (source / ".git").exists():
        source.parent.mkdir(parents=True, exist_ok=True)
        build_tree(source)
    existing = Tree.objects.filter(name=TREE_NAME, state="ready").first()
    if existing and existing.source == str(source):
        return existing
    return trees.add_tree(TREE_NAME, str(source), branches=[])
