"""Ingest in batches and parser processes: the result must not depend on where
the batches are cut, on the order mails arrive in, or on who parsed them."""
import random
import re

import pytest
from django.db import connection

from reviewapp.models import (Dependency, MailingList, Message, Patch, PatchFile, Revision, Series,
                              Trailer)
from reviewapp.services import ingest as ingest_module
from reviewapp.services.ingest import store as ingest_store
from reviewapp.services.ingest import ingest
from untangle import mail as mails
from untangle.mbox import messages_from_path

pytestmark = pytest.mark.django_db


def _lore_raws(lore_dir):
    files = sorted(lore_dir.glob("*.mbox")) + sorted((lore_dir / "transcribed").glob("*.eml"))
    return [raw for f in files for raw in messages_from_path(f)]


def _facts() -> list:
    """Everything grouping decides, named by msgids (ids differ between runs)."""
    revs = {r.id: r for r in Revision.objects.all()}
    family = {}
    for r in revs.values():
        family.setdefault(r.series_id, set()).add(r.msgid)
    return sorted(
        (r.msgid, r.anchor, r.version, r.expected, r.received, r.complete, r.missing, r.base_commit,
         r.author_email, r.cover.msgid if r.cover else None,
         revs[r.previous_id].msgid if r.previous_id else None, sorted(family[r.series_id]),
         sorted(Message.objects.filter(revision=r).values_list("msgid", flat=True)),
         sorted(Patch.objects.filter(revision=r).values_list("number", flat=True)),
         sorted(Dependency.objects.filter(source=r).values_list("kind", "target", "how")))
        for r in revs.values())


def _forget_everything():
    for model in (Dependency, Trailer, PatchFile, Patch):
        model.objects.all().delete()
    Message.objects.update(revision=None)
    Revision.objects.update(previous=None, cover=None)
    for model in (Revision, Series, Message, MailingList):
        model.objects.all().delete()


def test_small_shuffled_batches_through_parser_processes_group_like_one_batch(lore_dir, monkeypatch):
    raws = _lore_raws(lore_dir)
    ingest(raws, workers=0)
    expected = _facts()
    assert len(expected) == 8
    _forget_everything()
    monkeypatch.setattr(ingest_module, "BATCH", 7)
    monkeypatch.setattr(ingest_module, "CHUNK", 3)
    shuffled = raws[:]
    random.Random(4).shuffle(shuffled)
    result = ingest(shuffled + [b"Subject: no id\n\nbody\n"], workers=2)
    assert result.stored == len(raws) and len(result.errors) == 1
    assert _facts() == expected


def test_cover_arriving_batches_after_its_patches_takes_them_over(lore_dir, monkeypatch):
    monkeypatch.setattr(ingest_module, "BATCH", 4)
    raws = list(messages_from_path(lore_dir / "gmem-direct-map-removal-v7-split-send.mbox"))
    ingest(raws[1:] + raws[:1], workers=1)
    [rev] = Revision.objects.all()
    assert rev.msgid == "20250924151101.2225820-1-patrick.roy@campus.lmu.de"
    assert (rev.received, rev.complete, rev.cover.msgid) == (12, True, rev.msgid)
    assert Series.objects.count() == 1


def _id(stem, n):
    return f"20250901.{stem}-{n}@example.org"


def _posting(stem, version, title, day, cover_text):
    v = f" v{version}"
    head = (f"From: Ann Dev <ann@example.org>\nDate: Mon, {day} Sep 2025 10:00:00 +0000\n")
    cover = (head + f"Subject: [PATCH{v} 0/1] {title}\nMessage-ID: <{_id(stem, 0)}>\n\n{cover_text}\n").encode()
    patch = (head + f"Subject: [PATCH{v} 1/1] part\nMessage-ID: <{_id(stem, 1)}>\n"
             f"In-Reply-To: <{_id(stem, 0)}>\nReferences: <{_id(stem, 0)}>\n\nChange.\n\n"
             "Signed-off-by: Ann Dev <ann@example.org>\n---\n f | 1 +\n\n"
             "diff --git a/f b/f\nindex 1111111..2222222 100644\n--- a/f\n+++ b/f\n"
             f"@@ -1 +1,2 @@\n a\n+{stem}\n-- \n2.43.0\n").encode()
    return [cover, patch]


def test_cover_listing_every_earlier_version_names_the_newest_as_previous():
    ingest(_posting("a", 1, "mm: first name", 1, "First go."))
    ingest(_posting("b", 2, "mm: second name", 2,
                    f"Second go.\n\nv1: https://lore.kernel.org/r/{_id('a', 0)}"))
    ingest(_posting("c", 3, "mm: third name", 3,
                    "Changes since v2:\n - more\n\n"
                    f"v2: https://lore.kernel.org/r/{_id('b', 0)}\n"
                    f"v1: https://lore.kernel.org/r/{_id('a', 0)}"))
    v3 = Revision.objects.get(msgid=_id("c", 0))
    assert v3.previous.msgid == _id("b", 0)
    assert Revision.objects.get(msgid=_id("b", 0)).previous.msgid == _id("a", 0)
    assert Series.objects.count() == 1


def test_families_of_many_copies_stay_one_series_ordered_by_version(lore_dir, monkeypatch):
    # The benchmark's shape: the same series posted again and again.
    monkeypatch.setattr(ingest_module, "BATCH", 9)
    raws = list(messages_from_path(lore_dir / "kvm-gmem-uffd-minor-v3.mbox"))
    copies = [re.sub(rb"(?im)^(message-id|in-reply-to|references):.*$",
                     lambda m: m.group(0).replace(b"<", b"<c%d." % i), raw)
              for i in range(6) for raw in raws]
    ingest(copies, workers=1)
    assert Revision.objects.count() == 6 and Series.objects.count() == 1
    chain = [r for r in Revision.objects.all() if r.previous_id is None]
    assert len(chain) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_mails_another_ingest_stored_meanwhile_are_skipped_not_fatal(lore_dir):
    raws = list(messages_from_path(lore_dir / "kvm-gmem-uffd-minor-v3.mbox"))
    ingest(raws[:2])
    parsed = [mails.parse(r) for r in raws]
    # As if another process stored the first two after this batch looked:
    # COPY meets the unique msgid and the batch is stored with conflict checks.
    rows, patch_ids = ingest_store.store_mails(parsed, None, ingest_store.list_ids(parsed, None, {}))
    assert Message.objects.count() == len(raws)
    assert Patch.objects.count() == len(raws) - 1
    assert {r["msgid"] for r in rows} == {m.msgid for m in parsed}
