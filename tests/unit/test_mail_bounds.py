"""Values are bounded when parsed, so SQLite and PostgreSQL store the same, and
counts no real posting has are refused with a reason (never an overflow)."""
import pytest

from untangle import mail

DIFF = ("diff --git a/f.c b/f.c\nindex {old}..{new} 100644\n--- a/f.c\n+++ b/f.c\n"
        "@@ -1 +1 @@\n-a\n+b\n")


def _raw(subject="[PATCH] x: y", frm="A <a@example.org>", msgid="m1@example.org", body=None,
         extra=""):
    body = body if body is not None else "Message.\n\nSigned-off-by: A <a@example.org>\n---\n" + \
        DIFF.format(old="1234567", new="89abcde")
    return (f"From: {frm}\nSubject: {subject}\nMessage-ID: <{msgid}>\n"
            f"Date: Tue, 1 Dec 2026 10:00:00 +0000\n{extra}\n{body}").encode()


def test_reviewed_by_naming_many_people_fits_its_columns():
    people = ", ".join(f"Person Number{i} <person{i}@example.org>" for i in range(80))
    body = f"Message.\n\nReviewed-by: {people}\nSigned-off-by: A <a@example.org>\n---\n" + \
        DIFF.format(old="1234567", new="89abcde")
    m = mail.parse(_raw(body=body))
    reviewed = next(t for t in m.trailers if t.kind == "Reviewed-by")
    assert len(people) > 3000
    assert len(reviewed.name) <= mail.NAME_MAX and len(reviewed.email) <= mail.NAME_MAX
    assert len(reviewed.value) <= mail.TRAILER_VALUE_MAX
    assert reviewed.name.startswith("Person Number0")


def test_over_long_trailer_kind_is_cut_to_its_column():
    kind = "Very" + "-Long" * 40 + "-by"
    body = f"Message.\n\n{kind}: B <b@example.org>\n---\n" + DIFF.format(old="1234567", new="89abcde")
    m = mail.parse(_raw(body=body))
    assert any(len(t.kind) == mail.KIND_MAX for t in m.trailers)


def test_over_long_names_and_addresses_are_cut():
    m = mail.parse(_raw(frm=f"{'N' * 1000} <{'a' * 400}@example.org>"))
    assert len(m.from_name) == mail.NAME_MAX and len(m.from_email) == mail.NAME_MAX


def test_over_long_message_id_is_refused_with_a_reason():
    with pytest.raises(mail.MailError, match="Message-ID of 1012 characters"):
        mail.parse(_raw(msgid="x" * 1000 + "@example.org"))


def test_over_long_references_are_dropped_not_stored():
    long_ref = "r" * 600 + "@example.org"
    m = mail.parse(_raw(subject="Re: [PATCH] x: y", extra=f"In-Reply-To: <{long_ref}>\n"
                        f"References: <ok@example.org> <{long_ref}>\n"))
    assert m.references == ["ok@example.org"] and m.in_reply_to == "ok@example.org"


def test_over_long_blob_ids_and_change_ids_are_bounded():
    body = ("Message.\n\nchange-id: " + "c" * 500 + "\nbase-commit: " + "a" * 300 + "\n---\n"
            + DIFF.format(old="1" * 200, new="2" * 200))
    m = mail.parse(_raw(body=body))
    assert len(m.files[0].old_blob) == mail.BLOB_MAX and len(m.files[0].new_blob) == mail.BLOB_MAX
    assert "change-id" not in m.tags  # 500 characters is no change-id
    assert all(len(v) <= mail.TAG_MAX for vs in m.tags.values() for v in vs)


@pytest.mark.parametrize("subject, reason", [
    ("[PATCH v99999999999 1/1] x: y", "version over 999999999"),
    ("[PATCH v1001 1/1] x: y", "version 1001, over the limit of 1000"),
    ("[PATCH 1/2147483647] x: y", "patch count over 999999999"),
    ("[PATCH 5000/5000] x: y", "patch number 5000"),
    ("[PATCH 1/" + "9" * 5000 + "] x: y", "patch count over"),
])
def test_counts_no_real_posting_has_are_refused(subject, reason):
    with pytest.raises(mail.MailError, match=reason):
        mail.parse(_raw(subject=subject))


def test_real_sized_counts_are_kept():
    m = mail.parse(_raw(subject="[PATCH v42 120/300] x: y"))
    assert (m.version, m.number, m.total) == (42, 120, 300)


def test_limits_refuse_large_mails_many_files_and_many_hunks():
    limits = mail.Limits(max_bytes=2000, max_files=3, max_hunks=5)
    with pytest.raises(mail.MailError, match="over the limit of 2000"):
        mail.parse(_raw(body="x" * 3000), limits)
    files = "".join(DIFF.replace("f.c", f"f{i}.c").format(old="1234567", new="89abcde")
                    for i in range(4))
    with pytest.raises(mail.MailError, match="changes 4 files, over the limit of 3"):
        mail.parse(_raw(body="Message.\n---\n" + files), limits)
    hunks = DIFF.format(old="1234567", new="89abcde") + "@@ -5 +5 @@\n-a\n+b\n" * 5
    with pytest.raises(mail.MailError, match="has 6 hunks, over the limit of 5"):
        mail.parse(_raw(body="Message.\n---\n" + hunks), limits)
    assert mail.parse(_raw(), limits).kind == mail.PATCH


def test_a_refused_mail_keeps_its_bytes_for_the_quarantine():
    raw = _raw(subject="[PATCH 1/2147483647] x: y")
    refused = mail.parse_or_error(raw)
    assert isinstance(refused, mail.MailError) and refused.raw == raw


def test_limits_reach_the_parser_processes():
    raws = [_raw(msgid=f"m{i}@example.org") for i in range(6)]
    raws[3] = _raw(msgid="big@example.org", body="x" * 5000)
    out = list(mail.parse_stream(raws, workers=2, chunk=2, limits=mail.Limits(max_bytes=4000)))
    assert [isinstance(m, mail.MailError) for m in out] == [False, False, False, True, False, False]
    assert out[3].raw == raws[3][:4000]  # kept, cut at the limit


def test_encoded_word_with_a_non_ascii_charset_name_keeps_the_header_as_written():
    # Found by tests/fuzz: email.charset raised CharsetError out of make_header.
    raw = ("From: A <a@example.org>\nMessage-ID: <cs@example.org>\n"
           "Subject: =?\ufffdtf-8?q?caf=C3=A9?= [PATCH] x\n\nbody\n").encode()
    parsed = mail.parse(raw)
    assert "[PATCH] x" in parsed.subject
