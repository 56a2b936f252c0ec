"""The demo story: fixtures/demo's mail threads and kernel-like tree, loaded idempotently."""
from pathlib import Path

from django.conf import settings

from fixtures.demo.build import build_tree

from ..models import Tree
from . import trees
from .ingest import IngestResult, ingest

DEMO = Path(settings.BASE_DIR) / "fixtures" / "demo"
TREE_NAME = "demo"


def mail_files() -> list[Path]:
    return sorted((DEMO / "mail").glob("*.mbox"))


def load() -> dict:
    from untangle.mbox import messages_from_path
    result = IngestResult()
    for path in mail_files():
        part = ingest(messages_from_path(path))
        result.revisions |= part.revisions
        result.stored += part.stored
    tree = _register_tree()
    return {"stored": result.stored, "revisions": sorted(result.revisions), "tree": tree.name}


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
