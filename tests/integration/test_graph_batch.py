"""Graphs computed in one batch after an import (shared reads) equal graphs computed one by one."""
import pytest

from reviewapp.models import GraphSnapshot, Revision
from reviewapp.services.graph import graph_for, latest_snapshot, recompute_after_import
from reviewapp.services.ingest import ingest
from untangle.mbox import messages_from_path

pytestmark = pytest.mark.django_db

def test_batch_after_import_stores_the_same_graphs_as_one_by_one(lore_dir):
    for p in sorted(lore_dir.glob("*.mbox")):
        ingest(messages_from_path(p))
    revs = list(Revision.objects.order_by("id"))
    assert len(revs) > 5
    alone = {r.id: {k: v for k, v in graph_for(r).items() if k not in ("snapshot", "fetched")} for r in revs}
    GraphSnapshot.objects.all().delete()
    done = recompute_after_import([r.id for r in revs])
    assert sorted(done) == sorted(alone)
    for r in revs:
        assert latest_snapshot(r).data == alone[r.id], r.msgid

def test_batch_recompute_of_unchanged_graphs_writes_no_new_snapshot(lore_dir):
    revs = []
    for p in sorted(lore_dir.glob("*.mbox")):
        revs += list(ingest(messages_from_path(p)).revisions)
    assert sorted(recompute_after_import(revs)) == sorted(set(revs))
    before = GraphSnapshot.objects.count()
    assert GraphSnapshot.objects.filter(root_id__in=revs).values("root_id").distinct().count() == len(set(revs))
    assert set(recompute_after_import(revs)) == set(revs)  # affected: their own graphs; none missing
    assert GraphSnapshot.objects.count() == before
