"""Threading rules on synthetic mails: what real lists throw at us."""
import pytest

from reviewapp.models import Message, Revision
from reviewapp.services.ingest import ingest

pytestmark = pytest.mark.django_db

DIFF = ("---\n f | 1 +\n\ndiff --git a/f b/f\nindex 1111111..2222222 100644\n--- a/f\n+++ b/f\n"
        "@@ -1 +1,2 @@\n a\n+{n}\n-- \n2.43.0\n")


def mail(msgid, subject, *, reply_to=None, date="Mon, 1 Sep 2025 10:00:{s:02d} +0000", sec=0,
         frm="Ann Dev <ann@example.org>", body=None):
    hdr = [f"From: {frm}", f"Subject: {subject}", f"Message-ID: <{msgid}>",
           "Date: " + date.format(s=sec)]
    if reply_to:
        hdr += [f"In-Reply-To: <{reply_to}>", f"References: <{reply_to}>"]
    if body is None:
        body = "cover text\n" if " 0/" in subject else "Change.\n\nSigned-off-by: Ann\n" + DIFF.format(n=msgid)
    return ("\n".join(hdr) + "\n\n" + body).encode()


def posting(stem, version, count, reply_to=None, title="mm: thing", sec=0):
    v = f" v{version}" if version > 1 else ""
    cover = f"{stem}-0@x"
    mails = [mail(cover, f"[PATCH{v} 0/{count}] {title}", reply_to=reply_to, sec=sec)]
    mails += [mail(f"{stem}-{i}@x", f"[PATCH{v} {i}/{count}] part {i}", reply_to=cover, sec=sec + i)
              for i in range(1, count + 1)]
    return mails


def test_v2_posted_as_reply_to_v1_is_a_new_revision():
    ingest(posting("a", 1, 2))
    ingest(posting("b", 2, 2, reply_to="a-0@x", sec=30))
    v1, v2 = Revision.objects.get(msgid="a-0@x"), Revision.objects.get(msgid="b-0@x")
    assert v1.received == 2 and v2.received == 2
    assert v2.previous_id == v1.id and v1.series_id == v2.series_id


def test_two_unlabelled_postings_of_the_same_patches_are_two_revisions():
    ingest(posting("a", 1, 2))
    ingest(posting("b", 1, 2, sec=40))
    assert Revision.objects.count() == 2
    later = Revision.objects.get(msgid="b-0@x")
    assert later.previous.msgid == "a-0@x"


def test_missing_patch_leaves_revision_incomplete_naming_the_numbers():
    mails = posting("a", 3, 4)
    del mails[2]
    ingest(mails)
    rev = Revision.objects.get(msgid="a-0@x")
    assert (rev.complete, rev.missing, rev.expected, rev.received) == (False, [2], 4, 3)


def test_cover_arriving_after_its_patches_takes_over_the_revision():
    mails = posting("a", 2, 2)
    ingest(mails[1:])
    ingest(mails[:1])
    assert list(Revision.objects.values_list("msgid", "received")) == [("a-0@x", 2)]


def test_extra_patch_three_of_two_joins_its_revision():
    mails = posting("a", 1, 2) + [mail("a-3@x", "[PATCH 3/2] fixup", reply_to="a-2@x", sec=9)]
    ingest(mails)
    rev = Revision.objects.get(msgid="a-0@x")
    assert rev.received == 3 and rev.complete


def test_reply_trailers_attach_to_the_patch_they_answer():
    mails = posting("a", 1, 2) + [mail("r@x", "Re: [PATCH 1/2] part 1", reply_to="a-1@x", sec=50,
                                       frm="Rev <rev@example.org>", body="> x\n\nReviewed-by: Rev <rev@example.org>\n")]
    ingest(mails)
    reply = Message.objects.get(msgid="r@x")
    assert reply.revision.msgid == "a-0@x"
    trailer = reply.trailers.get()
    assert trailer.patch.number == 1


def test_garbage_in_an_mbox_is_reported_and_the_rest_stored():
    result = ingest([b"no headers here\n"] + posting("a", 1, 1))
    assert result.errors and "Message-ID" in result.errors[0]
    assert Revision.objects.get().received == 1


def test_mails_with_nul_bytes_and_bad_charsets_are_stored_on_any_database():
    bad = [mail("n@x", "[PATCH] nul", body="bad \x00 byte\n" + DIFF.format(n=1)),
           b"From: a@x\nSubject: [PATCH] latin\nMessage-ID: <l@x>\nContent-Type: text/plain; charset=x-unknown\n\n"
           b"caf\xe9\n---\n" + DIFF.format(n=2).encode()]
    result = ingest(bad * 3)
    assert result.errors == [] and result.stored == 2
    assert "\x00" not in Message.objects.get(msgid="n@x").body
    assert "caf" in Message.objects.get(msgid="l@x").body
