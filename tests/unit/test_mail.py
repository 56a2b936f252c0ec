
from untangle import mail, mbox

from tests.support.shared import LORE, require


def _mails(name):
    return [mail.parse(r) for r in mbox.messages_from_path(require(LORE / name))]


def test_quoted_printable_bodies_are_decoded_before_reading_tags_and_diffs():
    cover, first, *_ = _mails("gmem-direct-map-removal-v8-qp.mbox")
    assert cover.tags["base-commit"] == ["e0c26d47def7382d7dbd9cad58bc653aed75737a"]
    assert "=0A=" not in first.diff and first.diff.startswith("diff --git ")
    assert any(t.kind == "Signed-off-by" and t.email == "patrick.roy@linux.dev" for t in first.trailers)


def test_in_body_from_gives_the_patch_author():
    msgs = _mails("gmem-direct-map-removal-rfc-v3.mbox")
    patch1 = next(m for m in msgs if m.number == 1)
    assert patch1.from_email == "roypat@amazon.co.uk"
    assert patch1.author_email == "rppt@kernel.org"
    assert "Rapoport" in patch1.author_name
    assert not patch1.commit_message.startswith("From:")


def test_cover_and_patches_are_classified():
    kinds = [(m.kind, m.number) for m in _mails("kvm-gmem-uffd-minor-v3.mbox")]
    assert kinds[0] == ("cover", 0)
    assert all(k == "patch" for k, _ in kinds[1:]) and len(kinds) == 7


def test_files_carry_pre_and_post_image_blob_ids():
    p4 = next(m for m in _mails("kvm-gmem-uffd-minor-v3.mbox") if m.number == 4)
    gmem = next(f for f in p4.files if f.path == "virt/kvm/guest_memfd.c")
    assert gmem.old_blob.startswith("fbf89e643add")


def test_commit_message_stops_at_the_three_dash_line_and_diff_at_the_signature():
    p = next(m for m in _mails("kvm-gmem-uffd-minor-v3.mbox") if m.number == 1)
    assert "Signed-off-by: Nikita Kalyazin" in p.commit_message
    assert " 4 files changed" not in p.commit_message
    assert not p.diff.rstrip().endswith("-- ")


def test_trailers_with_stray_quotes_still_give_name_and_address():
    p3 = next(m for m in _mails("gmem-direct-map-removal-v8-qp.mbox") if m.number == 3)
    acks = [t for t in p3.trailers if t.kind == "Acked-by"]
    assert ("David Hildenbrand (Red Hat)", "david@kernel.org") in [(t.name, t.email) for t in acks]


def test_reply_with_quoted_tags_does_not_take_them_as_its_own():
    raw = (b"From: R <r@x>\nSubject: Re: [PATCH 0/2] foo\nMessage-ID: <r1@x>\nIn-Reply-To: <c@x>\n\n"
           b"> base-commit: 1234567\n> Based-on: <z@x>\nReviewed-by: R <r@x>\n")
    m = mail.parse(raw)
    assert m.kind == "reply" and m.tags == {}
    assert [(t.kind, t.email) for t in m.trailers] == [("Reviewed-by", "r@x")]


def test_non_ascii_names_are_decoded():
    raw = ("From: =?utf-8?q?J=C3=B6rg_R=C3=B6del?= <joro@8bytes.org>\nSubject: [PATCH] x\n"
           "Message-ID: <n@x>\n\nbody\n").encode()
    assert mail.parse(raw).from_name == "Jörg Rödel"


def test_a_mail_without_message_id_is_rejected():
    import pytest
    with pytest.raises(mail.MailError, match="Message-ID"):
        mail.parse(b"From: a@b\nSubject: x\n\nbody\n")


def test_nul_bytes_are_dropped_from_headers_and_bodies():
    import base64
    raw = (b"From: n@x\nSubject: [PATCH] n\x00ul\nMessage-ID: <nul@x>\nContent-Transfer-Encoding: base64\n\n"
           + base64.encodebytes(b"bad \x00 byte\n"))
    m = mail.parse(raw)
    assert m.title == "nul" and "\x00" not in m.body and "bad  byte" in m.body


def test_a_quilt_patch_without_diff_git_lines_is_a_patch_with_its_files():
    raw = (b"From: Randy Dunlap <rdunlap@example.org>\nSubject: [PATCH] KUnit: Docs: fix a typo\n"
           b"Message-ID: <quilt-1@example.org>\nDate: Tue, 27 Oct 2020 11:48:53 -0700\n\n"
           b"Fix a wording typo.\n\nSigned-off-by: Randy Dunlap <rdunlap@example.org>\n---\n"
           b" Documentation/dev-tools/kunit/faq.rst |    2 +-\n 1 file changed\n\n"
           b"--- linux-next-20201027.orig/Documentation/dev-tools/kunit/faq.rst\n"
           b"+++ linux-next-20201027/Documentation/dev-tools/kunit/faq.rst\n"
           b"@@ -90,1 +90,1 @@ things to try.\n-can run be\n+can be\n")
    m = mail.parse(raw)
    assert m.kind == "patch" and m.commit_message.endswith("Signed-off-by: Randy Dunlap <rdunlap@example.org>")
    assert [(f.path, f.old_path, f.status) for f in m.files] == [
        ("Documentation/dev-tools/kunit/faq.rst", None, "modified")]
