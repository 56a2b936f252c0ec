import json

import pytest
from django.core.management import call_command

from reviewapp.models import Message, Revision, Tree
from reviewapp.selectors import revision_dict

pytestmark = pytest.mark.django_db

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"
MAPPING_V7 = "20250318142233.2716254-1-tabba@google.com"


def test_demo_load_twice_changes_nothing(data_dir, capsys):
    call_command("demo", "load", "--no-runs", "--json")
    first = json.loads(capsys.readouterr().out)
    snapshot = (Message.objects.count(), [revision_dict(r) for r in Revision.objects.order_by("msgid")])
    call_command("demo", "load", "--no-runs", "--json")
    second = json.loads(capsys.readouterr().out)
    assert first["stored"] > 0 and second["stored"] == 0
    assert snapshot == (Message.objects.count(), [revision_dict(r) for r in Revision.objects.order_by("msgid")])
    assert Tree.objects.get(name="demo").state == "ready"


def test_demo_story_revisions_and_families(data_dir):
    call_command("demo", "load", "--no-runs")
    v3 = Revision.objects.get(msgid=UFFD_V3)
    v2 = v3.previous
    assert (v3.version, v3.complete, v2.version) == (3, True, 2)
    assert v2.previous.title == "KVM: guest_memfd: support for uffd missing"
    mapping = Revision.objects.get(msgid=MAPPING_V7)
    assert sorted(mapping.series.revisions.values_list("version", flat=True)) == [6, 7, 8]


@pytest.mark.django_db(transaction=True)
def test_demo_runs_are_queued_once_and_a_real_worker_applies_and_boots_them(settings, celery_worker_proc):
    from reviewapp.models import ApplyRun, SuiteRun
    from tests.conftest import wait_for
    call_command("demo", "load")
    call_command("demo", "load")
    assert ApplyRun.objects.count() == 3
    done = wait_for(lambda: ApplyRun.objects.exclude(status__in=["queued", "running"]).count() == 3, timeout=120)
    assert done and set(ApplyRun.objects.values_list("status", flat=True)) == {"applied"}
    # One suite run per distinct head: v3 on v7, v3 on v8 (newest), the fast path.
    wait_for(lambda: SuiteRun.objects.count() == 3 and not SuiteRun.objects.filter(
        status__in=["queued", "running"]).exists(), timeout=240)
    statuses = {r.apply_run.root.msgid: r.status for r in SuiteRun.objects.select_related("apply_run__root")}
    assert statuses[UFFD_V3] == "pass"
    assert statuses["20250410063119.40211-1-lena.brandt@example.org"] == "fail"
