"""Ingest of real kernel mails (../shared/lore): the facts its README lists."""
import pytest

from reviewapp.models import Message, Patch, Revision, Trailer
from reviewapp.selectors import revision_dict
from reviewapp.services.ingest import ingest
from untangle.mbox import messages_from_path

pytestmark = pytest.mark.django_db


def _ingest(lore_dir, *names):
    result = None
    for name in names:
        result = ingest(messages_from_path(lore_dir / name))
    return result


def _rev(msgid) -> dict:
    return revision_dict(Revision.objects.get(msgid=msgid))


def test_series_sent_in_two_runs_is_one_revision_of_twelve(lore_dir):
    _ingest(lore_dir, "gmem-direct-map-removal-v7-split-send.mbox")
    rev = _rev("20250924151101.2225820-1-patrick.roy@campus.lmu.de")
    assert (rev["version"], rev["expected"], rev["received"], rev["complete"]) == (7, 12, 12, True)
    assert rev["base_commit"].startswith("a6ad54137af9")
    assert Revision.objects.count() == 1
    numbers = list(Revision.objects.get().patches.values_list("number", flat=True))
    assert numbers == list(range(1, 13))


def test_quoted_printable_revision_reads_base_commit_and_trailers(lore_dir):
    _ingest(lore_dir, "gmem-direct-map-removal-v8-qp.mbox")
    rev = _rev("20251205165743.9341-1-kalyazin@amazon.com")
    assert rev["base_commit"].startswith("e0c26d47def7") and rev["received"] == 13
    assert Trailer.objects.filter(kind="Acked-by", email="david@kernel.org").exists()
    patch = Patch.objects.get(message__msgid="20251205165743.9341-2-kalyazin@amazon.com")
    assert patch.author_email == "patrick.roy@linux.dev"


def test_cover_base_commit_wins_over_one_quoted_inside_a_patch(lore_dir):
    _ingest(lore_dir, "gmem-direct-map-removal-rfc-v3.mbox")
    rev = _rev("20241030134912.515725-1-roypat@amazon.co.uk")
    assert rev["base_commit"].startswith("5cb1659f")
    assert rev["version"] == 3
    first = Patch.objects.get(revision__msgid=rev["msgid"], number=1)
    assert first.author_email == "rppt@kernel.org"


def test_changes_since_link_makes_the_previous_revision_even_with_another_subject(lore_dir):
    _ingest(lore_dir, "kvm-gmem-uffd-minor-v2.mbox", "kvm-gmem-uffd-minor-v3.mbox")
    v3 = _rev("20250404154352.23078-1-kalyazin@amazon.com")
    v2 = Revision.objects.get(msgid="20250402160721.97596-1-kalyazin@amazon.com")
    assert v3["previous"] == v2.msgid
    assert v3["author"] == "Nikita Kalyazin <kalyazin@amazon.com>"
    assert v2.series_id == Revision.objects.get(msgid=v3["msgid"]).series_id


def test_the_same_mails_twice_change_nothing(lore_dir):
    _ingest(lore_dir, "kvm-gmem-uffd-minor-v3.mbox")
    before = (Message.objects.count(), Patch.objects.count(), Trailer.objects.count(),
              [revision_dict(r) for r in Revision.objects.all()])
    result = _ingest(lore_dir, "kvm-gmem-uffd-minor-v3.mbox")
    after = (Message.objects.count(), Patch.objects.count(), Trailer.objects.count(),
             [revision_dict(r) for r in Revision.objects.all()])
    assert before == after and result.stored == 0 and result.duplicates == 7


def test_files_keep_blob_ids_for_the_code_rule(lore_dir):
    _ingest(lore_dir, "kvm-gmem-uffd-minor-v3.mbox")
    p4 = Patch.objects.get(revision__msgid="20250404154352.23078-1-kalyazin@amazon.com", number=4)
    assert p4.files.get(path="virt/kvm/guest_memfd.c").old_blob.startswith("fbf89e643add")
