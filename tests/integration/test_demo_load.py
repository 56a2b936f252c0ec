import json

import pytest
from django.core.management import call_command

from reviewapp.models import Message, Revision, Tree
from reviewapp.selectors import revision_dict

pytestmark = pytest.mark.django_db

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"
MAPPING_V7 = "20250318142233.2716254-1-tabba@google.com"


def test_demo_load_twice_changes_nothing(data_dir, capsys):
    call_command("demo", "load", "--json")
    first = json.loads(capsys.readouterr().out)
    snapshot = (Message.objects.count(), [revision_dict(r) for r in Revision.objects.order_by("msgid")])
    call_command("demo", "load", "--json")
    second = json.loads(capsys.readouterr().out)
    assert first["stored"] > 0 and second["stored"] == 0
    assert snapshot == (Message.objects.count(), [revision_dict(r) for r in Revision.objects.order_by("msgid")])
    assert Tree.objects.get(name="demo").state == "ready"


def test_demo_story_revisions_and_families(data_dir):
    call_command("demo", "load")
    v3 = Revision.objects.get(msgid=UFFD_V3)
    v2 = v3.previous
    assert (v3.version, v3.complete, v2.version) == (3, True, 2)
    assert v2.previous.title == "KVM: guest_memfd: support for uffd missing"
    mapping = Revision.objects.get(msgid=MAPPING_V7)
    assert sorted(mapping.series.revisions.values_list("version", flat=True)) == [6, 7, 8]
