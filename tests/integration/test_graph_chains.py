"""The graph page shows, per applied chain, its apply result and a suite badge."""
import pytest
from django.urls import reverse

from reviewapp.models import ApplyRun, Revision, Suite, SuiteRun

pytestmark = pytest.mark.django_db

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"


def test_graph_page_has_a_suite_badge_per_chain(client, demo):
    from tests.support.demo import compute_demo_graphs
    compute_demo_graphs()  # as the worker does after ingest
    rev, tree = Revision.objects.get(msgid=UFFD_V3), demo
    declared = ApplyRun.objects.create(tree=tree, root=rev, status="applied", head="a" * 40)
    newest = ApplyRun.objects.create(tree=tree, root=rev, newest=True, status="conflict")
    suite = Suite.objects.create(name="uffd-faults", definition={})
    SuiteRun.objects.create(apply_run=declared, suite=suite, status="fail",
                            tests=[{"name": "uffd-faults/minor-shmem", "result": "not ok", "detail": ""}])
    page = client.get(reverse("graph-detail", args=[UFFD_V3])).content.decode()
    chains = page[page.index('id="chains"'):page.index('id="problems"')]
    assert "as declared" in chains and "newest revisions" in chains
    assert "uffd-faults: fail" in chains and "minor-shmem" in chains
    assert f"/tree/{declared.id}/" in chains and f"/tree/{newest.id}/" not in chains
    assert "badge conflict" in chains
