"""Beat's sweep stores first graphs that a lost task send left out (pages only show stored ones)."""
import pytest

from reviewapp.models import Revision
from worker.tasks_graph import compute_missing_graphs

pytestmark = pytest.mark.django_db


def test_sweep_stores_first_graphs_in_bounded_batches_oldest_first(demo):
    without = list(Revision.objects.filter(graphs__isnull=True).order_by("id").values_list("id", flat=True))
    assert len(without) > 3
    assert sorted(compute_missing_graphs(limit=3)) == without[:3]
    assert not Revision.objects.filter(id__in=without[:3], graphs__isnull=True).exists()
    rest = compute_missing_graphs(limit=1000)
    assert sorted(rest) == without[3:]
    assert compute_missing_graphs(limit=1000) == []
