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


def test_batch_resolves_prerequisite_patch_ids_as_one_by_one_does():
    from reviewapp.models import Patch
    from tests.integration.test_graph_tags import BOB, CAROL, posting
    ingest(posting("a", "mm: a", files=(("f.c", "1111111", "2222222"), ("h.c", "6666666", "7777777"))))
    a2 = Patch.objects.get(message__msgid="a-2@ex.org").patch_id
    ingest(posting("b", "mm: b", frm=BOB, files=(("g.c", "4444444", "5555555"),),
                   cover=f"prerequisite-patch-id: {a2}\nprerequisite-patch-id: {'e' * 40}"))
    b1 = Patch.objects.get(message__msgid="b-1@ex.org").patch_id
    ingest(posting("c", "mm: c", frm=CAROL, files=(("k.c", "8888888", "9999999"),),
                   cover=f"prerequisite-patch-id: {b1[:12]}\nprerequisite-patch-id: {a2}"))
    revs = list(Revision.objects.order_by("id"))
    alone = {r.id: {k: v for k, v in graph_for(r).items() if k not in ("snapshot", "fetched")} for r in revs}
    GraphSnapshot.objects.all().delete()
    recompute_after_import([r.id for r in revs])
    for r in revs:
        assert latest_snapshot(r).data == alone[r.id], r.msgid
    c = alone[Revision.objects.get(msgid="c-0@ex.org").id]
    assert c["order"] == ["a-0@ex.org", "b-0@ex.org", "c-0@ex.org"]
